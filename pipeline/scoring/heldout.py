"""The evaluation harness behind ``divergence evaluate``.

Two kinds of model are measured here:

- the **pair classifier** (premise, hypothesis -> entailment / neutral /
  contradiction) on SICK, SNLI, ANLI and FNC-1;
- the **alignment encoder** (frozen MiniLM sentence vectors, compared by cosine)
  on STS-B (Spearman) and MRPC (F1).

Only development splits exist in ``../shared/data`` and the classifier trains on
part of them, so every classifier figure is computed on the *held-out* part of a
dev split (:mod:`pipeline.datasets.splits`, the same deterministic split and the same
default fractions the trainer uses). Everything that is fitted here -- the baselines,
the FNC-1 stance thresholds, the MRPC cosine threshold -- is fitted on the *train*
part (or the train split) and never on the rows it is scored on.

Each figure is printed beside two baselines (:mod:`pipeline.scoring.baselines`) so
that a number means something. The result is a long :class:`pandas.DataFrame` with one
row per ``(task, split, system, metric)``; :func:`check_targets` compares it with the
project's targets and :func:`write_results` stores it as JSON (both
:mod:`pipeline.scoring.targets`, named here as the harness's API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset

from ..datasets import nli as nli_data
from ..datasets.nli import FNC_STANCES, LABELS
from ..datasets.splits import DEFAULT_HOLDOUT_SEED, FALLBACK_HELDOUT_FRACTION, default_fractions, holdout
from ..datasets.sts import load_mrpc, load_stsb, sibling_train_file, split_file
from ..errors import DataError, Errors, EvaluationError
from .baselines import (
    DEFAULT_ENCODER,
    SYSTEM_FROZEN,
    SYSTEM_MAJORITY,
    SentenceEmbedder,
    TextEncoder,
    cosine,
    encoded_pair_features,
    fit_frozen_regressor,
    frozen_probe_predictions,
    majority_label,
)
from ..stages.divergence import PairScorer
from .metrics import best_f1_threshold, binary_metrics, classification_metrics, fnc_metrics, p_above_chance, pearson, spearman
from .stances import fit_stance_rule

__all__ = ["ENCODER_TASKS", "EvalConfig", "NLI_TASKS", "RESULT_COLUMNS", "TASKS", "evaluate", "load_classifier"]

TASKS: tuple[str, ...] = ("sick", "snli", "anli", "fnc1", "stsb", "mrpc")
NLI_TASKS: tuple[str, ...] = ("sick", "snli", "anli", "fnc1")
ENCODER_TASKS: tuple[str, ...] = ("stsb", "mrpc")
DEFAULT_SPLITS: dict[str, str] = {"snli": "dev", "stsb": "dev", "mrpc": "val"}
RESULT_COLUMNS: tuple[str, ...] = ("task", "split", "system", "metric", "value", "n")


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
    heldout_fraction: dict[str, float] = field(default_factory=default_fractions)
    holdout_seed: int = DEFAULT_HOLDOUT_SEED
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
    fraction = config.heldout_fraction.get(task, FALLBACK_HELDOUT_FRACTION)
    if config.heldout:
        fit, score = holdout(ds, name=task, fraction=fraction, seed=config.holdout_seed)
        split = f"{base}/heldout"
    else:
        default = ds if path is None else _load_nli(task, None, replace(config, path=None, split=None))
        fit, _ = holdout(default, name=task, fraction=fraction, seed=config.holdout_seed)
        score, split = ds, f"{base}/all"
    return _Part(split, _cap(fit, config.fit_cap, config.seed), _cap(score, config.limit, config.seed))


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
        predictions[SYSTEM_FROZEN] = frozen_probe_predictions(part.fit, part.score, encoder, labels=fit_labels,
                                                              seed=config.seed)
    rows: list[Row] = []
    for split, idx in _nli_groups(task, part):
        for system, pred in predictions.items():
            metrics = classification_metrics(gold[idx], pred[idx], LABELS)
            if task == "anli" and system.startswith("model:"):
                metrics["p_above_chance"] = p_above_chance(gold[idx], pred[idx])
            rows += _rows(task, split, system, metrics, len(idx))
    return rows


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
        metrics = fnc_metrics(gold, rule.predict(proba, similarity["score"]))
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
        rows += _rows("fnc1", part.split, SYSTEM_MAJORITY, fnc_metrics(gold, [majority] * len(gold)), len(gold))
        ids = frozen_probe_predictions(part.fit, part.score, encoder, labels=fit_ids, seed=config.seed)
        pred = [FNC_STANCES[i] for i in ids]
        rows += _rows("fnc1", part.split, SYSTEM_FROZEN, fnc_metrics(gold, pred), len(gold))
    return rows


def _encoder_split(task: str, config: EvalConfig) -> tuple[str, Dataset, Dataset]:
    loader = {"stsb": load_stsb, "mrpc": load_mrpc}[task]
    split = config.split or DEFAULT_SPLITS[task]
    file = split_file(task, config.task_path(task), split)
    score = _cap(loader(file), config.limit, config.seed)
    fit = _cap(loader(sibling_train_file(task, file)), config.fit_cap, config.seed)
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
        reg = fit_frozen_regressor(encoded_pair_features(fit, encoder, "sentence1", "sentence2"), fit["score"])
        pred = reg.predict(encoded_pair_features(score, encoder, "sentence1", "sentence2"))
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
        pred = frozen_probe_predictions(fit, score, encoder, labels=fit_gold, a="sentence1", b="sentence2",
                                        seed=config.seed)
        rows += _rows("mrpc", split, SYSTEM_FROZEN, binary_metrics(gold, pred), len(gold))
    return rows


# --------------------------------------------------------------------------- the harness


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


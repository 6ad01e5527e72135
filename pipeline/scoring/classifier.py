"""Held-out figures of a pair classifier: what its ``metrics.json`` and model card report.

The trainer scores every model it makes here (and so does ``divergence train
--reevaluate`` and ``evaluation/accel_prepare.py``), on the held-out part of each set it
trained on (:mod:`pipeline.datasets.splits`): accuracy per set (ANLI per round, MNLI per
part), and what stance data can show besides (FNC-1 score and F1 per stance, Emergent F1
per stance, ClaimDiff and WiCE ROC AUC). Promotion compares :func:`headline_metrics`.
The metric functions are :mod:`pipeline.scoring.metrics`, shared with the harness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from datasets import Dataset

from ..datasets.nli import FNC_STANCES, LABELS
from ..stages.divergence import PairScorer
from .metrics import accuracy, fnc_score, label_f1, roc_auc
from .stances import fit_stance_offsets, stances_from_proba

EMERGENT_STANCES = ("for", "against", "observing")
_EMERGENT_OF_LABEL = {"entailment": "for", "contradiction": "against", "neutral": "observing"}


def _pairs(ds: Dataset) -> list[tuple[str, str]]:
    return list(zip(ds["premise"], ds["hypothesis"]))


def evaluate(
    clf: PairScorer,
    heldout: Mapping[str, Dataset],
    *,
    fnc_threshold: float | None = None,
    fnc_calibration: Dataset | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Accuracy per held-out set (ANLI per round too), FNC-1 score relative to its maximum.

    FNC-1 stances are read out with a relatedness threshold and label offsets, both
    fitted on training bodies only (``fnc_threshold``, ``fnc_calibration``)."""
    calibration_proba = None
    if fnc_calibration is not None and len(fnc_calibration) and "fnc1" in heldout:
        calibration_proba = clf.predict_proba(_pairs(fnc_calibration), batch_size=batch_size)
    probas = {
        name: clf.predict_proba(_pairs(ds), batch_size=batch_size)
        for name, ds in heldout.items()
        if name != "domain" and len(ds)
    }
    return evaluate_proba(probas, heldout, fnc_threshold=fnc_threshold, fnc_calibration=fnc_calibration,
                          calibration_proba=calibration_proba)


def evaluate_proba(
    probas: Mapping[str, np.ndarray],
    heldout: Mapping[str, Dataset],
    *,
    fnc_threshold: float | None = None,
    fnc_calibration: Dataset | None = None,
    calibration_proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """The figures of :func:`evaluate` from probabilities already computed (columns in
    LABELS order), e.g. on an accelerator machine by ``evaluation/accel_train.py``.

    Besides accuracy: FNC-1 F1 per stance and macro-F1 (the official score is mostly
    related vs unrelated, these say whether agree/disagree are recognised at all);
    Emergent F1 per stance; ClaimDiff ROC AUC of P(contradiction) for "weaken" vs
    "strengthen" pairs (same matter, an account that parts vs one that supports);
    WiCE ROC AUC of P(entailment) for supported vs not fully supported claims."""
    offsets = None
    if calibration_proba is not None and fnc_calibration is not None and "fnc1" in heldout:
        offsets = fit_stance_offsets(calibration_proba, fnc_calibration["stance"])
    out: dict[str, Any] = {}
    for name, ds in heldout.items():
        if name == "domain" or not len(ds) or name not in probas:
            continue
        proba = np.asarray(probas[name])
        entry = _accuracy_entry(ds, proba.argmax(axis=1))
        if name == "fnc1" and fnc_threshold is not None:
            calibration_pairs = len(fnc_calibration) if fnc_calibration is not None else 0
            entry.update(_fnc_entry(ds, proba, threshold=fnc_threshold, offsets=offsets,
                                    calibration_pairs=calibration_pairs))
        if name == "emergent":
            pred = [_EMERGENT_OF_LABEL[LABELS[i]] for i in proba.argmax(axis=1)]
            entry["f1"], entry["macro_f1"] = _f1_entry(ds["stance"], pred, EMERGENT_STANCES)
        if name == "claimdiff":
            relation = np.asarray(ds["relation"])
            related = relation != "neither"
            entry["auc_weaken_vs_strengthen"] = _auc(proba[related, 2], relation[related] == "weaken")
        if name == "wice":
            entry["auc_supported"] = _auc(proba[:, 0], np.asarray(ds["wice_label"]) == "supported")
        out[name] = entry
    return out


def _accuracy_entry(ds: Dataset, pred: np.ndarray) -> dict[str, Any]:
    """Accuracy and size of the set, and of each ANLI round / MNLI part in it."""
    gold = np.asarray(ds["label"])
    entry: dict[str, Any] = {"accuracy": round(accuracy(gold, pred), 4), "n": len(ds)}
    for column in ("round", "part"):
        if column in ds.column_names:
            groups = np.asarray(ds[column])
            for grp in sorted(set(groups)):
                mask = groups == grp
                entry[grp] = {"accuracy": round(accuracy(gold[mask], pred[mask]), 4), "n": int(mask.sum())}
    return entry


def _fnc_entry(ds: Dataset, proba: np.ndarray, *, threshold: float, offsets: list[float] | None,
               calibration_pairs: int) -> dict[str, Any]:
    """FNC-1 score with and without the stance offsets, and F1 per stance."""
    stances = stances_from_proba(proba, ds["relatedness"], threshold=threshold, offsets=offsets)
    score, maximum = fnc_score(ds["stance"], stances)
    raw = fnc_score(ds["stance"], stances_from_proba(proba, ds["relatedness"], threshold=threshold))[0]
    f1, macro_f1 = _f1_entry(ds["stance"], stances, FNC_STANCES)
    return {"fnc_score": score, "fnc_max": maximum, "relative": round(score / maximum, 4),
            "relative_without_offsets": round(raw / maximum, 4), "threshold": threshold,
            "stance_offsets": offsets, "calibration_pairs": calibration_pairs, "f1": f1, "macro_f1": macro_f1}


def _f1_entry(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> tuple[dict[str, float], float]:
    """F1 per stance (rounded) and their mean, as the model cards have always printed them."""
    f1 = {label: round(value, 4) for label, value in label_f1(gold, pred, labels).items()}
    return f1, round(float(np.mean(list(f1.values()))), 4)


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    positive = np.asarray(positive, dtype=bool)
    auc = roc_auc(scores[positive], scores[~positive])
    return None if auc is None else round(auc, 4)


def headline_metrics(heldout_metrics: Mapping[str, Any]) -> dict[str, float]:
    """The figures promotion compares: one number per held-out set."""
    flat = {}
    for name, entry in heldout_metrics.items():
        flat[name] = float(entry["relative"] if "relative" in entry else entry["accuracy"])
    return flat

"""The figures every scorer reports, each computed in one place.

The trainer's held-out figures (:mod:`pipeline.scoring.classifier`), the evaluation
harness (:mod:`pipeline.scoring.heldout`) and the judge's leave-one-event-out benchmark
(:mod:`pipeline.training.benchmark`) all take accuracy, F1, ROC AUC and the FNC-1 score
from here, so one figure means the same thing wherever it is printed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from ..datasets.nli import FNC_STANCES


def fnc_score(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    """The official FNC-1 score and its maximum for these gold stances.

    +0.25 for getting related vs unrelated right, +0.75 more for the exact stance of
    a related pair (the competition's weighting), so the ratio score/max is what
    "FNC score" figures report.
    """
    related = {"agree", "disagree", "discuss"}
    score = 0.0
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            score += 0.25
            if g != "unrelated":
                score += 0.50
        if g in related and p in related:
            score += 0.25
    maximum = sum(0.25 if g == "unrelated" else 1.0 for g in gold)
    return score, maximum


def accuracy(gold: Sequence[object], pred: Sequence[object]) -> float:
    """Share of ``pred`` equal to ``gold`` (same length)."""
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    if gold_a.shape != pred_a.shape:
        raise ValueError(f"gold and pred differ in length: {gold_a.shape} vs {pred_a.shape}")
    return float(np.mean(gold_a == pred_a))


def label_f1(gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]) -> dict[Hashable, float]:
    """The F1 of each of ``labels``; a label absent from both gets 0 (sklearn's
    ``zero_division=0``), which keeps macro-F1 honest on tiny samples."""
    from sklearn.metrics import f1_score

    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    if gold_a.shape != pred_a.shape:
        raise ValueError(f"gold and pred differ in length: {gold_a.shape} vs {pred_a.shape}")
    per_class = f1_score(gold_a, pred_a, labels=list(labels), average=None, zero_division=0)
    return {label: float(f) for label, f in zip(labels, per_class)}


def classification_metrics(gold: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1 and the F1 of each class (``f1_<label>``); ``gold`` and
    ``pred`` index ``labels``."""
    per_class = label_f1(gold, pred, range(len(labels)))
    out = {"accuracy": accuracy(gold, pred), "macro_f1": float(np.mean(list(per_class.values())))}
    out.update({f"f1_{name}": per_class[i] for i, name in enumerate(labels)})
    return out


def fnc_relative_score(gold: Sequence[str], pred: Sequence[str]) -> float:
    """The official FNC-1 score divided by the best score possible on ``gold``
    (0.25 for each pair put on the right side of related/unrelated, 0.75 more
    for the right stance of a related pair). The competition winner scored 0.82
    on the test set by this measure."""
    score, maximum = fnc_score(gold, pred)
    return score / maximum if maximum else float("nan")


def fnc_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """FNC-1 score (relative and absolute) and the 4-way classification metrics of the stances."""
    score, maximum = fnc_score(gold, pred)
    ids = lambda xs: [FNC_STANCES.index(x) for x in xs]  # noqa: E731
    out = {"fnc_score_rel": score / maximum if maximum else float("nan"), "fnc_score": score, "fnc_max": maximum}
    out.update(classification_metrics(ids(gold), ids(pred), FNC_STANCES))
    return out


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
    return {"f1": label_f1(gold, pred, [1])[1], "accuracy": accuracy(gold, pred)}


def roc_auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count
    half: the Mann-Whitney form of ROC AUC); None when either side is empty."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def p_above_chance(gold: np.ndarray, pred: np.ndarray, *, classes: int = 3) -> float:
    """One-sided binomial p-value of the accuracy against 1/``classes`` (balanced
    classes): with ~500 pairs per ANLI round, 'above chance' needs more than a point or two."""
    from scipy.stats import binomtest

    if len(gold) == 0:
        return float("nan")
    return float(binomtest(int(np.sum(gold == pred)), len(gold), 1 / classes, alternative="greater").pvalue)

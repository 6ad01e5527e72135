"""FNC-1 stances from a 3-way NLI model, as the evaluation harness reads them.

FNC-1 labels a headline/body pair agree, disagree, discuss or unrelated; the pair
classifier says entailment, neutral or contradiction. "discuss" and "unrelated" both
train as neutral, so only the headline's similarity to the body can tell them apart.
:class:`StanceRule` combines the two with floors fitted on the train part of the
hold-out (:func:`fit_stance_rule`), never on the pairs it scores.

(The trainer's model card reads FNC-1 differently, with a TF-IDF relatedness cut and
log-prior offsets fitted on training bodies: :func:`stances_from_proba` below.
Both figures are kept as they were so that every published number stays comparable.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..datasets.nli import FNC_STANCES
from ..errors import Errors, EvaluationError
from ..schema import LABELS
from .metrics import fnc_score


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


def stances_from_proba(
    proba: np.ndarray,
    relatedness: Sequence[float],
    *,
    threshold: float,
    offsets: Sequence[float] | None = None,
) -> list[str]:
    """Turn 3-way NLI probabilities back into FNC-1 stances: a pair whose headline
    barely overlaps the body is "unrelated", otherwise entailment/contradiction/neutral
    read as agree/disagree/discuss, after adding per-label log-probability ``offsets``
    (see :func:`fit_stance_offsets`)."""
    back = {"entailment": "agree", "contradiction": "disagree", "neutral": "discuss"}
    scores = np.log(np.asarray(proba, dtype="float64") + 1e-9)
    if offsets is not None:
        scores = scores + np.asarray(offsets, dtype="float64")
    out = []
    for row, rel in zip(scores, relatedness, strict=True):
        out.append("unrelated" if rel < threshold else back[LABELS[int(np.argmax(row))]])
    return out


def fit_stance_offsets(proba: np.ndarray, stances: Sequence[str]) -> list[float]:
    """Log-prior offsets (entailment, neutral=0, contradiction) that maximise the FNC-1
    score of related pairs from *training* bodies.

    A news body that "agrees" with a headline rarely entails it in the NLI sense, and
    most related pairs are "discuss"; an NLI model read out directly over-predicts
    agree/disagree. Fitting two offsets on training bodies corrects the prior without
    touching held-out data (as the relatedness threshold is fitted).
    """
    related = [i for i, s in enumerate(stances) if s != "unrelated"]
    if not related:
        return [0.0, 0.0, 0.0]
    p = np.asarray(proba)[related]
    gold = [stances[i] for i in related]
    grid = np.arange(-4.0, 2.01, 0.25)
    best, best_score = [0.0, 0.0, 0.0], -1.0
    for a in grid:
        for c in grid:
            offsets = [float(a), 0.0, float(c)]
            pred = stances_from_proba(p, [1.0] * len(gold), threshold=0.0, offsets=offsets)
            score = fnc_score(gold, pred)[0]
            if score > best_score + 1e-9 or (abs(score - best_score) <= 1e-9 and abs(a) + abs(c) < abs(best[0]) + abs(best[2])):
                best, best_score = offsets, score
    return best

"""Fit the divergence judge on prepared gold events (CONTRACTS §4c: never on the event it is scored on).

What a judge learns from (:func:`fit_judge`): every candidate pair of alignment,
labelled related (it covers both statements of a gold divergence or agreement) or not;
every gold pair whose statements became claims, labelled divergence or agreement (plus
edited claims of the training events, :mod:`pipeline.training.edits`, weighted down);
the gold type of each divergence; every party claim that some side leaves unaddressed,
labelled omission when it covers the asserted statement of a gold omission.
Thresholds are chosen on the training events only (:func:`choose_thresholds`), to
maximise recall of gold divergences while keeping flags that match nothing under a
budget per gold divergence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..scoring.gold import GoldItem
from ..stages.judge import OMISSION_FEATURES, PAIR_FEATURES, PAIR_TYPES, Judge, LinearModel, standardise
from .events import EventData


@dataclass(frozen=True)
class FitConfig:
    """How a judge is fitted (none of it is fitted to an event: general settings)."""

    c_pair: float = 0.3  # inverse L2 strength of the pair models (few positives: keep it strong)
    c_type: float = 0.3
    c_omission: float = 0.3
    unmatched_budget: float = 3.0  # flags matching nothing per gold divergence the thresholds may spend (the target bound)
    agreement_budget: float = 1.0  # agreements on non-agreeing pairs per gold agreement
    # probabilities are calibrated (no class weights), so rare positives sit at low values
    grid: tuple[float, ...] = tuple(sorted({round(float(x), 4) for x in np.concatenate(
        [np.geomspace(0.01, 0.5, 24), np.linspace(0.5, 0.95, 10)])}))
    max_flags_per_claim: int = 2
    max_omissions_ratio: float = 0.1
    synthetic_weight: float = 0.2  # weight of an edited-claim pair in the parts model (0: none)


def budgeted_recall(recall: float, unmatched: float, budget: float) -> float:
    """What the thresholds and promotion maximise: recall, less any excess of unmatched flags
    per gold divergence over ``budget``."""
    return recall - max(0.0, unmatched - budget)


def fit_linear(X: np.ndarray, y: Sequence[Any], *, features: Sequence[str], c: float,
               positive: str | None = None, weights: Sequence[float] | None = None) -> LinearModel:
    """Logistic regression on standardised ``X``. For a binary model (``positive`` given)
    the classes are always ["other", positive], even when the data hold one of them only
    (then a constant model at the observed rate, smoothed)."""
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    # a binary feature that fires a handful of times has a tiny spread; a floor keeps one
    # occurrence at inference from weighing like dozens of standard deviations
    scale = np.maximum(X.std(axis=0), 0.1)
    labels = list(y)
    if len(set(labels)) < 2:
        zeros = [[0.0] * X.shape[1]]
        if positive is None:
            return LinearModel(classes=[str(labels[0])], features=list(features), mean=mean.round(6).tolist(),
                               scale=scale.round(6).tolist(), coef=zeros, intercept=[0.0])
        rate = (sum(1 for v in labels if v == positive) + 0.5) / (len(labels) + 1.0)
        return LinearModel(classes=["other", positive], features=list(features), mean=mean.round(6).tolist(),
                           scale=scale.round(6).tolist(), coef=zeros, intercept=[round(math.log(rate / (1 - rate)), 6)])
    model = LogisticRegression(C=c, max_iter=2000)
    Z = standardise(X, mean, scale)
    if positive is not None:  # 0/1 so that the one row of coefficients is the positive class's
        model.fit(Z, [int(v == positive) for v in labels], sample_weight=weights)
        classes = ["other", positive]
    else:
        model.fit(Z, labels, sample_weight=weights)
        classes = [str(k) for k in model.classes_]
    return LinearModel(classes=classes, features=list(features),
                       mean=mean.round(6).tolist(), scale=scale.round(6).tolist(),
                       coef=model.coef_.round(6).tolist(), intercept=model.intercept_.round(6).tolist())


def _type_of(item: GoldItem) -> str | None:
    return next((t for t in item.types if t in PAIR_TYPES), None)


@dataclass
class _Rows:
    """Training rows of the judge's models: candidate pairs (related model), accounts of
    one matter (parts model, weighted) and typed divergences (type model)."""

    X: list[np.ndarray] = field(default_factory=list)
    divergent: list[int] = field(default_factory=list)
    agreeing: list[int] = field(default_factory=list)
    part_X: list[np.ndarray] = field(default_factory=list)
    part_y: list[str] = field(default_factory=list)
    part_w: list[float] = field(default_factory=list)
    type_X: list[np.ndarray] = field(default_factory=list)
    type_y: list[str] = field(default_factory=list)

    def add_part(self, x: np.ndarray, label: str, weight: float = 1.0) -> None:
        self.part_X.append(x)
        self.part_y.append(label)
        self.part_w.append(weight)

    def add_candidate(self, x: np.ndarray, *, divergent: bool, agreeing: bool) -> None:
        self.X.append(x)
        self.divergent.append(int(divergent))
        self.agreeing.append(int(agreeing))

    def add_type(self, x: np.ndarray, t: str) -> None:
        self.type_X.append(x)
        self.type_y.append(t)


def _event_rows(rows: _Rows, ev: EventData) -> None:
    # whether two accounts of one matter part: every gold pair whose statements are claims
    for item_id, x in ev.gold_pairs.items():
        rows.add_part(x, "divergence" if item_id in ev.divergence_ids else "agreement")
    for n, ids in enumerate(ev.pair_items):
        div = [i for i in ids if i in ev.divergence_ids]
        agr = [i for i in ids if i in ev.agreement_ids]
        rows.add_candidate(ev.X[n], divergent=bool(div), agreeing=bool(agr) and not div)
        if div and (t := _type_of(ev.item(div[0]))):
            rows.add_type(ev.X[n], t)
    # gold pairs that alignment missed still teach the type model what each type looks like
    for item_id, x in ev.gold_pairs.items():
        if item_id in ev.divergence_ids and not any(item_id in ids for ids in ev.pair_items):
            if t := _type_of(ev.item(item_id)):
                rows.add_type(x, t)


def _synthetic_rows(rows: _Rows, events: Sequence[EventData], weight: float) -> None:
    # edited claims teach whether two accounts part, weighed down: they outnumber the gold
    # pairs and are closer to each other than real accounts ever are
    edited = [(x, label) for ev in events for x, label, _ in getattr(ev, "synthetic", ())]
    counts = {k: sum(1 for _, label in edited if label == k) for k in ("divergence", "agreement")}
    for x, label in edited:
        # each class of edits weighs the same in all, so the edits (mostly divergences) do
        # not move the parts model's prior
        rows.add_part(x, label, weight * len(edited) / (2 * counts[label]))


def _extra_rows(rows: _Rows, extra: Sequence[tuple[np.ndarray, str, str | None]]) -> None:
    for x, label, t in extra:
        if label in ("divergence", "agreement"):
            rows.add_part(x, label)
        rows.add_candidate(x, divergent=label == "divergence", agreeing=label == "agreement")
        if label == "divergence" and t in PAIR_TYPES:
            rows.add_type(x, t)


def fit_judge(events: Sequence[EventData], *, version: str, config: FitConfig = FitConfig(),
              extra: Sequence[tuple[np.ndarray, str, str | None]] = ()) -> Judge:
    """A judge fitted on ``events`` (and ``extra`` labelled pairs: features, "divergence" |
    "agreement" | "other", type or None, e.g. from reviewers' labels)."""
    rows = _Rows()
    for ev in events:
        _event_rows(rows, ev)
    if config.synthetic_weight > 0:
        _synthetic_rows(rows, events, config.synthetic_weight)
    _extra_rows(rows, extra)
    X = np.stack(rows.X)
    related = fit_linear(X, ["related" if d or a else "other" for d, a in zip(rows.divergent, rows.agreeing)],
                         features=PAIR_FEATURES, c=config.c_pair, positive="related")
    if rows.part_X:
        parts = fit_linear(np.stack(rows.part_X), rows.part_y, features=PAIR_FEATURES, c=config.c_pair,
                           positive="divergence", weights=rows.part_w)
    else:
        parts = fit_linear(X[:1], ["agreement"], features=PAIR_FEATURES, c=config.c_pair, positive="divergence")
    if not rows.type_X:  # no typed divergence to learn from: every type equally likely
        rows.add_type(X[0], "contradiction")
    types = fit_linear(np.stack(rows.type_X), rows.type_y, features=PAIR_FEATURES, c=config.c_type)
    om_X = np.concatenate([ev.omission_X for ev in events])
    om_y = [("omission" if any(i in ev.omission_ids for i in ids) else "other")
            for ev in events for ids in ev.omission_items]
    omission = (fit_linear(om_X, om_y, features=OMISSION_FEATURES, c=config.c_omission, positive="omission")
                if "omission" in om_y else None)
    judge = Judge(version=version, related=related, parts=parts, types=types, omission=omission,
                  thresholds={"divergence": 0.5, "agreement": 0.5, "omission": 0.5})
    judge.thresholds = choose_thresholds(judge, events, config)
    return judge


def _pair_probs(judge: Judge, ev: EventData) -> tuple[np.ndarray, np.ndarray]:
    return judge.pair_probabilities(ev.X)


def _capped(order: np.ndarray, ev: EventData, cap: int) -> list[int]:
    used: dict[str, int] = {}
    kept = []
    for n in order:
        ids = (ev.contexts[n].a.id, ev.contexts[n].b.id)
        if any(used.get(c, 0) >= cap for c in ids):
            continue
        for c in ids:
            used[c] = used.get(c, 0) + 1
        kept.append(int(n))
    return kept


def choose_thresholds(judge: Judge, events: Sequence[EventData], config: FitConfig) -> dict[str, float]:
    """Thresholds that maximise mean recall over ``events`` within the unmatched-flag budget.

    Divergence and omission flags share the budget: both count as flags that may match
    nothing. The agreement threshold maximises agreement recall within its own budget."""
    probs = [_pair_probs(judge, ev) for ev in events]
    om_probs = [judge.judge_omissions_X(ev.omission_X) if len(ev.omission_X) else np.zeros(0) for ev in events]

    def pair_outcome(t: float) -> list[tuple[set[str], int]]:
        out = []
        for ev, (p_div, p_agr) in zip(events, probs):
            chosen = np.where((p_div >= t) & (p_div >= p_agr))[0]
            kept = _capped(chosen[np.argsort(-p_div[chosen], kind="stable")], ev, config.max_flags_per_claim)
            found = {i for n in kept for i in ev.pair_items[n] if i in ev.divergence_ids}
            unmatched = sum(1 for n in kept if not ev.pair_items[n])
            out.append((found, unmatched))
        return out

    def omission_outcome(t: float) -> list[tuple[set[str], int]]:
        out = []
        for ev, p in zip(events, om_probs):
            n_party = len(ev.omission_claims)
            keep = max(1, math.ceil(config.max_omissions_ratio * n_party))
            chosen = [n for n in np.argsort(-p, kind="stable")[:keep] if p[n] >= t]
            found = {i for n in chosen for i in ev.omission_items[n]}
            unmatched = sum(1 for n in chosen if not ev.omission_items[n])
            out.append((found, unmatched))
        return out

    pair_table = {t: pair_outcome(t) for t in config.grid}
    om_table = {t: omission_outcome(t) for t in config.grid} if judge.omission is not None else {1.0: [(set(), 0)] * len(events)}
    best = (-math.inf, 0.5, 1.0)
    for tp, pair_res in pair_table.items():
        for to, om_res in om_table.items():
            recalls, unmatched = [], []
            for ev, (fp, up), (fo, uo) in zip(events, pair_res, om_res):
                gold = len(ev.event.divergences)
                if gold:
                    recalls.append(len(fp | fo) / gold)
                    unmatched.append((up + uo) / gold)
            recall, spent = float(np.mean(recalls)), float(np.mean(unmatched))
            objective = budgeted_recall(recall, spent, config.unmatched_budget)
            if objective > best[0] + 1e-9:
                best = (objective, tp, to)
    # agreement: most agreement recall within its budget of agreements on other pairs
    best_agr = (-math.inf, 0.95)
    for t in config.grid:
        recalls, wrong = [], []
        for ev, (p_div, p_agr) in zip(events, probs):
            chosen = np.where((p_agr >= t) & ~((p_div >= best[1]) & (p_div >= p_agr)))[0]
            if not ev.agreement_ids:
                continue
            found = {i for n in chosen for i in ev.pair_items[n] if i in ev.agreement_ids}
            recalls.append(len(found) / len(ev.agreement_ids))
            wrong.append(sum(1 for n in chosen if not any(i in ev.agreement_ids for i in ev.pair_items[n]))
                         / len(ev.agreement_ids))
        objective = float(np.mean(recalls)) - max(0.0, float(np.mean(wrong)) - config.agreement_budget)
        if objective > best_agr[0] + 1e-9:
            best_agr = (objective, t)
    return {"divergence": float(best[1]), "agreement": float(best_agr[1]), "omission": float(best[2])}


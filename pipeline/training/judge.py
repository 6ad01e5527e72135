"""Train and measure the divergence judge on gold events, leave-one-event-out (CONTRACTS §4c).

Not imported by the runtime. The expensive part of a run (ingest, claims, encoder,
alignment, pair classifier) does not depend on the judge, so each event is prepared
once (:func:`prepare_event`) and then judged by as many judges as needed: for every
event, a judge fitted on all the *other* events (:func:`leave_one_event_out`), whose
report is scored by the same code as ``evaluation/event_scorer.py``. The figure that
counts is the mean over events.

What a judge learns from (:func:`fit_judge`): every candidate pair of alignment,
labelled related (it covers both statements of a gold divergence or agreement) or not;
every gold pair whose statements became claims, labelled divergence or agreement (plus
edited claims of the training events, :func:`synthetic_rows`, weighted down); the gold
type of each divergence; every party claim that some side leaves unaddressed, labelled
omission when it covers the asserted statement of a gold omission.
Thresholds are chosen on the training events only, to maximise recall of gold
divergences while keeping flags that match nothing under a budget per gold divergence.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..config import RunConfig
from ..stages.divergence import omission_contexts, pair_contexts, silent_sides
from ..errors import DataError, Errors
from ..scoring.gold import (GoldCase, GoldEvent, GoldItem, build_case, is_real_event, load_gold, load_real_event, real_case,
                   score_report, slug)
from ..stages.judge import (OMISSION_FEATURES, PAIR_FEATURES, PAIR_TYPES, Judge, LinearModel, PairContext,
                    omission_features, pair_features, standardise)

logger = logging.getLogger(__name__)


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


# --- events ----------------------------------------------------------------------------------


def find_events(paths: Iterable[str | Path]) -> list[Path]:
    """Gold files (``*.json``) and real-event folders (``case.toml`` + ``gold.json``), from
    the paths given or the folders holding them, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix == ".json":
            found.append(path)
        elif is_real_event(path):
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.glob("*.json") if p.is_file())
            found += sorted(p for p in path.iterdir() if is_real_event(p))
        else:
            raise DataError(Errors.E100, path=path)
    if not found:
        raise DataError(Errors.E104, path=Path(", ".join(map(str, paths))))
    return found


@dataclass
class EventData:
    """One gold event run up to the judgement, with gold labels on its candidates."""

    event: GoldEvent
    kind: str  # paraphrased | real
    case: GoldCase
    analysis: Any  # runner.CaseAnalysis
    contexts: list[PairContext]
    X: np.ndarray  # pair features, one row per aligned pair
    pair_items: list[list[str]]  # gold item ids each pair covers
    omission_X: np.ndarray
    omission_claims: list[str]
    omission_items: list[list[str]]
    gold_pairs: dict[str, np.ndarray] = field(default_factory=dict)  # two-sided gold item -> its best pair's features
    synthetic: list = field(default_factory=list)  # (features, "divergence" | "agreement", type) from edited claims
    seconds: float = 0.0

    @property
    def divergence_ids(self) -> set[str]:
        return {g.id for g in self.event.divergences if g.b is not None}

    @property
    def agreement_ids(self) -> set[str]:
        return {g.id for g in self.event.agreements}

    @property
    def omission_ids(self) -> set[str]:
        return {g.id for g in self.event.divergences if g.b is None}

    def item(self, item_id: str) -> GoldItem:
        return next(g for g in (*self.event.divergences, *self.event.agreements) if g.id == item_id)


def prepare_event(source: Path, *, work_dir: Path, config: RunConfig, models: Any) -> EventData:
    """Build (paraphrased) or open (real) the event's case and run it up to the judgement."""
    import time

    from ..runner import prepare_case

    started = time.perf_counter()
    if is_real_event(source):
        event, kind, case_dir = load_real_event(source), "real", source
    else:
        event, kind = load_gold(source), "paraphrased"
        case_dir = work_dir / event.id
        build_case(event, case_dir)
    analysis = prepare_case(case_dir, config=config, models=models)
    if kind == "real":
        case = real_case(event, source, {"documents": [d.to_json(include_text=True) for d in analysis.documents]})
    else:
        case = GoldCase.read(case_dir)
    data = label_event(event, kind=kind, case=case, analysis=analysis, models=models)
    data.seconds = time.perf_counter() - started
    return data


def label_event(event: GoldEvent, *, kind: str, case: GoldCase, analysis: Any, models: Any) -> EventData:
    """The judge's features for a prepared case, with their gold labels."""
    claims = analysis.claims
    touches = _touches(case, claims)
    contexts = pair_contexts({c.id: c for c in claims}, analysis.alignment, analysis.probs)
    X = np.stack([pair_features(c) for c in contexts]) if contexts else np.zeros((0, len(PAIR_FEATURES)))
    items = [*event.divergences, *event.agreements]
    pair_items = [[g.id for g in items if g.b is not None and _covers(g, ctx.a.id, ctx.b.id, touches)]
                  for ctx in contexts]
    # omission candidates are the claims some side leaves unaddressed, as at run time
    om = [c for c in omission_contexts(claims, analysis.alignment, parties=analysis.case.parties) if silent_sides(c)]
    omission_X = np.stack([omission_features(c) for c in om]) if om else np.zeros((0, len(OMISSION_FEATURES)))
    omission_items = [[g.id for g in event.divergences
                       if g.b is None and (g.a.doc_id, g.a.index) in touches.get(c.claim.id, ())] for c in om]
    data = EventData(event=event, kind=kind, case=case, analysis=analysis, contexts=contexts, X=X,
                     pair_items=pair_items, omission_X=omission_X, omission_claims=[c.claim.id for c in om],
                     omission_items=omission_items)
    data.gold_pairs = _gold_pair_features(data, touches, models)
    return data


def _touches(case: GoldCase, claims: Sequence[Any]) -> dict[str, set[tuple[str, int]]]:
    by_case_doc = {v: k for k, v in case.doc_ids.items()}
    spans: dict[str, list[Any]] = {}
    for s in case.spans.values():
        spans.setdefault(s.doc_id, []).append(s)
    return {c.id: {(s.doc_id, s.index) for s in spans.get(by_case_doc.get(c.doc_id, ""), [])
                   if min(c.end, s.end) > max(c.start, s.start)} for c in claims}


def _covers(item: GoldItem, a: str, b: str, touches: dict[str, set[tuple[str, int]]]) -> bool:
    ra, rb = (item.a.doc_id, item.a.index), (item.b.doc_id, item.b.index)
    ta, tb = touches.get(a, set()), touches.get(b, set())
    return (ra in ta and rb in tb) or (ra in tb and rb in ta)


def _gold_pair_features(data: EventData, touches: dict[str, set[tuple[str, int]]], models: Any) -> dict[str, np.ndarray]:
    """Features of each two-sided gold pair whose statements both became claims, for the
    judge's ROC AUC: the aligned pair when alignment found it, else the closest pair of
    claims covering the two statements, run through the same classifier."""
    from ..stages.divergence import ContextBuilder

    claims = data.analysis.claims
    index = {c.id: i for i, c in enumerate(claims)}
    vectors = data.analysis.vectors
    out: dict[str, np.ndarray] = {}
    pending: list[tuple[str, Any, Any, float]] = []
    for item in [*data.event.divergences, *data.event.agreements]:
        if item.b is None:
            continue
        rows = [n for n, ids in enumerate(data.pair_items) if item.id in ids]
        if rows:
            out[item.id] = data.X[max(rows, key=lambda n: data.contexts[n].combined)]
            continue
        ra, rb = (item.a.doc_id, item.a.index), (item.b.doc_id, item.b.index)
        ca = [c for c in claims if ra in touches[c.id]]
        cb = [c for c in claims if rb in touches[c.id]]
        if not ca or not cb:
            continue
        a, b = max(((x, y) for x in ca for y in cb), key=lambda p: float(vectors[index[p[0].id]] @ vectors[index[p[1].id]]))
        pending.append((item.id, a, b, float(vectors[index[a.id]] @ vectors[index[b.id]])))
    if pending:
        probs = None
        if models.scorer is not None:
            texts = [(a.text, b.text) for _, a, b, _ in pending]
            both = models.scorer.predict_proba(texts + [(y, x) for x, y in texts])
            probs = (both[: len(texts)], both[len(texts):])
        builder = ContextBuilder(claims, data.analysis.alignment)
        for n, (item_id, a, b, cos) in enumerate(pending):
            ctx = builder.context(a, b, cosine=cos, combined=cos,
                                  probs_ab=None if probs is None else probs[0][n],
                                  probs_ba=None if probs is None else probs[1][n])
            out[item_id] = pair_features(ctx)
    return out


# --- synthetic edits ---------------------------------------------------------------------------

_EDITS = ("quantity", "scope", "contradiction", "added_condition", "attribution")


def synthetic_rows(ev: EventData, *, work_dir: Path, config: RunConfig, models: Any, per_event: int = 80,
                   seed: int = 13) -> list[tuple[np.ndarray, str, str | None]]:
    """Pairs made by editing the event's own claims, with known labels: a number changed
    (quantity), all <-> part (scope), a negation (contradiction), a condition added
    (added_condition), an actor swapped for another of the event (attribution), or a
    meaning-preserving rewrite (agreement). Both versions go through the real stages
    (a two-document case: claims, frames, encoder, classifier) so their features are
    what the judge sees at run time. They teach the parts and type models, never the
    related model (an edit is trivially about the same matter)."""
    import random

    from ..datasets.corruption import add_condition, negate, paraphrase, swap_entity, swap_number, swap_scope
    from ..stages.divergence import ContextBuilder
    from ..scoring.gold import transcript
    from ..files import atomic_write
    from ..runner import prepare_case

    rng = random.Random(f"{seed}-{ev.event.id}")
    claims = [c for c in ev.analysis.claims if c.side in ev.analysis.case.parties and len(c.text.split()) >= 5]
    rng.shuffle(claims)
    pool: dict[str, list[str]] = {}
    for c in ev.analysis.claims:
        for e in c.entities:
            if e.text not in pool.setdefault(e.label, []):
                pool[e.label].append(e.text)
    edits = {"quantity": swap_number, "scope": swap_scope, "contradiction": negate, "added_condition": add_condition}
    originals, edited, labels = [], [], []
    for n, c in enumerate(claims[:per_event]):
        kinds = list(_EDITS) if n % 4 else ["agreement"]  # one in four a paraphrase
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "agreement":
                new = paraphrase(c.text, rng)
            elif kind == "attribution":
                ents = [(e.start - c.start, e.end - c.start, e.label) for e in c.entities if c.start <= e.start]
                new = swap_entity(c.text, rng, entities=ents, pool=pool)
            else:
                new = edits[kind](c.text, rng)
            if new and new != c.text:
                originals.append(c.text)
                edited.append(new)
                labels.append(("agreement", None) if kind == "agreement" else ("divergence", kind))
                break
    if not originals:
        return []
    root = Path(work_dir) / f"{ev.event.id}-synthetic"
    text_a, spans_a = transcript("FIRST", originals)
    text_b, spans_b = transcript("SECOND", edited)
    atomic_write(root / "a.txt", text_a)
    atomic_write(root / "b.txt", text_b)
    atomic_write(root / "case.toml", f'id = "{slug(ev.event.id)}-synthetic"\n[[documents]]\nid = "a"\nside = "A"\n'
                 f'path = "a.txt"\n[[documents]]\nid = "b"\nside = "B"\npath = "b.txt"\n')
    analysis = prepare_case(root, config=config, models=models)

    def claim_at(doc: str, span: tuple[int, int]) -> Any:
        hits = [c for c in analysis.claims if c.doc_id == doc and min(c.end, span[1]) > max(c.start, span[0])]
        return max(hits, key=lambda c: min(c.end, span[1]) - max(c.start, span[0])) if hits else None

    pairs = [(claim_at("a", sa), claim_at("b", sb), label) for sa, sb, label in zip(spans_a, spans_b, labels)]
    pairs = [(a, b, label) for a, b, label in pairs if a is not None and b is not None]
    if not pairs:
        return []
    index = {c.id: i for i, c in enumerate(analysis.claims)}
    probs = None
    if models.scorer is not None:
        texts = [(a.text, b.text) for a, b, _ in pairs]
        both = models.scorer.predict_proba(texts + [(y, x) for x, y in texts])
        probs = (both[: len(texts)], both[len(texts):])
    builder = ContextBuilder(analysis.claims, analysis.alignment)
    rows = []
    for n, (a, b, (label, kind)) in enumerate(pairs):
        cos = float(analysis.vectors[index[a.id]] @ analysis.vectors[index[b.id]])
        ctx = builder.context(a, b, cosine=cos, combined=cos, rank_ab=1, rank_ba=1,
                              probs_ab=None if probs is None else probs[0][n],
                              probs_ba=None if probs is None else probs[1][n])
        rows.append((pair_features(ctx), label, kind))
    return rows


# --- fitting ---------------------------------------------------------------------------------


def _linear(X: np.ndarray, y: Sequence[Any], *, features: Sequence[str], c: float,
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


def fit_judge(events: Sequence[EventData], *, version: str, config: FitConfig = FitConfig(),
              extra: Sequence[tuple[np.ndarray, str, str | None]] = ()) -> Judge:
    """A judge fitted on ``events`` (and ``extra`` labelled pairs: features, "divergence" |
    "agreement" | "other", type or None, e.g. from reviewers' labels)."""
    X_rows, y_div, y_agr, type_X, type_y, part_X, part_y = [], [], [], [], [], [], []
    for ev in events:
        # whether two accounts of one matter part: every gold pair whose statements are claims
        for item_id, x in ev.gold_pairs.items():
            part_X.append(x)
            part_y.append("divergence" if item_id in ev.divergence_ids else "agreement")
        for n, ids in enumerate(ev.pair_items):
            div = [i for i in ids if i in ev.divergence_ids]
            agr = [i for i in ids if i in ev.agreement_ids]
            X_rows.append(ev.X[n])
            y_div.append(int(bool(div)))
            y_agr.append(int(bool(agr) and not div))
            if div and (t := _type_of(ev.item(div[0]))):
                type_X.append(ev.X[n])
                type_y.append(t)
        # gold pairs that alignment missed still teach the type model what each type looks like
        for item_id, x in ev.gold_pairs.items():
            if item_id in ev.divergence_ids and not any(item_id in ids for ids in ev.pair_items):
                if t := _type_of(ev.item(item_id)):
                    type_X.append(x)
                    type_y.append(t)
    part_w = [1.0] * len(part_X)
    if config.synthetic_weight > 0:
        # edited claims teach whether two accounts part, weighed down: they outnumber the gold
        # pairs and are closer to each other than real accounts ever are
        rows = [(x, label) for ev in events for x, label, _ in getattr(ev, "synthetic", ())]
        counts = {k: sum(1 for _, label in rows if label == k) for k in ("divergence", "agreement")}
        for x, label in rows:
            part_X.append(x)
            part_y.append(label)
            # each class of edits weighs the same in all, so the edits (mostly divergences) do
            # not move the parts model's prior
            part_w.append(config.synthetic_weight * len(rows) / (2 * counts[label]))
    for x, label, t in extra:
        if label in ("divergence", "agreement"):
            part_X.append(x)
            part_y.append(label)
            part_w.append(1.0)
        X_rows.append(x)
        y_div.append(int(label == "divergence"))
        y_agr.append(int(label == "agreement"))
        if label == "divergence" and t in PAIR_TYPES:
            type_X.append(x)
            type_y.append(t)
    X = np.stack(X_rows)
    related = _linear(X, ["related" if d or a else "other" for d, a in zip(y_div, y_agr)], features=PAIR_FEATURES,
                      c=config.c_pair, positive="related")
    parts = _linear(np.stack(part_X), part_y, features=PAIR_FEATURES, c=config.c_pair, positive="divergence",
                    weights=part_w) \
        if part_X else _linear(X[:1], ["agreement"], features=PAIR_FEATURES, c=config.c_pair, positive="divergence")
    if not type_X:  # no typed divergence to learn from: every type equally likely
        type_X, type_y = [X[0]], ["contradiction"]
    types = _linear(np.stack(type_X), type_y, features=PAIR_FEATURES, c=config.c_type)
    om_X = np.concatenate([ev.omission_X for ev in events])
    om_y = [("omission" if any(i in ev.omission_ids for i in ids) else "other")
            for ev in events for ids in ev.omission_items]
    omission = (_linear(om_X, om_y, features=OMISSION_FEATURES, c=config.c_omission, positive="omission")
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
            objective = recall - max(0.0, spent - config.unmatched_budget)
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


# --- scoring ---------------------------------------------------------------------------------


def roc_auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positive or not negative:
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def score_event(ev: EventData, judge: Judge | None, *, config: RunConfig, models: Any) -> dict[str, Any]:
    """Judge one prepared event, write nothing, and score the report as the event scorer does."""
    from ..runner import judge_case

    report = judge_case(ev.analysis, config=config, models=models, judge=judge)
    score = score_report(ev.event, ev.case, report)
    row: dict[str, Any] = {"event": ev.event.id, "kind": ev.kind, **score.metrics()}
    if judge is not None:
        # every gold pair speaks of one matter: what tells them apart is P(part | same matter)
        div = [float(judge.parts.predict_proba(x[None])[0, 1]) for i, x in ev.gold_pairs.items()
               if i in ev.divergence_ids]
        agr = [float(judge.parts.predict_proba(x[None])[0, 1]) for i, x in ev.gold_pairs.items()
               if i in ev.agreement_ids]
    else:  # the rules' judge: the classifier's contradiction, as before judges existed
        idx = PAIR_FEATURES.index("nli_contradiction_max")
        div = [float(x[idx]) for i, x in ev.gold_pairs.items() if i in ev.divergence_ids]
        agr = [float(x[idx]) for i, x in ev.gold_pairs.items() if i in ev.agreement_ids]
    row["auc"] = roc_auc(div, agr)
    row["auc_pairs"] = [len(div), len(agr)]
    row["_scores"] = (div, agr)
    row["items"] = [{"id": r.id, "gold_type": r.gold_type, "found": r.found, "report_type": r.report_type,
                     "score": r.report_score} for r in score.items]
    return row


METRICS = ("recall", "recall_flagged", "type_accuracy", "agreement_recall", "unmatched_per_gold_divergence", "auc")


def leave_one_event_out(events: Sequence[EventData], *, config: RunConfig, models: Any,
                        fit: FitConfig = FitConfig()) -> list[dict[str, Any]]:
    """Each event judged by a judge fitted on all the others."""
    rows = []
    for n, ev in enumerate(events):
        judge = fit_judge([e for m, e in enumerate(events) if m != n], version=f"loeo-{ev.event.id}", config=fit)
        row = score_event(ev, judge, config=config, models=models)
        row["thresholds"] = judge.thresholds
        rows.append(row)
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Macro means per metric (AUC also pooled over every event's gold pairs)."""
    out: dict[str, Any] = {}
    for m in METRICS:
        values = [r[m] for r in rows if r.get(m) is not None]
        out[m] = round(float(np.mean(values)), 4) if values else None
    pos = [s for r in rows for s in r["_scores"][0]]
    neg = [s for r in rows for s in r["_scores"][1]]
    pooled = roc_auc(pos, neg)
    out["auc_pooled"] = round(pooled, 4) if pooled is not None else None
    out["events"] = len(rows)
    return out


def prepare_events(paths: Iterable[str | Path], *, work_dir: Path, config: RunConfig, models: Any,
                   progress: Any = None, synthetic: bool = False) -> list[EventData]:
    """Every event prepared once (and, for fitting, its edited-claim pairs made)."""
    import time

    events = []
    for source in find_events(paths):
        ev = prepare_event(source, work_dir=Path(work_dir), config=config, models=models)
        if synthetic:
            started = time.perf_counter()
            ev.synthetic = synthetic_rows(ev, work_dir=Path(work_dir), config=config, models=models)
            ev.seconds += time.perf_counter() - started
        if progress:
            progress(f"{ev.event.id}: {len(ev.analysis.claims)} claims, {len(ev.contexts)} candidate pairs"
                     + (f", {len(ev.synthetic)} edited pairs" if synthetic else "") + f" ({ev.seconds:.1f}s)")
        events.append(ev)
    return events


def _public(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def benchmark(paths: Iterable[str | Path], *, mode: str, config: RunConfig, models: Any, work_dir: Path,
              progress: Any = None, fit: FitConfig = FitConfig()) -> dict[str, Any]:
    """Every event run and scored: ``loeo`` (a judge fitted without the event), ``fixed``
    (the models' judge) or ``rules`` (no judge). Returns rows and macro means, per kind too."""
    events = prepare_events(paths, work_dir=work_dir, config=config, models=models, progress=progress,
                            synthetic=mode == "loeo" and fit.synthetic_weight > 0)
    if mode == "loeo":
        rows = leave_one_event_out(events, config=config, models=models, fit=fit)
    else:
        judge = models.judge if mode == "fixed" else None
        rows = [score_event(ev, judge, config=config, models=models) for ev in events]
    kinds = sorted({r["kind"] for r in rows})
    return {"mode": mode, "judge": getattr(models.judge, "version", None) if mode == "fixed" else mode,
            "classifier": getattr(models.scorer, "version", "none") if models.scorer else "none",
            "events": _public(rows), "mean": summarise(rows),
            "mean_by_kind": {k: summarise([r for r in rows if r["kind"] == k]) for k in kinds}}


def format_table(result: dict[str, Any]) -> str:
    head = (f"{'event':<30} {'kind':<11} {'gold':>4} {'recall':>6} {'flagged':>7} {'type':>5} {'agree':>5} "
            f"{'unmatch/g':>9} {'auc':>5}")
    lines = [f"mode {result['mode']}  classifier {result['classifier']}", head, "-" * len(head)]

    def fmt(x: Any, w: int) -> str:
        return f"{x:>{w}.2f}" if isinstance(x, (int, float)) and x is not None else f"{'-':>{w}}"

    for r in result["events"]:
        lines.append(f"{r['event']:<30} {r['kind']:<11} {r['gold_divergences']:>4} {fmt(r['recall'], 6)} "
                     f"{fmt(r['recall_flagged'], 7)} {fmt(r['type_accuracy'], 5)} {fmt(r['agreement_recall'], 5)} "
                     f"{fmt(r['unmatched_per_gold_divergence'], 9)} {fmt(r['auc'], 5)}")
    lines.append("-" * len(head))
    for name, m in [("MEAN (all events)", result["mean"])] + [
            (f"mean ({k})", v) for k, v in result.get("mean_by_kind", {}).items()]:
        lines.append(f"{name:<42} {fmt(m['recall'], 6)} {fmt(m['recall_flagged'], 7)} {fmt(m['type_accuracy'], 5)} "
                     f"{fmt(m['agreement_recall'], 5)} {fmt(m['unmatched_per_gold_divergence'], 9)} "
                     f"{fmt(m['auc'], 5)}")
    lines.append(f"pooled AUC over all gold pairs: {result['mean'].get('auc_pooled')}")
    return "\n".join(lines)


def objective(mean: dict[str, Any]) -> float:
    """One number for gating: recall, less any excess over 3 unmatched flags per gold divergence."""
    return float(mean.get("recall") or 0.0) - max(0.0, float(mean.get("unmatched_per_gold_divergence") or 0.0) - 3.0)


def train_judge(paths: Iterable[str | Path], *, version: str | None, config: RunConfig, models: Any,
                work_dir: Path, models_dir: Path, labels: Path | None = None, reports: Path | None = None,
                promote: str = "auto", progress: Any = None, fit: FitConfig = FitConfig()) -> dict[str, Any]:
    """Fit a judge on every event (+ labels), measure the recipe leave-one-event-out, write the
    version folder (judge.json, metrics.json, README.md model card) and register it."""
    from datetime import datetime, timezone

    from ..files import atomic_write
    from ..registry import default_judge, load_registry, register_judge

    events = prepare_events(paths, work_dir=work_dir, config=config, models=models, progress=progress,
                            synthetic=fit.synthetic_weight > 0)
    extra = label_rows(labels, reports=reports, models=models) if labels else []
    rows = leave_one_event_out(events, config=config, models=models, fit=fit)
    mean = summarise(rows)
    version = version or f"judge-{datetime.now(timezone.utc):%Y%m%d-%H%M}"
    judge = fit_judge(events, version=version, config=fit, extra=extra)
    judge.meta = {"events": [ev.event.id for ev in events], "labels": len(extra),
                  "classifier": getattr(models.scorer, "version", "none") if models.scorer else "none",
                  "encoder": models.encoder.name}
    folder = Path(models_dir) / version
    metrics = {"loeo_mean": mean, "objective": round(objective(mean), 4)}
    atomic_write(folder / "judge.json", json.dumps(judge.to_json(), indent=1))
    result = {"mode": "loeo", "classifier": judge.meta["classifier"], "events": _public(rows), "mean": mean,
              "mean_by_kind": {k: summarise([r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})}}
    atomic_write(folder / "metrics.json", json.dumps(result, indent=1))
    atomic_write(folder / "README.md", model_card(judge, result, n_labels=len(extra)))
    current = default_judge(models_dir)
    current_entry = ((load_registry(models_dir).get("judge") or {}).get("versions") or {}).get(current or "", {})
    current_obj = (current_entry.get("metrics") or {}).get("objective")
    if promote == "always" or (promote == "auto" and (current_obj is None or metrics["objective"] >= current_obj)):
        promoted, reason = True, (f"objective {metrics['objective']:.3f} vs the default's "
                                  f"{current_obj if current_obj is not None else 'none'}")
    else:
        promoted, reason = False, ("--promote never" if promote == "never" else
                                   f"objective {metrics['objective']:.3f} below the default's {current_obj:.3f}")
    register_judge(version, metrics=metrics, promote_it=promoted, models_dir=models_dir)
    return {"version": version, "path": str(folder), "promoted": promoted, "reason": reason, "loeo": result}


def model_card(judge: Judge, result: dict[str, Any], *, n_labels: int) -> str:

    m = result["mean"]
    lines = [f"# Divergence judge `{judge.version}`", "",
             "Logistic regressions over pair and omission features (see `pipeline/judge.py`): "
             "P(the two claims speak of one matter and part), P(compatible accounts), the divergence type, "
             "and P(a party claim is left out by the other sides). Stored as plain JSON (no pickle).", "",
             "## Trained on", "",
             f"- Gold events (development data of this project, CONTRACTS §4/§4b): {', '.join(judge.meta['events'])}.",
             "  Paraphrased events are the project's own labelled data; real-event gold quotes official White House "
             "and Kremlin texts (public-domain US government works; Kremlin texts under CC BY 4.0) and is used as "
             "evaluation/development data only — the judge stores no text.",
             "- Edited claims of those events (a number changed, all/part swapped, a negation, a condition added, an "
             "actor swapped, or a meaning-preserving rewrite; `pipeline/corruption.py`), weighted "
             f"{FitConfig().synthetic_weight} in the parts model.",
             f"- Reviewers' labels: {n_labels} pairs." if n_labels else "- No reviewers' labels.",
             f"- Features come from the pair classifier `{judge.meta['classifier']}` (see its own card for its data and "
             f"licences) and the encoder `{judge.meta['encoder']}` (Apache-2.0).", "",
             "## Leave-one-event-out (each event judged by a judge fitted without it)", "",
             "| event | kind | recall | flagged | type acc | agreement | unmatched/gold | AUC |",
             "|---|---|---|---|---|---|---|---|"]
    f = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    for r in result["events"]:
        lines.append(f"| {r['event']} | {r['kind']} | {f(r['recall'])} | {f(r['recall_flagged'])} | "
                     f"{f(r['type_accuracy'])} | {f(r['agreement_recall'])} | "
                     f"{f(r['unmatched_per_gold_divergence'])} | {f(r['auc'])} |")
    lines.append(f"| **mean** | | {f(m['recall'])} | {f(m['recall_flagged'])} | {f(m['type_accuracy'])} | "
                 f"{f(m['agreement_recall'])} | {f(m['unmatched_per_gold_divergence'])} | {f(m['auc'])} |")
    lines += ["", f"Thresholds: {judge.thresholds}.", ""]
    return "\n".join(lines)


def label_rows(labels: Path, *, reports: Path | None, models: Any) -> list[tuple[np.ndarray, str, str | None]]:
    """Reviewers' labels as extra judge training pairs. Each label names a flag of a report;
    the pair is rebuilt from that report's claims (frames included), its cosine re-encoded
    and the classifier run in both directions. Accepted/corrected flags are divergences of
    their (corrected) type, or agreements; rejected flags are pairs that do not part."""
    import pandas as pd

    from ..stages.align import Alignment
    from ..stages.divergence import ContextBuilder
    from ..schema import AlignedPair, Claim, Entity, Frame

    try:
        frame = (pd.read_parquet(labels) if labels.suffix == ".parquet" else
                 pd.read_json(labels, lines=True) if labels.suffix == ".jsonl" else pd.read_csv(labels))
    except (OSError, ValueError) as err:
        raise DataError(Errors.E101, path=labels, detail=str(err)) from None
    needed = {"case_id", "claim_id_a", "claim_id_b", "decision", "type"}
    if missing := needed - set(frame.columns):
        raise DataError(Errors.E101, path=labels, detail=f"missing columns {sorted(missing)}")
    claims_of: dict[str, dict[str, Claim]] = {}
    report_pairs: dict[str, list[tuple[str, str]]] = {}
    out: list[tuple[np.ndarray, str, str | None]] = []
    pending: list[tuple[Claim, Claim, str, str | None, str]] = []
    for row in frame.itertuples():
        if not isinstance(row.claim_id_b, str) or not row.claim_id_b:
            continue  # omissions: one claim, no pair
        case_id = str(row.case_id)
        if case_id not in claims_of:
            path = Path(reports or "reports") / case_id / "report.json"
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                logger.warning("%s: report not found; its labels are skipped", path)
                claims_of[case_id] = {}
                continue
            claims_of[case_id] = {c["id"]: Claim(
                id=c["id"], doc_id=c["doc_id"], side=c["side"], claimer=c.get("claimer") or "", text=c["text"],
                start=c["start"], end=c["end"], score=float(c.get("score") or 0.5),
                entities=[Entity(**e) for e in c.get("entities") or []],
                frame=Frame(**(c.get("frame") or {})), reported=bool(c.get("reported")))
                for c in raw.get("claims") or []}
            report_pairs[case_id] = [tuple(d["claims"][:2]) for d in raw.get("divergences") or []
                                     if len(d.get("claims") or []) == 2]
        a, b = claims_of[case_id].get(str(row.claim_id_a)), claims_of[case_id].get(str(row.claim_id_b))
        if a is None or b is None:
            continue
        decision, typ = str(row.decision), (str(row.type) if isinstance(row.type, str) else None)
        if decision == "rejected":
            pending.append((a, b, "other", None, case_id))
        elif typ == "agreement":
            pending.append((a, b, "agreement", None, case_id))
        elif typ in PAIR_TYPES:
            pending.append((a, b, "divergence", typ, case_id))
    if not pending:
        return out
    vectors = models.encoder.encode([t for a, b, _, _, _ in pending for t in (a.text, b.text)])
    probs = None
    if models.scorer is not None:
        texts = [(a.text, b.text) for a, b, _, _, _ in pending]
        both = models.scorer.predict_proba(texts + [(y, x) for x, y in texts])
        probs = (both[: len(texts)], both[len(texts):])
    builders: dict[str, ContextBuilder] = {}
    for n, (a, b, label, typ, case_id) in enumerate(pending):
        cos = float(vectors[2 * n] @ vectors[2 * n + 1])
        if case_id not in builders:  # the report's pairs stand in for its alignment
            pairs = [AlignedPair(a=x, b=y, similarity=cos) for x, y in report_pairs.get(case_id, [])]
            builders[case_id] = ContextBuilder(list(claims_of[case_id].values()),
                                               Alignment(pairs=pairs, topic_of={}, topic_names={}))
        ctx = builders[case_id].context(a, b, cosine=cos, combined=cos, rank_ab=1, rank_ba=1,
                                        probs_ab=None if probs is None else probs[0][n],
                                        probs_ba=None if probs is None else probs[1][n])
        out.append((pair_features(ctx), label, typ))
    return out


__all__ = ["EventData", "FitConfig", "METRICS", "choose_thresholds", "find_events", "fit_judge",
           "leave_one_event_out", "prepare_event", "prepare_events", "benchmark", "format_table", "train_judge",
           "label_rows", "model_card", "objective", "roc_auc", "score_event", "summarise"]

"""Gold events run up to the judgement, with gold labels on every candidate the judge will see.

The expensive part of a run (ingest, claims, encoder, alignment, pair classifier) does
not depend on the judge, so each event is prepared once (:func:`prepare_event`) and then
judged by as many judges as needed. :func:`label_event` labels its candidates: every
aligned pair with the gold items it covers (both statements of a divergence or
agreement), every party claim some side leaves unaddressed with the gold omissions it
asserts, and the features of each two-sided gold pair (for the judge's ROC AUC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..config import RunConfig
from ..errors import DataError, Errors
from ..scoring.gold import GoldCase, GoldEvent, GoldItem, build_case, load_gold
from ..scoring.real import is_real_event, load_real_event, real_case
from ..stages.divergence import omission_contexts, pair_contexts, silent_sides
from ..stages.judge import OMISSION_FEATURES, PAIR_FEATURES, PairContext, omission_features, pair_features


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
        builder = ContextBuilder(claims, data.analysis.alignment)
        rows = pair_feature_rows([(builder, a, b, cos) for _, a, b, cos in pending], models.scorer)
        out.update((item_id, x) for (item_id, *_), x in zip(pending, rows))
    return out


def pair_feature_rows(pairs: Sequence[tuple[Any, Any, Any, float]], scorer: Any, *,
                      rank: int | None = None) -> list[np.ndarray]:
    """The judge's features of claim pairs that alignment did not pair (gold pairs it
    missed, edited claims, reviewers' labels): each ``(builder, a, b, cosine)`` is put in
    context by its ``ContextBuilder`` with the pair classifier read both ways (one batch
    for all pairs; no classifier, no NLI features) and, with ``rank``, that neighbour rank."""
    n = len(pairs)
    probs_ab: Sequence[Any] = [None] * n
    probs_ba: Sequence[Any] = [None] * n
    if scorer is not None and n:
        texts = [(a.text, b.text) for _, a, b, _ in pairs]
        both = scorer.predict_proba(texts + [(y, x) for x, y in texts])
        probs_ab, probs_ba = both[:n], both[n:]
    ranks = {} if rank is None else {"rank_ab": rank, "rank_ba": rank}
    return [pair_features(builder.context(a, b, cosine=cos, combined=cos, probs_ab=probs_ab[i],
                                          probs_ba=probs_ba[i], **ranks))
            for i, (builder, a, b, cos) in enumerate(pairs)]


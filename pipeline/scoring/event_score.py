"""Score a report against a gold event (CONTRACTS §4, §4b).

A report's claims are matched to the gold statements by character overlap rather than
by text: the pipeline may split a statement into two claims or trim its opening words,
and either must still count. :func:`score_report` gives the event's recall, type
accuracy, agreement recall and the flags that match nothing; ``evaluation/event_scorer.py``
prints it and the judge's leave-one-event-out benchmark averages it over events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import DataError, Errors
from ..report import Report, ReportDivergence
from .gold import GoldCase, GoldEvent, GoldItem, StatementSpan

__all__ = ["EventScore", "ItemResult", "score_report"]


@dataclass(frozen=True)
class ItemResult:
    id: str
    kind: str
    topic: str
    gold_type: str
    accepted_types: tuple[str, ...]
    found: bool
    report_id: str | None = None  # the report entry judged for this gold item
    report_type: str | None = None
    report_score: float | None = None
    type_correct: bool | None = None  # None when not found


@dataclass
class EventScore:
    event_id: str
    divergences: int
    found: int
    found_flagged: int  # found with a non-agreement type
    type_correct: int
    agreements: int
    agreements_recalled: int
    flagged: int  # non-agreement entries in the report
    unmatched_flagged: int
    unmapped_gold_types: list[str]
    items: list[ItemResult]
    unmatched_ids: list[str]

    @property
    def recall(self) -> float:
        return self.found / self.divergences if self.divergences else 0.0

    @property
    def recall_flagged(self) -> float:
        return self.found_flagged / self.divergences if self.divergences else 0.0

    @property
    def type_accuracy(self) -> float:
        return self.type_correct / self.found if self.found else 0.0

    @property
    def agreement_recall(self) -> float:
        return self.agreements_recalled / self.agreements if self.agreements else 0.0

    @property
    def unmatched_per_gold(self) -> float:
        return self.unmatched_flagged / self.divergences if self.divergences else 0.0

    def metrics(self) -> dict[str, float | int]:
        return {
            "gold_divergences": self.divergences, "found": self.found, "recall": round(self.recall, 4),
            "found_flagged": self.found_flagged, "recall_flagged": round(self.recall_flagged, 4),
            "type_correct": self.type_correct, "type_accuracy": round(self.type_accuracy, 4),
            "gold_agreements": self.agreements, "agreements_recalled": self.agreements_recalled,
            "agreement_recall": round(self.agreement_recall, 4),
            "report_flagged": self.flagged, "unmatched_flagged": self.unmatched_flagged,
            "unmatched_per_gold_divergence": round(self.unmatched_per_gold, 4),
        }

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "metrics": self.metrics(), "unmapped_gold_types": self.unmapped_gold_types,
                "items": [asdict(i) for i in self.items], "unmatched_report_ids": self.unmatched_ids}


def score_report(event: GoldEvent, case: GoldCase, report: Report | Mapping[str, Any]) -> EventScore:
    """Score a report of ``case`` against the gold ``event``.

    A gold divergence is *found* when a report entry (of any type) has claims overlapping
    the gold statements of both sides; for an omission, a claim overlapping the asserted
    statement, and the entry must not set it against a side that is not silent (an
    omission entry naming the silent sides, or a pair with a claim of a silent side).
    Among several matching entries the most confident non-agreement one is judged (that
    is the one a reader sees first), else the most confident agreement. A gold agreement
    is recalled when a matching entry has type ``agreement``. Flagged entries (type other
    than agreement) matching no gold divergence or agreement are counted as unmatched.
    """
    report = Report.from_data(report)
    by_case_doc = {v: k for k, v in case.doc_ids.items()}
    if report.case.id != case.case_id:
        raise DataError(Errors.E102, detail=f"report is for case {report.case.id!r}, not {case.case_id!r}")
    strangers = sorted({c.doc_id for c in report.claims} - set(by_case_doc))
    if strangers:
        raise DataError(Errors.E102, detail=f"claims from documents not in the case: {', '.join(strangers)}")
    touches: dict[str, set[tuple[str, int]]] = {}  # claim id -> gold statements it overlaps
    claim_side: dict[str, str] = {}
    spans_by_doc: dict[str, list[StatementSpan]] = {}
    for s in case.spans.values():
        spans_by_doc.setdefault(s.doc_id, []).append(s)
    for claim in report.claims:
        gold_doc = by_case_doc.get(claim.doc_id)
        touches[claim.id] = {(s.doc_id, s.index) for s in spans_by_doc.get(gold_doc, [])
                             if min(claim.end, s.end) > max(claim.start, s.start)}
        claim_side[claim.id] = claim.side
    entries = report.divergences

    def matches(item: GoldItem, entry: ReportDivergence) -> bool:
        cids = entry.claims
        hit_a = [c for c in cids if (item.a.doc_id, item.a.index) in touches.get(c, ())]
        if not hit_a:
            return False
        if item.b is not None:
            return any((item.b.doc_id, item.b.index) in touches.get(c, ()) for c in cids)
        if not item.omitting_sides:
            return True
        silent = set(item.omitting_sides)
        if entry.type == "omission":
            named = entry.sides[1:]
            return not named or bool(silent & set(named))
        others = [c for c in cids if c not in hit_a]
        return all(claim_side.get(c) in silent for c in others)

    def judged(item: GoldItem) -> ReportDivergence | None:
        hits = [e for e in entries if matches(item, e)]
        flagged = [e for e in hits if e.type != "agreement"]
        pool = flagged or hits
        return max(pool, key=_score) if pool else None

    items: list[ItemResult] = []
    for item in event.divergences:
        e = judged(item)
        items.append(_result(item, e, correct=e is not None and e.type in item.types))
    for item in event.agreements:
        agreeing = [e for e in entries if e.type == "agreement" and matches(item, e)]
        e = max(agreeing, key=_score) if agreeing else judged(item)
        items.append(_result(item, e, correct=bool(agreeing)))

    gold_items = [*event.divergences, *event.agreements]
    flagged_entries = [e for e in entries if e.type != "agreement"]
    unmatched = [e.id for e in flagged_entries if not any(matches(g, e) for g in gold_items)]
    div_results = [r for r in items if r.kind == "divergence"]
    return EventScore(
        event_id=event.id,
        divergences=len(event.divergences),
        found=sum(r.found for r in div_results),
        found_flagged=sum(1 for r in div_results if r.found and r.report_type != "agreement"),
        type_correct=sum(1 for r in div_results if r.type_correct),
        agreements=len(event.agreements),
        agreements_recalled=sum(1 for r in items if r.kind == "agreement" and r.type_correct),
        flagged=len(flagged_entries),
        unmatched_flagged=len(unmatched),
        unmapped_gold_types=sorted({i.gold_type for i in event.divergences if not i.types}),
        items=items,
        unmatched_ids=unmatched,
    )


def _score(entry: ReportDivergence) -> float:
    return float(entry.score or 0.0)


def _result(item: GoldItem, entry: ReportDivergence | None, *, correct: bool) -> ItemResult:
    if entry is None:
        return ItemResult(id=item.id, kind=item.kind, topic=item.topic, gold_type=item.gold_type,
                          accepted_types=item.types, found=False)
    return ItemResult(id=item.id, kind=item.kind, topic=item.topic, gold_type=item.gold_type,
                      accepted_types=item.types, found=True, report_id=entry.id,
                      report_type=entry.type, report_score=_score(entry),
                      type_correct=correct)

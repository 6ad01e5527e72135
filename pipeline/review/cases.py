"""Report folders as the review app sees them: claims in context and a queue of flags.

``report.json`` is read and checked by :meth:`pipeline.report.Report.read` (types, unique
ids, a flag's claims exist); here it becomes what the pages show: claims with the text
around them, and flags ordered for active learning: the reviewer's time is best spent
where the model is least sure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Errors, ReportError
from ..labels import ClaimRef
from ..report import REPORT_FILE, Report, ReportDivergence, ReportDocument, ReportSentence
from ..schema import NON_PARTY_SIDES

# characters of context either side of a claim when the report has no sentence spans
_FALLBACK_CONTEXT_CHARS = 280


@dataclass(frozen=True)
class ReviewClaim:
    id: str
    doc_id: str
    side: str
    claimer: str | None
    speaker: str | None
    text: str
    start: int  # offsets into the document text
    end: int

    def ref(self) -> ClaimRef:
        return ClaimRef(id=self.id, doc_id=self.doc_id, side=self.side, text=self.text)

    @property
    def who(self) -> str:
        """Who is heard saying it: the claimer, and the speaker when reported through someone else."""
        if self.claimer and self.speaker and self.claimer != self.speaker:
            return f"{self.claimer} (per {self.speaker})"
        return self.claimer or self.speaker or ""


@dataclass(frozen=True)
class Context:
    """A claim with the text around it; ``before``/``after`` stay inside the speaker's turn."""

    claim: ReviewClaim
    before: str
    after: str
    document: ReportDocument | None


@dataclass(frozen=True)
class ReviewDivergence:
    id: str
    type: str
    topic: str
    claims: tuple[str, ...]
    sides: tuple[str, ...]
    score: float | None
    explanation: str
    evidence: Mapping[str, Any]
    rank: int  # position in the report (most confident first)
    highlights: Mapping[str, list[tuple[int, int]]] = field(default_factory=dict)
    omitting_sides: tuple[str, ...] = ()

    @classmethod
    def of(cls, d: ReportDivergence, *, rank: int, topic: str, claims: Mapping[str, ReviewClaim]) -> ReviewDivergence:
        return cls(id=d.id, type=d.type, topic=topic, claims=tuple(d.claims),
                   sides=tuple(d.sides or (claims[c].side for c in d.claims)),
                   score=float(d.score) if d.score is not None else None, explanation=d.explanation or "",
                   evidence=d.evidence, rank=rank, highlights=d.highlights, omitting_sides=tuple(d.omitting_sides))

    @property
    def uncertainty(self) -> float:
        return uncertainty(score=self.score, evidence=self.evidence)

    @property
    def is_pair(self) -> bool:
        return len(self.claims) >= 2

    def segments(self, claim: ReviewClaim) -> list[tuple[str, bool]]:
        """The claim text cut into (text, highlighted) pieces by ``evidence["highlights"]``.

        Highlights are the words that differ between the two claims, as offsets into
        the claim text; showing them saves the reviewer from diffing by eye.
        """
        spans = sorted((a, b) for a, b in self.highlights.get(claim.id, []) if 0 <= a < b <= len(claim.text))
        pieces: list[tuple[str, bool]] = []
        at = 0
        for a, b in spans:
            a = max(a, at)  # overlapping spans: highlight the union once
            if b <= a:
                continue
            if a > at:
                pieces.append((claim.text[at:a], False))
            pieces.append((claim.text[a:b], True))
            at = b
        if at < len(claim.text):
            pieces.append((claim.text[at:], False))
        return pieces


@dataclass
class ReviewCase:
    id: str
    title: str | None
    date: str | None
    folder: Path
    documents: dict[str, ReportDocument]
    claims: dict[str, ReviewClaim]
    divergences: list[ReviewDivergence]
    _by_id: dict[str, ReviewDivergence] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {d.id: d for d in self.divergences}

    def divergence(self, divergence_id: str) -> ReviewDivergence | None:
        return self._by_id.get(divergence_id)

    def claim_refs(self, divergence: ReviewDivergence) -> list[ClaimRef]:
        return [self.claims[c].ref() for c in divergence.claims[:2]]

    def flag_on(self, claim_ids: Iterable[str]) -> ReviewDivergence | None:
        """The flag the pipeline already raised on exactly these claims, if any."""
        wanted = set(claim_ids)
        return next((d for d in self.divergences if set(d.claims[:2]) == wanted), None)

    @property
    def sides(self) -> list[str]:
        return list(dict.fromkeys(c.side for c in self.claims.values()))

    def silent_sides(self, divergence: ReviewDivergence) -> list[str]:
        """For an omission: the parties that never address the claim (the report's, else the others)."""
        if divergence.omitting_sides:
            return list(divergence.omitting_sides)
        return [s for s in self.sides if s not in divergence.sides and s.lower() not in NON_PARTY_SIDES]

    def progress(self, reviews: Mapping[str, Any]) -> dict[str, int]:
        return {"reviewed": sum(1 for d in self.divergences if d.id in reviews), "total": len(self.divergences)}

    def queue(self, reviews: Mapping[str, Any]) -> list[ReviewDivergence]:
        """Unreviewed flags first, then most uncertain first, then report order."""
        return sorted(self.divergences, key=lambda d: (d.id in reviews, -d.uncertainty, d.rank))

    def by_topic(self, reviews: Mapping[str, Any]) -> list[tuple[str, list[ReviewDivergence]]]:
        """Topics in the order of their first flag in the queue; each topic's flags in queue order."""
        groups: dict[str, list[ReviewDivergence]] = {}
        for d in self.queue(reviews):
            groups.setdefault(d.topic or "(no topic)", []).append(d)
        return list(groups.items())

    def context(self, claim_id: str, *, sentences: int = 1) -> Context:
        """The claim with ``sentences`` sentences either side, from its own turn."""
        claim = self.claims[claim_id]
        doc = self.documents.get(claim.doc_id)
        text = doc.text if doc else None
        start, end = claim.start, claim.end
        if text is None or text[start:end] != claim.text:
            return Context(claim=claim, before="", after="", document=doc)  # no trustworthy offsets
        lo, hi = _context_span(text, doc.sentences if doc else [], start, end, sentences)
        return Context(claim=claim, before=text[lo:start], after=text[end:hi], document=doc)


def _context_span(text: str, spans: list[ReportSentence], start: int, end: int, n: int) -> tuple[int, int]:
    inside = [i for i, s in enumerate(spans) if s.start < end and s.end > start]
    if not inside:
        lo = max(0, start - _FALLBACK_CONTEXT_CHARS * n)
        hi = min(len(text), end + _FALLBACK_CONTEXT_CHARS * n)
        # widen to whole words so the context does not start mid-word
        while lo > 0 and not text[lo - 1].isspace():
            lo -= 1
        while hi < len(text) and not text[hi].isspace():
            hi += 1
        return lo, hi
    first, last = inside[0], inside[-1]
    turn = spans[first].turn
    i = first
    while i > 0 and first - i < n and spans[i - 1].turn == turn:
        i -= 1
    j = last
    while j + 1 < len(spans) and j - last < n and spans[j + 1].turn == turn:
        j += 1
    return min(spans[i].start, start), max(spans[j].end, end)


def uncertainty(*, score: float | None, evidence: Mapping[str, Any] | None = None) -> float:
    """How unsure the model is about a flag, in [0, 1].

    The normalised entropy of ``evidence["probs"]`` (label -> probability) when the
    report has it, since it sees every alternative; else ``1 - score``. A flag with
    neither counts as fully uncertain, so it is reviewed early rather than never.
    """
    probs = (evidence or {}).get("probs")
    if isinstance(probs, Mapping):
        values = [float(v) for v in probs.values() if isinstance(v, (int, float)) and v > 0]
        total = sum(values)
        if len(probs) >= 2 and total > 0:
            entropy = -sum((v / total) * math.log(v / total) for v in values)
            return min(1.0, entropy / math.log(len(probs)))
    if isinstance(score, (int, float)) and math.isfinite(score):
        return 1.0 - min(1.0, max(0.0, float(score)))
    return 1.0


# --- loading --------------------------------------------------------------------------


def load_case(folder: str | Path) -> ReviewCase:
    """Read a report folder; one clear :class:`ReportError` naming the file on bad input."""
    folder = Path(folder)
    path = folder / REPORT_FILE
    if not path.is_file():
        raise ReportError(Errors.E015, path=folder, detail="run `divergence run CASE_DIR` to make one")
    return review_case(Report.read(path), folder=folder)


def review_case(report: Report, *, folder: Path) -> ReviewCase:
    """What the review pages show of a report: claims with their speaker, flags with topic names."""
    documents = report.documents_by_id()
    claims = {
        c.id: ReviewClaim(id=c.id, doc_id=c.doc_id, side=c.side, claimer=c.claimer, text=c.text, start=c.start,
                          end=c.end, speaker=c.speaker or (documents[c.doc_id].speaker if c.doc_id in documents else None))
        for c in report.claims
    }
    divergences = [ReviewDivergence.of(d, rank=i, topic=report.topic_name(d.topic), claims=claims)
                   for i, d in enumerate(report.divergences)]
    return ReviewCase(id=report.case.id, title=report.case.title, date=report.case.date, folder=folder,
                      documents=documents, claims=claims, divergences=divergences)


def load_cases(folders: Iterable[str | Path], *, skipped: list[ReportError] | None = None) -> dict[str, ReviewCase]:
    """Cases by id; two folders holding the same case would mix their labels, so that is refused.

    With ``skipped`` (a list), an unreadable folder is appended there and the others load;
    without it the first problem is raised.
    """
    cases: dict[str, ReviewCase] = {}
    for folder in folders:
        try:
            case = load_case(folder)
            if case.id in cases:
                raise ReportError(
                    Errors.E090,
                    path=Path(folder) / REPORT_FILE,
                    detail=f"case id {case.id!r} is also the case of {cases[case.id].folder}",
                )
        except ReportError as err:
            if skipped is None:
                raise
            skipped.append(err)
            continue
        cases[case.id] = case
    return cases

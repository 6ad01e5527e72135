"""Report folders as the review app sees them: claims in context and a queue of flags.

Reads ``report.json`` (CONTRACTS §3 plus the document ``text``/``sentences`` and the
per-divergence ``evidence`` our reports carry) into small frozen records, checks
the cross-references the app relies on (a flag's claims exist), and orders flags
for active learning: the reviewer's time is best spent where the model is least sure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Errors, ReportError
from ..labels import ClaimRef
from ..schema import NON_PARTY_SIDES

REPORT_FILE = "report.json"
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
    start: int | None
    end: int | None

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
    document: Mapping[str, Any]


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
        raw = (self.evidence.get("highlights") or {}).get(claim.id) or []
        spans = sorted(
            (a, b) for a, b in (s for s in raw if isinstance(s, (list, tuple)) and len(s) == 2)
            if isinstance(a, int) and isinstance(b, int) and 0 <= a < b <= len(claim.text)
        )
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
    documents: dict[str, dict[str, Any]]
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
        named = divergence.evidence.get("omitting_sides")
        if isinstance(named, list) and named:
            return [str(s) for s in named]
        return [s for s in self.sides if s not in divergence.sides and s.lower() not in NON_PARTY_SIDES]

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
        doc = self.documents.get(claim.doc_id, {})
        text = doc.get("text")
        start, end = claim.start, claim.end
        if not isinstance(text, str) or start is None or end is None or text[start:end] != claim.text:
            return Context(claim=claim, before="", after="", document=doc)  # no trustworthy offsets
        lo, hi = _context_span(text, doc.get("sentences") or [], start, end, sentences)
        return Context(claim=claim, before=text[lo:start], after=text[end:hi], document=doc)


def _context_span(text: str, spans: list[dict[str, Any]], start: int, end: int, n: int) -> tuple[int, int]:
    inside = [i for i, s in enumerate(spans) if s["start"] < end and s["end"] > start]
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
    turn = spans[first].get("turn")
    i = first
    while i > 0 and first - i < n and spans[i - 1].get("turn") == turn:
        i -= 1
    j = last
    while j + 1 < len(spans) and j - last < n and spans[j + 1].get("turn") == turn:
        j += 1
    return min(spans[i]["start"], start), max(spans[j]["end"], end)


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ReportError(Errors.E090, path=path, detail=str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    try:
        return _case_from(data, folder=folder, path=path)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        # an edited report whose values have the wrong shape (a list where an id belongs, ...)
        raise ReportError(Errors.E090, path=path, detail=f"unexpected structure ({type(err).__name__}: {err})") from None


def _case_from(data: Any, *, folder: Path, path: Path) -> ReviewCase:

    def bad(detail: str) -> ReportError:
        return ReportError(Errors.E090, path=path, detail=detail)

    if not isinstance(data, dict):
        raise bad("the top level is not an object")
    case = data.get("case")
    if not isinstance(case, dict) or not isinstance(case.get("id"), str) or not case["id"]:
        raise bad("missing case.id")
    for key in ("documents", "claims", "divergences"):
        if not isinstance(data.get(key, []), list):
            raise bad(f"{key!r} is not a list")

    documents: dict[str, dict[str, Any]] = {}
    for i, doc in enumerate(data.get("documents", [])):
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise bad(f"documents[{i}] has no id")
        documents[doc["id"]] = doc

    claims: dict[str, ReviewClaim] = {}
    for i, c in enumerate(data.get("claims", [])):
        if not isinstance(c, dict):
            raise bad(f"claims[{i}] is not an object")
        missing = [k for k in ("id", "doc_id", "side", "text") if not isinstance(c.get(k), str)]
        if missing:
            raise bad(f"claims[{i}] lacks {', '.join(missing)}")
        if c["id"] in claims:
            raise bad(f"duplicate claim id {c['id']!r}")
        claims[c["id"]] = ReviewClaim(
            id=c["id"],
            doc_id=c["doc_id"],
            side=c["side"],
            claimer=c.get("claimer"),
            speaker=c.get("speaker") or documents.get(c["doc_id"], {}).get("speaker"),
            text=c["text"],
            start=c.get("start") if isinstance(c.get("start"), int) else None,
            end=c.get("end") if isinstance(c.get("end"), int) else None,
        )

    # our reports name topics once, at the top level ({"t3": "sanctions · United States · asked"})
    topic_names = data.get("topics") if isinstance(data.get("topics"), dict) else {}
    divergences: list[ReviewDivergence] = []
    seen: set[str] = set()
    for i, d in enumerate(data.get("divergences", [])):
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not isinstance(d.get("type"), str):
            raise bad(f"divergences[{i}] lacks an id or a type")
        if d["id"] in seen:
            raise bad(f"duplicate divergence id {d['id']!r}")
        seen.add(d["id"])
        refs = d.get("claims")
        if not isinstance(refs, list) or not refs:
            raise bad(f"divergence {d['id']!r} has no claims")
        unknown = [c for c in refs if c not in claims]
        if unknown:
            raise bad(f"divergence {d['id']!r} refers to unknown claim {unknown[0]!r}")
        score = d.get("score")
        evidence = d.get("evidence")
        divergences.append(
            ReviewDivergence(
                id=d["id"],
                type=d["type"],
                topic=str(topic_names.get(d.get("topic"), d.get("topic") or "")),
                claims=tuple(refs),
                sides=tuple(str(s) for s in d.get("sides") or (claims[c].side for c in refs)),
                score=float(score) if isinstance(score, (int, float)) else None,
                explanation=str(d.get("explanation") or ""),
                evidence=evidence if isinstance(evidence, dict) else {},
                rank=i,
            )
        )

    return ReviewCase(
        id=case["id"],
        title=case.get("title"),
        date=case.get("date"),
        folder=folder,
        documents=documents,
        claims=claims,
        divergences=divergences,
    )


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

"""Event gold files (CONTRACTS §4): read one, turn it into a case folder, score a report on it.

A gold event lists each side's documents as paraphrased statements and points its
divergences and agreements at them by ``(doc_id, statement_index)``. To run the pipeline
on it, :func:`build_case` writes every document as a transcript (a speaker label line,
then one paragraph per statement) and remembers where each statement landed, so a
report's claims (character offsets into those files) can be matched back to the gold
statements by overlap. :func:`score_report` does that matching; the scoring script is
``evaluation/event_scorer.py``.

Matching is deliberately by character overlap rather than by text: the pipeline may
split a statement into two claims or trim its opening words, and either must still count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..files import atomic_write
from ..errors import DataError, Errors
from ..report import Report, ReportDivergence
from ..schema import DIVERGENCE_TYPES

SPANS_NAME = "gold-statements.json"

# Gold type vocabularies differ between annotators; these are the names seen for our types.
GOLD_TYPE_SYNONYMS: dict[str, str] = {
    **{t: t for t in DIVERGENCE_TYPES},
    "added condition": "added_condition", "condition": "added_condition", "conditionality": "added_condition",
    "conditional": "added_condition", "precondition": "added_condition", "sequencing": "added_condition",
    "contradictory": "contradiction", "conflict": "contradiction", "contradict": "contradiction",
    "numeric": "quantity", "number": "quantity", "numbers": "quantity", "amount": "quantity",
    "quantitative": "quantity",
    "extent": "scope", "partial": "scope",
    "blame": "attribution", "responsibility": "attribution", "cause": "attribution", "credit": "attribution",
    "silence": "omission", "absence": "omission", "omitted": "omission",
    "agree": "agreement", "consistent": "agreement", "compatible": "agreement",
}
_TITLES = frozenset(
    "president vice secretary of state foreign defense defence prime first minister chairman chairwoman chair "
    "leader supreme ambassador spokesman spokeswoman spokesperson special envoy representative general mr mrs "
    "ms dr the deputy acting senator governor comrade".split())
_ORG_WORDS = frozenset(
    "agency statement ministry office house council committee news department government party "
    "declaration communique communiqué report embassy delegation".split())
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- the gold file ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatementRef:
    doc_id: str
    index: int


@dataclass(frozen=True)
class GoldDocument:
    doc_id: str
    side: str
    speaker: str
    statements: tuple[str, ...]
    date: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class GoldItem:
    """One gold divergence or agreement. ``b`` is None for an omission."""

    id: str
    kind: Literal["divergence", "agreement"]
    topic: str
    gold_type: str  # as written in the gold file
    types: tuple[str, ...]  # our types it accepts ("scope / quantity" accepts both); empty if unmapped
    a: StatementRef
    b: StatementRef | None
    omitting_sides: tuple[str, ...] = ()  # omissions: the sides whose documents are silent


@dataclass(frozen=True)
class GoldEvent:
    id: str
    title: str
    date: str | None
    documents: tuple[GoldDocument, ...]
    divergences: tuple[GoldItem, ...]
    agreements: tuple[GoldItem, ...]

    @property
    def sides(self) -> list[str]:
        return list(dict.fromkeys(d.side for d in self.documents))

    def document(self, doc_id: str) -> GoldDocument:
        return next(d for d in self.documents if d.doc_id == doc_id)


def map_gold_type(gold_type: str) -> tuple[str, ...]:
    """Our types for a gold type name: "scope / quantity" -> ("scope", "quantity"); () if unknown."""
    out = []
    for part in re.split(r"\s*(?:/|\||,|\bor\b)\s*", gold_type.strip().lower()):
        key = part.strip().replace("-", " ")
        mapped = GOLD_TYPE_SYNONYMS.get(key) or GOLD_TYPE_SYNONYMS.get(key.replace(" ", "_"))
        if mapped and mapped not in out:
            out.append(mapped)
    return tuple(out)


def load_gold(path: str | Path) -> GoldEvent:
    """Read and check an event gold file; raise ``DataError`` with one line naming it on any problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(Errors.E100, path=path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(Errors.E101, path=path, detail=str(err)) from None
    try:
        return _parse_gold(raw)
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise DataError(Errors.E101, path=path, detail=detail) from None


def _parse_gold(raw: Mapping[str, Any]) -> GoldEvent:
    documents = []
    for side in raw["sides"]:
        for doc in side["documents"]:
            statements = doc["statements"]
            if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
                raise ValueError(f"document {doc.get('doc_id')!r}: statements must be a list of strings")
            documents.append(GoldDocument(doc_id=str(doc["doc_id"]), side=str(side["side"]),
                                          speaker=str(doc.get("speaker") or side["side"]),
                                          statements=tuple(" ".join(s.split()) for s in statements),
                                          date=_first_date(doc.get("date")), source=doc.get("source_url")))
    ids = [d.doc_id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate doc_id")
    by_id = {d.doc_id: d for d in documents}

    def ref(value: Mapping[str, Any] | None, where: str) -> StatementRef | None:
        if value is None:
            return None
        r = StatementRef(str(value["doc_id"]), int(value["statement_index"]))
        if r.doc_id not in by_id:
            raise ValueError(f"{where}: unknown doc_id {r.doc_id!r}")
        if not 0 <= r.index < len(by_id[r.doc_id].statements):
            raise ValueError(f"{where}: statement_index {r.index} out of range for {r.doc_id!r}")
        return r

    sides = list(dict.fromkeys(d.side for d in documents))
    divergences = []
    for i, d in enumerate(raw.get("divergences") or []):
        did = str(d.get("id") or f"D{i + 1}")
        gold_type = str(d["type"])
        a, b = ref(d["side_a"], did), ref(d.get("side_b"), did)
        if a is None:
            raise ValueError(f"{did}: side_a is null")
        omitting = _omitting_sides(d.get("omitting_side"), sides=sides, documents=documents) if b is None else ()
        divergences.append(GoldItem(id=did, kind="divergence", topic=str(d.get("topic") or ""), gold_type=gold_type,
                                    types=map_gold_type(gold_type), a=a, b=b, omitting_sides=omitting))
    agreements = []
    for i, g in enumerate(raw.get("agreements") or []):
        aid = str(g.get("id") or f"A{i + 1}")
        a = ref(g.get("side_a_ref") or g.get("side_a"), aid)
        b = ref(g.get("side_b_ref") or g.get("side_b"), aid)
        if a is None or b is None:
            raise ValueError(f"{aid}: an agreement needs two statements")
        agreements.append(GoldItem(id=aid, kind="agreement", topic=str(g.get("topic") or ""), gold_type="agreement",
                                   types=("agreement",), a=a, b=b))
    event_id = str(raw.get("event_id") or raw.get("id") or "")
    if not event_id:
        raise ValueError("missing field 'event_id'")
    return GoldEvent(id=event_id, title=str(raw.get("event") or event_id), date=_first_date(raw.get("date")),
                     documents=tuple(documents), divergences=tuple(divergences), agreements=tuple(agreements))


def _omitting_sides(value: Any, *, sides: Sequence[str], documents: Sequence[GoldDocument]) -> tuple[str, ...]:
    """Sides named in a free-text ``omitting_side`` ("Joint statement and DPRK (KCNA) report")."""
    texts = value if isinstance(value, list) else [value] if value else []
    found: list[str] = []
    for text in map(str, texts):
        for side in sides:
            if re.search(rf"(?<![\w-]){re.escape(side)}(?![\w-])", text, re.I):
                found.append(side)
        for doc in documents:
            if doc.doc_id.lower() in text.lower():
                found.append(doc.side)
    return tuple(dict.fromkeys(found))


def _first_date(value: Any) -> str | None:
    m = _ISO_DATE.search(str(value or ""))
    return m.group() if m else None


# --- the case folder ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatementSpan:
    doc_id: str  # the gold doc_id
    index: int
    side: str
    start: int  # offsets into the written transcript
    end: int


@dataclass
class GoldCase:
    """A case folder built from a gold event, with where each statement is in it."""

    root: Path
    case_id: str
    doc_ids: dict[str, str]  # gold doc_id -> case document id
    spans: dict[tuple[str, int], StatementSpan] = field(default_factory=dict)

    def span(self, ref: StatementRef) -> StatementSpan:
        return self.spans[(ref.doc_id, ref.index)]

    def to_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "doc_ids": self.doc_ids, "statements": [asdict(s) for s in self.spans.values()]}

    @classmethod
    def read(cls, root: str | Path) -> "GoldCase":
        """Reopen a case folder written by :func:`build_case` (to rescore a report later)."""
        root = Path(root)
        path = root / SPANS_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            spans = [StatementSpan(**s) for s in raw["statements"]]
            return cls(root=root, case_id=raw["case_id"], doc_ids=dict(raw["doc_ids"]),
                       spans={(s.doc_id, s.index): s for s in spans})
        except FileNotFoundError:
            raise DataError(Errors.E100, path=path) from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(Errors.E101, path=path, detail=str(err)) from None


def build_case(event: GoldEvent, out_dir: str | Path, *, with_aliases: bool = True) -> GoldCase:
    """Write ``event`` as a case folder (case.toml + one transcript per document).

    Each transcript is a speaker label line, then the statements one paragraph each, so
    the ingest stage sees what a real transcript would give it. ``with_aliases`` adds
    ``[sides]`` aliases derived from the speakers' names.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    case_id = slug(event.id)
    doc_ids = _unique_slugs([d.doc_id for d in event.documents])
    gold_case = GoldCase(root=root, case_id=case_id, doc_ids=doc_ids)
    entries = []
    for doc in event.documents:
        head = speaker_head(doc.speaker)
        text, offsets = transcript(head, doc.statements)
        name = f"{doc_ids[doc.doc_id]}.txt"
        atomic_write(root / name, text)
        for i, (start, end) in enumerate(offsets):
            gold_case.spans[(doc.doc_id, i)] = StatementSpan(doc.doc_id, i, doc.side, start, end)
        entries.append({"id": doc_ids[doc.doc_id], "side": doc.side, "speaker": head, "date": doc.date,
                        "path": name, "source": doc.source, "format": "transcript"})
    aliases = side_aliases(event) if with_aliases else {}
    atomic_write(root / "case.toml", _case_toml(case_id, event, entries, aliases))
    atomic_write(root / SPANS_NAME, json.dumps(gold_case.to_json(), indent=1, ensure_ascii=False))
    return gold_case


def transcript(speaker: str, statements: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """A speaker label line and one paragraph per statement; returns the text and each statement's span."""
    text = f"{speaker_label(speaker)}:\n"
    offsets = []
    for i, statement in enumerate(statements):
        if i:
            text += "\n\n"
        offsets.append((len(text), len(text) + len(statement)))
        text += statement
    return text + "\n", offsets


def speaker_head(speaker: str) -> str:
    """The name part of a gold speaker description.

    "Korean Central News Agency (official report ...)" -> "Korean Central News Agency";
    "Joint Statement signed by President Trump and ..." -> "Joint Statement".
    """
    head = re.split(r"\s*(?:\(|,|;|\s[-–—]\s|\b(?:signed|issued|released|published) by\b)", speaker, maxsplit=1)[0]
    return " ".join(head.split()) or speaker.strip()


def speaker_label(speaker: str) -> str:
    """A transcript speaker label the ingest stage recognises: capitals, at most six words."""
    words = [re.sub(r"[^A-Z.'’\-]", "", w.upper()) for w in speaker_head(speaker).split()]
    words = [w for w in words if w and w[0].isalpha()]
    return " ".join(words[-6:]) or "SPEAKER"


def side_aliases(event: GoldEvent) -> dict[str, list[str]]:
    """Aliases for each side from its speakers' names; a name two sides share is dropped."""
    per_side: dict[str, list[str]] = {s: [] for s in event.sides}
    for doc in event.documents:
        per_side[doc.side].extend(name_aliases(speaker_head(doc.speaker)))
    owners: dict[str, set[str]] = {}
    for side, names in per_side.items():
        for n in names:
            owners.setdefault(n.lower(), set()).add(side)
    return {side: list(dict.fromkeys(n for n in names if len(owners[n.lower()]) == 1))
            for side, names in per_side.items()}


def name_aliases(name: str) -> list[str]:
    """"President Donald J. Trump" -> ["Donald J. Trump", "Donald Trump", "Trump"];
    "Korean Central News Agency" -> ["Korean Central News Agency", "KCNA"]."""
    words = name.split()
    if any(w.lower().strip(".") in _ORG_WORDS for w in words):
        caps = [w for w in words if w[:1].isupper() and w.lower() not in {"of", "the", "and"}]
        acronym = "".join(w[0] for w in caps)
        return [name] + ([acronym] if len(caps) >= 3 else [])
    while words and words[0].lower().strip(".") in _TITLES:
        words = words[1:]
    if not words:
        return [name]
    full = " ".join(words)
    out = [full]
    plain = [w for w in words if not re.fullmatch(r"[A-Z]\.", w)]
    if len(plain) != len(words) and len(plain) >= 2:
        out.append(" ".join(plain))
    if len(words) >= 2 and len(words[-1]) > 2:
        out.append(words[-1])
    return out


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "case"


def _unique_slugs(ids: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    for i in ids:
        s, n = slug(i), 2
        while s in used:
            s, n = f"{slug(i)}-{n}", n + 1
        used.add(s)
        out[i] = s
    return out


def _case_toml(case_id: str, event: GoldEvent, documents: Sequence[Mapping[str, Any]],
               aliases: Mapping[str, Sequence[str]]) -> str:
    import tomli_w

    manifest: dict[str, Any] = {"id": case_id, "title": event.title}
    if event.date:
        manifest["date"] = event.date
    manifest["documents"] = [{k: str(v) for k, v in doc.items() if v is not None} for doc in documents]
    sides = {side: {"aliases": list(names)} for side, names in aliases.items() if names}
    if sides:
        manifest["sides"] = sides
    header = f"# Built from the event gold file {event.id!r} by pipeline.scoring.gold.build_case.\n"
    return header + tomli_w.dumps(manifest)


# --- scoring --------------------------------------------------------------------------------


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


__all__ = [
    "GOLD_TYPE_SYNONYMS", "EventScore", "GoldCase", "GoldDocument", "GoldEvent", "GoldItem", "ItemResult",
    "StatementRef", "StatementSpan", "build_case", "load_gold", "map_gold_type", "name_aliases", "score_report",
    "side_aliases", "speaker_head", "speaker_label", "transcript",
]


# --- real-transcript events (CONTRACTS §4b) --------------------------------------------------

REAL_GOLD_NAME = "gold.json"


def is_real_event(path: str | Path) -> bool:
    """A case folder with quote-anchored gold beside it (CONTRACTS §4b)."""
    path = Path(path)
    return path.is_dir() and (path / REAL_GOLD_NAME).is_file() and (path / "case.toml").is_file()


def load_real_event(folder: str | Path) -> GoldEvent:
    """Read ``folder/gold.json`` as a :class:`GoldEvent` whose "statements" are the quotes.

    Each document's statements are its distinct gold quotes in the order the gold names them,
    so the items point at them by index exactly as in a paraphrased gold file; where each
    quote sits in the text is found later, in the report's stored text (:func:`real_case`).
    """
    from ..manifest import load_manifest

    folder = Path(folder)
    path = folder / REAL_GOLD_NAME
    case = load_manifest(folder)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(Errors.E101, path=path, detail=str(err)) from None
    side_of = {d.id: d.side for d in case.documents}
    quotes: dict[str, list[str]] = {d.id: [] for d in case.documents}

    def ref(value: Mapping[str, Any] | None, where: str) -> StatementRef | None:
        if value is None:
            return None
        doc, quote = str(value["doc"]), str(value["quote"])
        if doc not in quotes:
            raise ValueError(f"{where}: unknown doc {doc!r}")
        if quote not in quotes[doc]:
            quotes[doc].append(quote)
        return StatementRef(doc, quotes[doc].index(quote))

    parties = case.parties
    try:
        items: dict[str, list[GoldItem]] = {"divergence": [], "agreement": []}
        for kind, key in (("divergence", "divergences"), ("agreement", "agreements")):
            for i, d in enumerate(raw.get(key) or []):
                iid = str(d.get("id") or f"{kind[0].upper()}{i + 1}")
                a, b = ref(d["a"], iid), ref(d.get("b"), iid)
                if a is None or (kind == "agreement" and b is None):
                    raise ValueError(f"{iid}: missing quote")
                gold_type = "agreement" if kind == "agreement" else str(d["type"])
                omitting = tuple(s for s in parties if s != side_of[a.doc_id]) if b is None else ()
                items[kind].append(GoldItem(id=iid, kind=kind, topic=str(d.get("topic") or ""), gold_type=gold_type,
                                            types=map_gold_type(gold_type), a=a, b=b, omitting_sides=omitting))
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise DataError(Errors.E101, path=path, detail=detail) from None
    documents = tuple(GoldDocument(doc_id=d.id, side=d.side, speaker=d.speaker or d.side,
                                   statements=tuple(quotes[d.id]), date=d.date, source=d.source)
                      for d in case.documents)
    return GoldEvent(id=case.id, title=case.title or case.id, date=case.date, documents=documents,
                     divergences=tuple(items["divergence"]), agreements=tuple(items["agreement"]))


_SPACE_CHARS = "\u00a0\u2007\u202f\u2009\u200a\u2002\u2003\u2004\u2005\u2006\u2008\u205f\u3000\t"


def locate_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` is in ``text``: exactly, else with any run of (Unicode) whitespace
    matching any other, so a stored text whose no-break spaces were normalised still matches."""
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    words = quote.translate({ord(c): " " for c in _SPACE_CHARS}).split()
    if not words:
        return None
    pattern = r"[\s\u00a0\u2007\u202f\u200b]+".join(re.escape(w) for w in words)
    m = re.search(pattern, text)
    return (m.start(), m.end()) if m else None


def real_case(event: GoldEvent, folder: str | Path, report: Report | Mapping[str, Any]) -> GoldCase:
    """The :class:`GoldCase` of a real event: each quote located in the text the report stores
    for its document (the offsets of the report's claims point into that text). ``report``
    may be just ``{"documents": [{"id", "text"}, ...]}``."""
    texts = ({d.id: d.text or "" for d in report.documents} if isinstance(report, Report)
             else {str(d.get("id")): str(d.get("text") or "") for d in report.get("documents") or []})
    case = GoldCase(root=Path(folder), case_id=event.id, doc_ids={d.doc_id: d.doc_id for d in event.documents})
    for doc in event.documents:
        for i, quote in enumerate(doc.statements):
            where = locate_quote(texts.get(doc.doc_id, ""), quote)
            if where is None:
                raise DataError(Errors.E103, path=Path(folder) / REAL_GOLD_NAME, doc=doc.doc_id, quote=quote[:60])
            case.spans[(doc.doc_id, i)] = StatementSpan(doc.doc_id, i, doc.side, *where)
    return case


__all__ += ["REAL_GOLD_NAME", "is_real_event", "load_real_event", "locate_quote", "real_case"]

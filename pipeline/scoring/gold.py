"""Event gold files (CONTRACTS §4): read one and turn it into a case folder.

A gold event lists each side's documents as paraphrased statements and points its
divergences and agreements at them by ``(doc_id, statement_index)``. To run the pipeline
on it, :func:`build_case` writes every document as a transcript (a speaker label line,
then one paragraph per statement) and remembers where each statement landed, so a
report's claims (character offsets into those files) can be matched back to the gold
statements by overlap (:func:`pipeline.scoring.event_score.score_report`; the scoring
script is ``evaluation/event_scorer.py``). Real-transcript events (§4b) are read by
:mod:`pipeline.scoring.real` into the same :class:`GoldEvent`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import DataError, Errors
from ..files import atomic_write
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


__all__ = [
    "GOLD_TYPE_SYNONYMS", "GoldCase", "GoldDocument", "GoldEvent", "GoldItem", "StatementRef", "StatementSpan",
    "build_case", "load_gold", "map_gold_type", "name_aliases", "side_aliases", "speaker_head", "speaker_label",
    "transcript",
]

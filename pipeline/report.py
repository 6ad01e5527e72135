"""The report (CONTRACTS §3) as typed records: one model, one writer, one reader.

``report.json`` is the contract every consumer reads: the page (``render``), the review
app, ``batch``, the scorers. Each used to re-check a dict by hand; here pydantic checks it
once, so a consumer reads ``report.summary.claims`` and can trust its type.

- The pipeline builds a :class:`Report` (``runner.judge_case``); :meth:`Report.dumps` is
  the only serialisation of it, and gives the bytes reports have always had
  (``json.dumps(..., ensure_ascii=False, indent=1)``, keys in the order declared below).
- :meth:`Report.read` reads a file for the review app, batch summaries and the scorers
  (``training.review_labels`` still reads the claims it needs directly): any problem is one
  :class:`~pipeline.errors.ReportError` line naming the file (E090).
- Keys absent from what was read stay absent when written (``exclude_unset``), and unknown
  keys are kept (``extra="allow"``): a report written by another version passes through
  unchanged, and a key a stage adds is never silently dropped.
- Types are strict (JSON types as written: an offset ``"5"`` is an error, not 5) and
  numbers keep their kind (an ``int`` is not rewritten as ``1.0``).
- ``timings`` (seconds per stage) are kept in memory for benchmarks but never written, so a
  rerun on unchanged input gives byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .errors import Errors, ReportError
from .schema import SCHEMA_VERSION

REPORT_FILE = "report.json"


def _number(value: Any) -> int | float:
    # a JSON number as written: pydantic's float would turn 1 into 1.0 and change the bytes
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number", "Input should be a number")
    return value


Number = Annotated[float | int, PlainValidator(_number)]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


# --- parts --------------------------------------------------------------------------


class ReportCase(_Record):
    id: str = Field(min_length=1)
    title: str | None = None
    date: str | None = None


class ReportTurn(_Record):
    speaker: str | None = None
    role: str = "statement"  # statement | question | stage | narration
    start: int
    end: int
    label: str | None = None  # the label as written, e.g. "FOREIGN MINISTER RI"


class ReportSentence(_Record):
    start: int
    end: int
    turn: int | None = None  # index into the document's turns


class ReportDocument(_Record):
    id: str = Field(min_length=1)
    side: str
    speaker: str | None = None
    date: str | None = None
    source: str | None = None
    path: str | None = None
    sha256: str | None = None
    encoding: str | None = None
    turns: list[ReportTurn] = []
    sentences: list[ReportSentence] = []
    text: str | None = None  # as read; every offset in the report points into it


class ReportEntity(_Record):
    text: str
    label: str
    canonical: str | None = None
    start: int  # offsets into the document text
    end: int


class ReportFrame(_Record):
    """What a claim says, in comparable slots (``schema.Frame``)."""

    agent: str | None = None
    predicate: str | None = None
    theme: str | None = None
    quantities: list[dict[str, Any]] = []  # {"text", "value", "of", "unit", "start", "end"}
    scope: list[str] = []
    polarity: Literal["positive", "negative"] = "positive"
    modality: list[str] = []
    condition: str | None = None
    time: list[str] = []
    blame: str | None = None
    predicates: list[str] = []
    negated: list[str] = []
    cues: list[dict[str, Any]] = []  # {"kind", "text", "start", "end"}


class ReportClaim(_Record):
    id: str = Field(min_length=1)
    doc_id: str
    side: str
    claimer: str | None = None
    text: str
    start: int  # text == document.text[start:end]
    end: int
    score: Number | None = None  # claim-detector confidence
    speaker: str | None = None  # the turn's speaker (the claimer differs for reported speech)
    reported: bool = False
    cue: str | None = None
    entities: list[ReportEntity] = []
    frame: ReportFrame = ReportFrame()


class ReportDivergence(_Record):
    id: str = Field(min_length=1)
    type: str  # one of schema.DIVERGENCE_TYPES in our reports; the page shows others as written
    topic: str | None = None  # a key of Report.topics, or a name
    claims: list[str] = Field(min_length=1)  # two claim ids, or one for an omission
    sides: list[str] = []
    score: Number | None = None  # confidence in ``type``, in [0, 1]
    explanation: str | None = None
    evidence: dict[str, Any] = {}  # the judge's or the rules' reasons; its keys vary with them

    # the evidence keys consumers read, checked here so each need not

    @property
    def probs(self) -> dict[str, float]:
        """Probability per label (``evidence["probs"]``), numbers only."""
        probs = self.evidence.get("probs")
        if not isinstance(probs, Mapping):
            return {}
        return {str(k): float(v) for k, v in probs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @property
    def highlights(self) -> dict[str, list[tuple[int, int]]]:
        """The differing words per claim id, as (start, end) offsets into the claim text."""
        raw = self.evidence.get("highlights")
        if not isinstance(raw, Mapping):
            return {}
        return {str(cid): [(a, b) for a, b in (s for s in spans if isinstance(s, (list, tuple)) and len(s) == 2)
                           if isinstance(a, int) and isinstance(b, int)]
                for cid, spans in raw.items() if isinstance(spans, list)}

    @property
    def omitting_sides(self) -> list[str]:
        """For an omission: the sides the judge found silent (empty when the report does not say)."""
        named = self.evidence.get("omitting_sides")
        return [str(s) for s in named] if isinstance(named, list) else []


class ReportSummary(_Record):
    documents: int = 0
    claims: int = 0
    divergences: int = 0
    aligned_pairs: int = 0
    by_type: dict[str, int] = {}


class SetAsideClaim(_Record):
    id: str
    doc_id: str
    relevance: Number | None = None


class SetAside(_Record):
    """Claims set aside as off-topic: listed so that nothing disappears silently."""

    min_similarity: Number | None = None
    by_document: dict[str, int] = {}
    claims: list[SetAsideClaim] = []


class Skipped(_Record):
    path: str | None = None  # relative to the case folder
    error: str  # the one-line error, with its code


class ModelVersions(_Record):
    divergence: str | None = None
    spacy: str | None = None
    spacy_model: str | None = None
    encoder: str | None = None
    classifier: str | None = None
    judge: str | None = None


class ReportConfig(_Record):
    claim_threshold: Number | None = None
    top_k: int | None = None
    min_similarity: Number | None = None


# --- the report ---------------------------------------------------------------------


class Report(_Record):
    schema_version: int = SCHEMA_VERSION
    case: ReportCase
    documents: list[ReportDocument] = []
    claims: list[ReportClaim] = []
    divergences: list[ReportDivergence] = []  # most confident first
    topics: dict[str, str] = {}  # topic id -> name
    claim_topics: dict[str, str] = {}  # claim id -> topic id
    summary: ReportSummary | None = None
    set_aside: SetAside | None = None
    skipped: list[Skipped] = []
    warnings: list[str] = []
    models: ModelVersions | None = None
    config: ReportConfig | None = None
    timings: dict[str, float] = Field(default={}, exclude=True)  # seconds per stage: never written

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise PydanticCustomError(
                "report_version", "written by a newer divergence (schema version {found}; this version reads {known})",
                {"found": version, "known": SCHEMA_VERSION})
        return version

    @model_validator(mode="after")
    def _references(self) -> Report:
        """What consumers rely on: ids are unique and a flag's claims are in the report."""
        for what, items in (("document", self.documents), ("claim", self.claims), ("divergence", self.divergences)):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise PydanticCustomError("report_duplicate", "duplicate {what} id {id}",
                                              {"what": what, "id": repr(item.id)})
                seen.add(item.id)
        claims = {c.id for c in self.claims}
        for d in self.divergences:
            unknown = [c for c in d.claims if c not in claims]
            if unknown:
                raise PydanticCustomError("report_reference", "divergence {id} refers to unknown claim {claim}",
                                          {"id": repr(d.id), "claim": repr(unknown[0])})
        return self

    # --- one reader, one writer ---------------------------------------------------

    @classmethod
    def read(cls, path: str | Path) -> Report:
        """Read and check a ``report.json``; any problem is one ``ReportError`` line naming the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ReportError(Errors.E090, path=path, detail=f"cannot read it: {err.strerror or err}") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise ReportError(Errors.E090, path=path, detail=_first_line(err)) from None
        return cls.from_data(data, path=path)

    @classmethod
    def from_data(cls, data: Report | Mapping[str, Any], *, path: str | Path | None = None) -> Report:
        """A report as given (a ``Report``) or checked (a dict, e.g. parsed JSON); ``ReportError`` if malformed."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ReportError(Errors.E090, path=path, detail="the top level is not an object")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as err:
            raise ReportError(Errors.E090, path=path, detail=_validation_detail(err)) from None
        except RecursionError:
            raise ReportError(Errors.E090, path=path, detail="nested too deeply") from None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-shaped data, without ``timings``: exactly what :meth:`dumps` writes."""
        return self.model_dump(mode="python", exclude_unset=True)

    def dumps(self) -> str:
        """The text of ``report.json``: the one serialisation of a report."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    # --- lookups ------------------------------------------------------------------

    def claims_by_id(self) -> dict[str, ReportClaim]:
        return {c.id: c for c in self.claims}

    def documents_by_id(self) -> dict[str, ReportDocument]:
        return {d.id: d for d in self.documents}

    def topic_name(self, topic: str | None) -> str:
        """A flag's topic by name: our reports name topic ids once, in ``topics``."""
        return self.topics.get(topic or "", topic or "")


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _validation_detail(err: ValidationError) -> str:
    """The first problem as "where: what", e.g. "divergences[0].sides: Input should be a valid list"."""
    errors = err.errors(include_url=False)
    first = errors[0]
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"]).replace(".[", "[")
    more = f" ({len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


__all__ = [
    "REPORT_FILE", "ModelVersions", "Number", "Report", "ReportCase", "ReportClaim", "ReportConfig", "ReportDivergence",
    "ReportDocument", "ReportEntity", "ReportFrame", "ReportSentence", "ReportSummary", "ReportTurn", "SetAside",
    "SetAsideClaim", "Skipped",
]

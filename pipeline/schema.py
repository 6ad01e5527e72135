"""Typed records passed between the stages.

Data flows one way: ``ingest`` (CaseSpec -> Document) -> ``claims`` (Document ->
Claim) -> ``align`` (Claim -> Alignment) -> ``divergence`` (Alignment ->
Divergence) -> ``report``. Each stage reads the previous stage's dataclasses
and never mutates them. ``to_json`` methods give the CONTRACTS §3 shapes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1

DIVERGENCE_TYPES = (
    "contradiction",
    "quantity",
    "scope",
    "added_condition",
    "attribution",
    "omission",
    "agreement",
)

# entity labels that can name a party or a speaker (people, states, organisations, peoples)
PARTY_LABELS: frozenset[str] = frozenset({"PERSON", "GPE", "ORG", "NORP"})

# the pair classifier's output columns (NLI), in this order everywhere: models, datasets, features
LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

TurnRole = Literal["statement", "question", "stage", "narration"]


# --- case manifest -----------------------------------------------------------------


@dataclass(frozen=True)
class DocumentSpec:
    id: str
    side: str
    path: str  # relative to the case folder, as written in case.toml
    speaker: str | None = None
    date: str | None = None
    source: str | None = None
    format: str | None = None  # txt | md | transcript | html | json; inferred if None


@dataclass(frozen=True)
class SideSpec:
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseSpec:
    id: str
    root: Path
    documents: tuple[DocumentSpec, ...]
    title: str | None = None
    date: str | None = None
    sides: dict[str, SideSpec] = field(default_factory=dict)

    @property
    def parties(self) -> list[str]:
        """Sides that speak for a party: declared in [sides] or used by a document."""
        names = list(self.sides)
        for doc in self.documents:
            if doc.side not in names and doc.side.lower() not in NON_PARTY_SIDES:
                names.append(doc.side)
        return names


# Sides that describe both accounts rather than speaking for one (CONTRACTS §1).
NON_PARTY_SIDES = frozenset({"analyst", "analysis", "media", "press", "neutral", "observer", "third-party"})


# --- ingested documents ------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted stretch of a document.

    ``start``/``end`` cover the spoken text only (the speaker label is excluded),
    so ``document.text[start:end]`` is what the speaker said.
    """

    speaker: str | None
    role: TurnRole
    start: int
    end: int
    label: str | None = None  # the label as written, e.g. "FOREIGN MINISTER RI"


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    turn: int  # index into Document.turns


@dataclass
class Document:
    spec: DocumentSpec
    text: str
    sha256: str  # of the file's bytes
    turns: list[Turn]
    sentences: list[Sentence] = field(default_factory=list)
    encoding: str = "utf-8"
    warnings: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec.id

    def to_json(self, *, include_text: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.spec.id,
            "side": self.spec.side,
            "speaker": self.spec.speaker,
            "date": self.spec.date,
            "source": self.spec.source,
            "path": self.spec.path,
            "sha256": self.sha256,
            "encoding": self.encoding,
            "turns": [asdict(t) for t in self.turns],
            "sentences": [asdict(s) for s in self.sentences],
        }
        if include_text:
            out["text"] = self.text
        return out


# --- claims -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    canonical: str
    start: int  # offsets into the document text
    end: int


@dataclass
class Frame:
    """What a claim says, in comparable slots (filled by ``pipeline.stages.frames``)."""

    agent: str | None = None  # canonical id where the agent is a known entity
    predicate: str | None = None  # normalised lemma class: offer, demand, lift, ...
    theme: str | None = None
    quantities: list[dict[str, Any]] = field(default_factory=list)  # {"text", "value", "of", "unit"}
    scope: list[str] = field(default_factory=list)  # all | part | written | verbal | permanent | ...
    polarity: Literal["positive", "negative"] = "positive"
    modality: list[str] = field(default_factory=list)  # hedge / possibility / intention markers
    condition: str | None = None  # the condition clause text
    time: list[str] = field(default_factory=list)
    blame: str | None = None  # canonical id of the actor held responsible
    predicates: list[str] = field(default_factory=list)  # every predicate class in the claim
    negated: list[str] = field(default_factory=list)  # predicate classes asserted as not happening
    cues: list[dict[str, Any]] = field(default_factory=list)  # {"kind", "text", "start", "end"} (doc offsets)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Claim:
    id: str
    doc_id: str
    side: str
    claimer: str
    text: str
    start: int
    end: int
    score: float  # claim-detector confidence
    entities: list[Entity] = field(default_factory=list)
    frame: Frame = field(default_factory=Frame)
    speaker: str | None = None  # the turn's speaker (claimer differs for reported speech)
    reported: bool = False  # True when attributed through reported speech
    cue: str | None = None  # "said", "according to", ...

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "side": self.side,
            "claimer": self.claimer,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "speaker": self.speaker,
            "reported": self.reported,
            "cue": self.cue,
            "entities": [asdict(e) for e in self.entities],
            "frame": self.frame.to_json(),
        }


# --- alignment and divergences ----------------------------------------------------


@dataclass(frozen=True)
class AlignedPair:
    a: str  # claim ids
    b: str
    similarity: float  # combined alignment score (cosine + shared entities, predicates, quotations)
    shared_entities: tuple[str, ...] = ()
    topic: str | None = None
    cosine: float | None = None  # plain cosine of the sentence embeddings
    # where each claim ranks among the other's nearest claims of its side (1 = nearest;
    # None: not among the top-k); mutual nearest neighbours are the likeliest counterparts
    rank_ab: int | None = None
    rank_ba: int | None = None


@dataclass
class Divergence:
    id: str
    type: str
    topic: str
    claims: list[str]
    sides: list[str]
    score: float
    explanation: str
    evidence: dict[str, Any] = field(default_factory=dict)  # differing words, model probabilities

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "topic": self.topic,
            "claims": list(self.claims),
            "sides": list(self.sides),
            "score": round(float(self.score), 4),
            "explanation": self.explanation,
            "evidence": self.evidence,
        }

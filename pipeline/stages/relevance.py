"""Relevance to the case: which claims are about the matter the sides dispute.

A 10,000-word press briefing in which a call with the other side's leader is one
subject among twenty yields hundreds of claims about vaccines, the economy or travel
rules. None of them is an *omission* by the other side, which simply never spoke about
them: an omission is a claim about the case's matter that the other sides leave out.

The matter is what the other sides talk about. A claim whose sentence embedding is far
from every claim of every other side (cosine below ``min_similarity``), and that the
alignment paired with nothing, is set aside as off-topic: it stays in the report's
claims, is listed under ``set_aside`` (a count per document, and the claims), and is
never flagged as an omission. The threshold is deliberately low — unrelated sentences
in MiniLM space sit around 0.0-0.25, while a claim and the other side's account of the
same exchange are typically 0.4-0.7 apart — so that a claim the other side merely
words differently is never set aside; ``evaluation/real_ingest.py`` reports how many
claims each document loses and whether any gold quote is among them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..schema import Claim


@dataclass(frozen=True)
class RelevanceConfig:
    min_similarity: float = 0.3  # below this cosine to everything the other sides say: off-topic


@dataclass
class Relevance:
    scores: dict[str, float]  # claim id -> cosine to the nearest claim of another side
    set_aside: list[str]  # claim ids, in claim order
    config: RelevanceConfig = field(default_factory=RelevanceConfig)

    def __post_init__(self) -> None:
        self._ids = frozenset(self.set_aside)

    def is_set_aside(self, claim_id: str) -> bool:
        return claim_id in self._ids

    def to_json(self, claims: Sequence[Claim]) -> dict[str, Any]:
        """The report's ``set_aside`` section: a count per document and the claims."""
        ids = self._ids
        by_document: dict[str, int] = {}
        for c in claims:
            by_document.setdefault(c.doc_id, 0)
            if c.id in ids:
                by_document[c.doc_id] += 1
        return {
            "min_similarity": self.config.min_similarity,
            "by_document": by_document,
            "claims": [{"id": c.id, "doc_id": c.doc_id, "relevance": round(self.scores[c.id], 3)}
                       for c in claims if c.id in ids],
        }


def assess_relevance(claims: Sequence[Claim], vectors: np.ndarray, *, parties: Sequence[str],
                     aligned: Iterable[str] = (), config: RelevanceConfig = RelevanceConfig()) -> Relevance:
    """Score every party's claim by its nearness to the other sides; set aside the far ones.

    ``vectors`` are the claims' L2-normalised embeddings, row for row; ``aligned`` the ids
    of claims the alignment paired with another side's (never set aside). A claim of a
    side that is not a party, or of a case where no other side has claims, is kept.
    """
    keep = set(aligned)
    scores: dict[str, float] = {}
    set_aside: list[str] = []
    if not claims:
        return Relevance(scores=scores, set_aside=set_aside, config=config)
    matrix = np.asarray(vectors, dtype=np.float32)
    sides = np.array([c.side for c in claims], dtype=object)
    in_party = np.isin(sides, list(parties))
    for side in dict.fromkeys(c.side for c in claims):
        if side not in parties:
            continue
        own = np.flatnonzero(sides == side)
        others = np.flatnonzero(in_party & (sides != side))
        if others.size == 0:
            continue
        nearest = (matrix[own] @ matrix[others].T).max(axis=1)
        for row, score in zip(own, nearest):
            claim = claims[row]
            scores[claim.id] = float(score)
    for claim in claims:
        score = scores.get(claim.id)
        if score is not None and score < config.min_similarity and claim.id not in keep:
            set_aside.append(claim.id)
    return Relevance(scores=scores, set_aside=set_aside, config=config)

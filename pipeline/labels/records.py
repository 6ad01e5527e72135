"""What a label is: one reviewer's verdict on one flag (or a flag the pipeline missed).

The rules a label must obey live here (``Label.validate``), apart from where labels are
kept (``store``) and how they leave for training (``export``), so the review app, the
store and the exporter agree on one definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Errors, LabelError
from ..schema import DIVERGENCE_TYPES

# "unrelated" is the reviewer's "not about the same thing": the pipeline aligned two
# claims that do not talk about the same matter. The trainer maps it to "neutral".
LABEL_TYPES: tuple[str, ...] = (*DIVERGENCE_TYPES, "unrelated")
# accept / reject / correct / unrelated answer a flag; "missed" adds one the pipeline did not raise.
FLAG_DECISIONS: tuple[str, ...] = ("accept", "reject", "correct", "unrelated")
DECISIONS: tuple[str, ...] = (*FLAG_DECISIONS, "missed")
MAX_REVIEWER_LEN = 100
# C0/C1 controls (an escape sequence can rewrite a terminal) and bidirectional overrides
# (they reorder what is shown): printed escaped, refused in new reviewer names
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with control and bidirectional formatting characters shown as escapes (``\\x1b``)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


# --- labels -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRef:
    """The part of a claim a label keeps: enough to train on without the report."""

    id: str
    doc_id: str
    side: str
    text: str



def reviewer_problem(name: str | None) -> str | None:
    """Why ``name`` cannot sign a label, or None: one rule for the store and the review app."""
    if not name or not name.strip():
        return "the reviewer's name is required"
    if len(name) > MAX_REVIEWER_LEN:
        return f"reviewer name longer than {MAX_REVIEWER_LEN} characters"
    if _UNPRINTABLE.search(name):
        return "the reviewer's name contains control characters"
    return None


def label_text(summary: Mapping[str, Any] | None) -> str:
    """How a label reads for people (pages, ``divergence labels history``), e.g. "corrected to scope"."""
    if not summary:
        return "(none)"
    kind = str(summary.get("type") or "").replace("_", " ")
    return {
        "accept": f"accepted as {kind}",
        "reject": "rejected",
        "correct": f"corrected to {kind}",
        "unrelated": "not about the same thing",
        "missed": f"missed {kind}",
    }.get(summary["decision"], summary["decision"])


@dataclass(frozen=True)
class Label:
    """One reviewer's verdict on one flag, or one flag the pipeline missed.

    ``claims`` holds two claims (premise, hypothesis) or one (an omission).
    ``type`` is the reviewed type: the predicted one when accepted, the new one when
    corrected, ``"unrelated"`` for "not about the same thing", and ``None`` when
    rejected (the type is wrong but the right one is unknown; trainers skip it).
    ``time`` is set by the store (UTC, ISO 8601).
    """

    case_id: str
    decision: str
    reviewer: str
    claims: tuple[ClaimRef, ...]
    divergence_id: str | None = None
    type: str | None = None
    predicted_type: str | None = None
    topic: str | None = None
    score: float | None = None
    time: str | None = None

    @classmethod
    def for_flag(
        cls,
        *,
        case_id: str,
        divergence_id: str,
        decision: str,
        reviewer: str,
        claims: Sequence[ClaimRef],
        predicted_type: str,
        type: str | None = None,
        topic: str | None = None,
        score: float | None = None,
    ) -> "Label":
        """A verdict on a flag the pipeline raised; derives the reviewed type from the decision."""
        if decision == "accept":
            type = predicted_type
        elif decision == "reject":
            type = None
        elif decision == "unrelated":
            type = "unrelated"
        elif decision == "correct" and type == predicted_type:
            # "changing" to the same type is agreeing with the model; count it as such
            decision = "accept"
        return cls(
            case_id=case_id,
            decision=decision,
            reviewer=reviewer.strip(),
            claims=tuple(claims),
            divergence_id=divergence_id,
            type=type,
            predicted_type=predicted_type,
            topic=topic,
            score=score,
        )

    @classmethod
    def missed(
        cls, *, case_id: str, reviewer: str, claims: Sequence[ClaimRef], type: str, topic: str | None = None
    ) -> "Label":
        """A divergence the pipeline did not raise: two claims it did not align, or one omission."""
        return cls(
            case_id=case_id, decision="missed", reviewer=reviewer.strip(), claims=tuple(claims), type=type, topic=topic
        )

    @property
    def key(self) -> str:
        """Identity of what is labelled within a case: a later label on the same key replaces this one."""
        if self.divergence_id is not None:
            return flag_key(self.divergence_id)
        return missed_key([c.id for c in self.claims])

    def validate(self) -> None:
        """Refuse anything a trainer could not use or a reviewer could not have meant."""

        def bad(detail: str) -> LabelError:
            return LabelError(Errors.E017, detail=detail)

        if not self.case_id:
            raise bad("no case id")
        problem = reviewer_problem(self.reviewer)
        if problem:
            raise bad(problem)
        if self.decision not in DECISIONS:
            raise bad(f"unknown decision {self.decision!r} (use one of: {', '.join(DECISIONS)})")
        if self.type is not None and self.type not in LABEL_TYPES:
            raise bad(f"unknown type {self.type!r} (use one of: {', '.join(LABEL_TYPES)})")
        if not 1 <= len(self.claims) <= 2:
            raise bad(f"a label needs one or two claims, got {len(self.claims)}")
        if any(not c.id for c in self.claims):
            raise bad("empty claim id")
        if len(self.claims) == 2 and self.claims[0].id == self.claims[1].id:
            raise bad(f"claim {self.claims[0].id!r} cannot be paired with itself")

        single = len(self.claims) == 1
        if self.decision == "missed":
            if self.divergence_id is not None:
                raise bad("a missed divergence cannot name a flag the pipeline raised")
            if self.type is None or self.type == "unrelated":
                raise bad("a missed divergence needs its type")
            if single and self.type != "omission":
                raise bad("a single claim can only be marked as an omission")
            if not single and self.type == "omission":
                raise bad("an omission is marked on one claim, not on a pair")
            if not single and self.claims[0].side == self.claims[1].side:
                raise bad(f"both claims are on side {self.claims[0].side!r}; link claims of different sides")
            return

        if not self.divergence_id:
            raise bad(f"decision {self.decision!r} needs the divergence id of the flag")
        if self.decision == "correct":
            if self.type is None or self.type == "unrelated":
                raise bad("a corrected flag needs its new type")
            if single and self.type != "omission":
                raise bad(f"this flag has one claim; it cannot be a {self.type!r} (reject it, or mark it unrelated)")
            if not single and self.type == "omission":
                raise bad("this flag pairs two claims; an omission is marked on one claim")
        elif self.decision == "reject" and self.type is not None:
            raise bad("a rejected flag has no type (use 'correct' to give the right one)")
        elif self.decision == "unrelated" and self.type != "unrelated":
            raise bad("'unrelated' labels have type 'unrelated'")
        elif self.decision == "unrelated" and single:
            raise bad("this flag has one claim, so it cannot pair unrelated claims (reject it instead)")
        elif self.decision == "accept" and self.type != self.predicted_type:
            raise bad("an accepted flag keeps its predicted type (use 'correct' to change it)")

    def summary(self) -> dict[str, Any]:
        """What ``reviews_for`` and the history show of a label."""
        return {"decision": self.decision, "type": self.type, "reviewer": self.reviewer, "time": self.time}


def flag_key(divergence_id: str) -> str:
    return f"flag:{divergence_id}"


def missed_key(claim_ids: Sequence[str]) -> str:
    # order-insensitive: linking A-B and later B-A is the same link, relabelled
    return "missed:" + "|".join(sorted(claim_ids))


@dataclass(frozen=True)
class HistoryEntry:
    """One change to one label: ``before``/``after`` are label summaries, ``None`` when absent."""

    id: int
    case_id: str
    key: str
    divergence_id: str | None
    action: str  # "set" | "clear"
    reviewer: str
    time: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

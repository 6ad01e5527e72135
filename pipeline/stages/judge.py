"""Stage 4: the learned divergence judge.

For every candidate pair from alignment it gives the probability that the two claims
speak of the same matter and part (``divergence``), the probability that they are
compatible accounts of it (``agreement``), and which kind of divergence it is; for every
party claim, the probability that the other sides leave it out (``omission``). The
evidence it weighs (:func:`pair_features`, :func:`omission_features`): the pair
classifier's entailment/neutral/contradiction in both directions, how close the claims
are (cosine, the combined alignment score, whether each is the other's nearest
counterpart), shared entities and predicates, and the structured frame differences
(numbers, all/part, conditions, blame, negation) that also explain a flag to a reader.

The weights are learned from gold events (``pipeline.training.judge``, never imported here)
and stored as plain JSON: standardisation, coefficients and thresholds of logistic
regressions, so a version folder is a few kB, reviewable in a diff, and loads without
pickle. A judge is a model version in ``models/`` like the pair classifier.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..registry import JUDGE_META
from ..schema import Claim

PAIR_TYPES = ("contradiction", "quantity", "scope", "added_condition", "attribution")
EVIDENCE_KINDS = ("quantity", "scope", "attribution", "added_condition", "contradiction")
_GENERIC = re.compile(r"^(NUM:|SIDE:)")
_WORD = re.compile(r"[a-z][a-z'’-]{2,}")
_STOP = frozenset("""the and for that this with from have has had was were are been will would shall should
can could may might must not its their they them our his her who which what when where than then also into
about over after before said says such there these those very just only both all any some more most other""".split())
_DOMAIN_LABELS = {"FACILITY", "RESOLUTION", "SANCTIONS", "WEAPON", "EVENT", "LAW"}
_CENTRAL_PREDICATES = {"offer", "demand", "lift", "dismantle", "promise", "refuse", "walk_away", "sign",
                       "test", "agree", "halt"}


# --- features ----------------------------------------------------------------------------

PAIR_FEATURES = (
    "cosine", "combined", "shared_entities", "shared_things", "shared_predicate", "recip_rank_ab",
    "recip_rank_ba", "mutual_nearest", "cosine_gap_a", "cosine_gap_b", "claim_score_min", "claim_score_max",
    "nli_contradiction_max", "nli_contradiction_min", "nli_entailment_max", "nli_entailment_min",
    "nli_neutral_mean", "cos_x_contradiction", "cos_x_entailment",
    *(f"frame_{k}" for k in EVIDENCE_KINDS),
    "both_quantities", "either_negated", "either_condition", "both_blame", "either_blame",
    "word_jaccard", "length_ratio", "either_reported", "has_nli", "lexical_idf_overlap", "rare_shared_word",
    "document_focus",
)


@dataclass(frozen=True)
class PairContext:
    """Everything the judge reads about one candidate pair."""

    a: Claim
    b: Claim
    cosine: float
    combined: float
    rank_ab: int | None = None  # b among a's nearest claims of b's side (1 = nearest)
    rank_ba: int | None = None
    best_cosine_a: float = 0.0  # a's best cosine with any claim of b's side
    best_cosine_b: float = 0.0
    probs_ab: Sequence[float] | None = None  # pair classifier (entailment, neutral, contradiction), a -> b
    probs_ba: Sequence[float] | None = None
    evidence: dict[str, float] = field(default_factory=dict)  # frame difference kind -> strength
    frames: tuple = ()  # the frame differences themselves (divergence._Evidence), strongest first
    lexical_overlap: float = 0.0  # shared content words weighted by their rarity in the case
    rare_shared: float = 0.0  # rarity (idf) of the rarest word both claims use
    focus: float = 0.0  # of the two documents, the smaller share of claims that have a counterpart


def content_words(text: str) -> set[str]:
    """Lower-cased words of three letters or more, without function words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _specific(claim: Claim) -> set[str]:
    return {e.canonical for e in claim.entities if not _GENERIC.match(e.canonical)}


def pair_features(ctx: PairContext) -> np.ndarray:
    a, b = ctx.a, ctx.b
    ea, eb = _specific(a), _specific(b)
    things = {e.canonical for e in a.entities if e.label in _DOMAIN_LABELS} & \
        {e.canonical for e in b.entities if e.label in _DOMAIN_LABELS}
    wa, wb = content_words(a.text), content_words(b.text)
    has_nli = ctx.probs_ab is not None and ctx.probs_ba is not None
    pab = np.asarray(ctx.probs_ab if has_nli else (1 / 3,) * 3, dtype=float)
    pba = np.asarray(ctx.probs_ba if has_nli else (1 / 3,) * 3, dtype=float)
    fa, fb = a.frame, b.frame
    rab, rba = ctx.rank_ab or 0, ctx.rank_ba or 0
    values = [
        ctx.cosine, ctx.combined, math.log1p(len(ea & eb)), float(bool(things)),
        float(bool(set(fa.predicates) & set(fb.predicates))),
        1.0 / rab if rab else 0.0, 1.0 / rba if rba else 0.0, float(rab == 1 and rba == 1),
        max(0.0, ctx.best_cosine_a - ctx.cosine), max(0.0, ctx.best_cosine_b - ctx.cosine),
        min(a.score, b.score), max(a.score, b.score),
        max(pab[2], pba[2]), min(pab[2], pba[2]), max(pab[0], pba[0]), min(pab[0], pba[0]),
        (pab[1] + pba[1]) / 2, ctx.cosine * max(pab[2], pba[2]), ctx.cosine * min(pab[0], pba[0]),
        *(ctx.evidence.get(k, 0.0) for k in EVIDENCE_KINDS),
        float(any(q.get("value") is not None for q in fa.quantities)
              and any(q.get("value") is not None for q in fb.quantities)),
        float(bool(fa.negated or fb.negated or fa.polarity == "negative" or fb.polarity == "negative")),
        float(bool(fa.condition or fb.condition)), float(bool(fa.blame and fb.blame)),
        float(bool(fa.blame or fb.blame)),
        len(wa & wb) / max(1, len(wa | wb)),
        abs(math.log((len(a.text) + 1) / (len(b.text) + 1))),
        float(a.reported or b.reported), float(has_nli), ctx.lexical_overlap, ctx.rare_shared, ctx.focus,
    ]
    return np.asarray(values, dtype=float)


OMISSION_FEATURES = (
    "best_combined_min", "best_combined_max", "best_cosine_min", "best_cosine_max", "claim_score",
    "entities", "domain_entity", "central_predicate", "has_quantity", "unnamed_facility", "reported",
    "relative_position", "length",
)


@dataclass(frozen=True)
class OmissionContext:
    claim: Claim
    best_combined: dict[str, float]  # other party side -> best combined alignment score
    best_cosine: dict[str, float]
    unnamed_by: dict[str, tuple[str, ...]]  # other side -> the facilities this claim names that it never names
    relative_position: float  # 0 = first claim of its document


def omission_features(ctx: OmissionContext) -> np.ndarray:
    c = ctx.claim
    combined = list(ctx.best_combined.values()) or [0.0]
    cosine = list(ctx.best_cosine.values()) or [0.0]
    values = [
        min(combined), max(combined), min(cosine), max(cosine), c.score,
        math.log1p(len(_specific(c))), float(any(e.label in _DOMAIN_LABELS for e in c.entities)),
        float(bool(set(c.frame.predicates) & _CENTRAL_PREDICATES)),
        float(any(q.get("value") is not None for q in c.frame.quantities)),
        float(bool(ctx.unnamed_by)), float(c.reported), ctx.relative_position,
        math.log1p(len(c.text.split())),
    ]
    return np.asarray(values, dtype=float)


def above_bar(p: float, threshold: float) -> float:
    """A flag's score: how far its probability is above the judge's bar for its kind, on the
    log-odds scale (0.5 at the bar). Pair and omission probabilities come from models with
    different base rates; this puts them on one scale, so the report can rank them together."""
    eps = 1e-6
    p, t = min(max(p, eps), 1 - eps), min(max(threshold, eps), 1 - eps)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) - math.log(t / (1 - t)))))


# --- the stored model ------------------------------------------------------------------------


Z_CLIP = 4.0  # standardised features are clipped: a feature rare in training cannot run away


def standardise(X: np.ndarray, mean: Sequence[float], scale: Sequence[float]) -> np.ndarray:
    return np.clip((np.atleast_2d(np.asarray(X, dtype=float)) - np.asarray(mean)) / np.asarray(scale), -Z_CLIP, Z_CLIP)


@dataclass
class LinearModel:
    """A (multinomial) logistic regression over standardised features, as plain numbers."""

    classes: list[str]
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[list[float]]  # one row per class (one row for a binary model: the positive class)
    intercept: list[float]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in ``classes`` order."""
        Z = standardise(X, self.mean, self.scale)
        logits = Z @ np.asarray(self.coef).T + np.asarray(self.intercept)
        if len(self.classes) == 2 and logits.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1 - p, p], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        return {"classes": self.classes, "features": self.features, "mean": self.mean, "scale": self.scale,
                "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, expected: Sequence[str]) -> "LinearModel":
        model = cls(**{k: raw[k] for k in ("classes", "features", "mean", "scale", "coef", "intercept")})
        if list(model.features) != list(expected):
            raise ValueError(f"features {model.features} do not match this version's {list(expected)}")
        return model


@dataclass
class Judge:
    """Learned pair and omission judgements; thresholds are part of the model."""

    version: str
    # P(divergence) = P(same matter) x P(they part | same matter); P(agreement) = P(same matter) x
    # (1 - P(part)). Apart, because "same matter" is mostly closeness, while parting is what
    # separates a divergence from an agreement, and agreements are the closest pairs of all
    related: LinearModel  # classes ["other", "related"]: a gold divergence or agreement
    parts: LinearModel  # classes ["agreement", "divergence"], fitted on related pairs only
    types: LinearModel  # classes PAIR_TYPES (those seen in training)
    omission: LinearModel | None  # classes ["other", "omission"]
    thresholds: dict[str, float]  # divergence, agreement, omission
    meta: dict[str, Any] = field(default_factory=dict)

    def judge_pairs(self, contexts: Sequence[PairContext]) -> list[dict[str, Any]]:
        """Per pair: p_divergence, p_agreement and type probabilities."""
        if not contexts:
            return []
        X = np.stack([pair_features(c) for c in contexts])
        p_div, p_agr = self.pair_probabilities(X)
        p_type = self.types.predict_proba(X)
        return [{"divergence": float(p_div[i]), "agreement": float(p_agr[i]),
                 "types": {t: float(p_type[i, k]) for k, t in enumerate(self.types.classes)}}
                for i in range(len(contexts))]

    def pair_probabilities(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(divergence), P(agreement)) for rows of pair features."""
        if len(X) == 0:
            return np.zeros(0), np.zeros(0)
        related = self.related.predict_proba(X)[:, 1]
        parts = self.parts.predict_proba(X)[:, 1]
        return related * parts, related * (1 - parts)

    def judge_omissions(self, contexts: Sequence[OmissionContext]) -> np.ndarray:
        """Per claim, the probability that the other sides leave it out."""
        if not contexts:
            return np.zeros(0)
        return self.judge_omissions_X(np.stack([omission_features(c) for c in contexts]))

    def judge_omissions_X(self, X: np.ndarray) -> np.ndarray:
        if self.omission is None or len(X) == 0:
            return np.zeros(len(X))
        return self.omission.predict_proba(X)[:, 1]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "related": self.related.to_json(),
                "parts": self.parts.to_json(), "types": self.types.to_json(),
                "omission": self.omission.to_json() if self.omission else None,
                "thresholds": self.thresholds, "meta": self.meta}

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, version: str | None = None) -> "Judge":
        om = raw.get("omission")
        return cls(version=version or str(raw.get("version") or "judge"),
                   related=LinearModel.from_json(raw["related"], expected=PAIR_FEATURES),
                   parts=LinearModel.from_json(raw["parts"], expected=PAIR_FEATURES),
                   types=LinearModel.from_json(raw["types"], expected=PAIR_FEATURES),
                   omission=LinearModel.from_json(om, expected=OMISSION_FEATURES) if om else None,
                   thresholds={k: float(v) for k, v in raw["thresholds"].items()}, meta=dict(raw.get("meta") or {}))

    @classmethod
    def load(cls, ref: str = "default", *, models_dir: str | Path | None = None) -> "Judge":
        """A judge version from the registry (``default`` = its promoted judge), or a folder
        or file holding ``judge.json``. Raises ``ModelError`` naming what is missing."""
        from ..errors import Errors, ModelError
        from ..registry import resolve_judge

        path = resolve_judge(ref, models_dir=models_dir)
        if path is None:
            raise ModelError(Errors.E014, path=Path(ref), detail=f"no judge version {ref!r}")
        file = path / JUDGE_META if path.is_dir() else path
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
            return cls.from_json(raw, version=path.name if path.is_dir() else raw.get("version"))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ModelError(Errors.E014, path=file, detail=f"unreadable judge: {err}") from None


__all__ = ["above_bar", "Z_CLIP", "standardise", "content_words", "EVIDENCE_KINDS", "JUDGE_META", "Judge", "LinearModel", "OMISSION_FEATURES", "OmissionContext",
           "PAIR_FEATURES", "PAIR_TYPES", "PairContext", "omission_features", "pair_features"]

"""Edited claims of a gold event: judge training pairs with known labels (after FactCC).

Each of the event's own party claims is edited by one rule of
:mod:`pipeline.datasets.corruption` whose effect is known: a number changed (quantity),
all <-> part (scope), a negation (contradiction), a condition added (added_condition),
an actor swapped for another of the event (attribution), or a meaning-preserving rewrite
(agreement). Both versions go through the real stages (a two-document case: claims,
frames, encoder, classifier) so their features are what the judge sees at run time.
They teach the parts and type models, never the related model (an edit is trivially
about the same matter).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import RunConfig
from ..datasets.corruption import add_condition, negate, paraphrase, swap_entity, swap_number, swap_scope
from ..files import atomic_write
from ..scoring.gold import slug, transcript
from .events import EventData, pair_feature_rows

EDITS = ("quantity", "scope", "contradiction", "added_condition", "attribution")
_RULES = {"quantity": swap_number, "scope": swap_scope, "contradiction": negate, "added_condition": add_condition}

Label = tuple[str, str | None]  # ("divergence", type) or ("agreement", None)


def _entity_pool(claims: Sequence[Any]) -> dict[str, list[str]]:
    """Entity texts of the event by label, in order of appearance: what an actor is swapped for."""
    pool: dict[str, list[str]] = {}
    for c in claims:
        for e in c.entities:
            if e.text not in pool.setdefault(e.label, []):
                pool[e.label].append(e.text)
    return pool


def _edit_claims(ev: EventData, rng: random.Random, per_event: int) -> list[tuple[str, str, Label]]:
    """(original, edited, label) for up to ``per_event`` party claims: one in four a
    paraphrase, the others the first edit (in random order) that changes the text."""
    claims = [c for c in ev.analysis.claims if c.side in ev.analysis.case.parties and len(c.text.split()) >= 5]
    rng.shuffle(claims)
    pool = _entity_pool(ev.analysis.claims)
    out: list[tuple[str, str, Label]] = []
    for n, c in enumerate(claims[:per_event]):
        kinds = list(EDITS) if n % 4 else ["agreement"]
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "agreement":
                new = paraphrase(c.text, rng)
            elif kind == "attribution":
                ents = [(e.start - c.start, e.end - c.start, e.label) for e in c.entities if c.start <= e.start]
                new = swap_entity(c.text, rng, entities=ents, pool=pool)
            else:
                new = _RULES[kind](c.text, rng)
            if new and new != c.text:
                out.append((c.text, new, ("agreement", None) if kind == "agreement" else ("divergence", kind)))
                break
    return out


def _write_edited_case(root: Path, event_id: str, originals: Sequence[str],
                       edited: Sequence[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """A two-document case (originals vs edits, one paragraph each); the spans of both."""
    text_a, spans_a = transcript("FIRST", originals)
    text_b, spans_b = transcript("SECOND", edited)
    atomic_write(root / "a.txt", text_a)
    atomic_write(root / "b.txt", text_b)
    atomic_write(root / "case.toml", f'id = "{slug(event_id)}-synthetic"\n[[documents]]\nid = "a"\nside = "A"\n'
                 f'path = "a.txt"\n[[documents]]\nid = "b"\nside = "B"\npath = "b.txt"\n')
    return spans_a, spans_b


def synthetic_rows(ev: EventData, *, work_dir: Path, config: RunConfig, models: Any, per_event: int = 80,
                   seed: int = 13) -> list[tuple[np.ndarray, str, str | None]]:
    """(features, "divergence" | "agreement", type) of the event's edited claims, each
    paired with its original as the stages extract them."""
    from ..runner import prepare_case
    from ..stages.divergence import ContextBuilder

    edits = _edit_claims(ev, random.Random(f"{seed}-{ev.event.id}"), per_event)
    if not edits:
        return []
    root = Path(work_dir) / f"{ev.event.id}-synthetic"
    spans_a, spans_b = _write_edited_case(root, ev.event.id, [o for o, _, _ in edits], [e for _, e, _ in edits])
    analysis = prepare_case(root, config=config, models=models)

    def claim_at(doc: str, span: tuple[int, int]) -> Any:
        hits = [c for c in analysis.claims if c.doc_id == doc and min(c.end, span[1]) > max(c.start, span[0])]
        return max(hits, key=lambda c: min(c.end, span[1]) - max(c.start, span[0])) if hits else None

    pairs = [(claim_at("a", sa), claim_at("b", sb), label) for sa, sb, (_, _, label) in zip(spans_a, spans_b, edits)]
    pairs = [(a, b, label) for a, b, label in pairs if a is not None and b is not None]
    if not pairs:
        return []
    index = {c.id: i for i, c in enumerate(analysis.claims)}
    builder = ContextBuilder(analysis.claims, analysis.alignment)
    cosines = [float(analysis.vectors[index[a.id]] @ analysis.vectors[index[b.id]]) for a, b, _ in pairs]
    features = pair_feature_rows([(builder, a, b, cos) for (a, b, _), cos in zip(pairs, cosines)], models.scorer,
                                 rank=1)
    return [(x, label, kind) for x, (_, _, (label, kind)) in zip(features, pairs)]

"""How the attribution component scores itself: ``divergence_attribution``'s ``score()``.

Examples pair a parsed doc (``predicted``, with ``doc._.attributions``) with a gold doc
(``reference``) whose sources and cues are the span groups ``SOURCE_KEY`` and
``CUE_KEY`` (``pipeline.scoring.attribution`` builds them from PolNeAR's brat files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

__all__ = ["CUE_KEY", "SOURCE_KEY", "attribution_prf", "attribution_spans", "score_attributions", "trim_chars"]

SOURCE_KEY = "attribution_source"
CUE_KEY = "attribution_cue"
_EDGE_CHARS = " \t\r\n\"'“”‘’`,;:.!?()[]—–-"


def trim_chars(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``(start, end)`` without edge whitespace and punctuation (``Trump,`` and ``Trump`` alike); None if empty."""
    return _trim_piece(text[start:end], start)


def _trim_piece(piece: str, start: int) -> tuple[int, int] | None:
    left_stripped = piece.lstrip(_EDGE_CHARS)
    start += len(piece) - len(left_stripped)
    end = start + len(left_stripped.rstrip(_EDGE_CHARS))
    return (start, end) if end > start else None


def attribution_spans(doc: Doc, key: str) -> set[tuple[int, int]]:
    """The trimmed character spans of the sources (``SOURCE_KEY``) or cues (``CUE_KEY``) in ``doc``.

    A doc the component ran over gives its attributions (a carried-over sentence has no
    cue of its own); a gold doc gives its span group ``key``.
    """
    if doc._.attributions is not None:
        if key == SOURCE_KEY:
            spans = [a.source for a in doc._.attributions if a.source is not None]
        else:
            spans = [a.cue for a in doc._.attributions if not a.continued]
    else:
        spans = list(doc.spans[key]) if key in doc.spans else []
    trimmed = (_trim_piece(span.text, span.start_char) for span in spans)  # not doc.text: O(len(doc)) a call
    return {span for span in trimmed if span is not None}


def attribution_prf(examples: Iterable[Example], key: str) -> PRFScore:
    """Exact matches of ``key`` spans over the examples, each example's spans counted once."""
    prf = PRFScore()
    for example in examples:
        prf.score_set(attribution_spans(example.predicted, key), attribution_spans(example.reference, key))
    return prf


def score_attributions(examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
    """Precision, recall and F of sources and cues (``attribution_source_f``, ``attribution_cue_p``, ...).

    Spans match by their trimmed characters rather than by token indices
    (``Scorer.score_spans``): annotators mark "Kenansville, N.C." with or without the
    final period, and a trimmed span may end inside a token.
    """
    examples = list(examples)
    scores: dict[str, Any] = {}
    for key in (SOURCE_KEY, CUE_KEY):
        prf = attribution_prf(examples, key)
        scores.update({f"{key}_p": prf.precision, f"{key}_r": prf.recall, f"{key}_f": prf.fscore})
    return scores


@registry.scorers("divergence.attribution_scorer.v1")
def make_attribution_scorer() -> Callable[..., dict[str, Any]]:
    return score_attributions

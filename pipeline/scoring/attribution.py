"""Gold attributions (PolNeAR's brat standoff) as spaCy ``Example``s, and their looser scoring.

The attribution component scores itself by exact matches (``divergence_attribution``'s
``score()``, ``stages.attribution_scorer.score_attributions``); what it needs is an ``Example``
whose reference doc holds the gold sources and cues as span groups. This module reads
PolNeAR's ``.ann`` files, builds those examples (:func:`gold_example`), and adds the
overlap matching that ``evaluation/polnear_attribution.py`` reports beside the exact one
(:func:`span_prf`, :func:`overlap_prf`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example

from ..errors import DataError, Errors
from ..stages.attribution_scorer import CUE_KEY, SOURCE_KEY, attribution_spans, trim_chars

__all__ = ["GoldAttribution", "gold_example", "overlap_prf", "read_brat_attributions", "span_prf"]


@dataclass(frozen=True)
class GoldAttribution:
    """One annotated attribution: character spans (first to last fragment) or None."""

    source: tuple[int, int] | None
    cue: tuple[int, int] | None
    content: tuple[int, int] | None


_T_LINE = re.compile(r"^(T\d+)\t(\S+) ([^\t]+)\t")
_E_LINE = re.compile(r"^(E\d+)\t(.*)$")


def read_brat_attributions(path: str | Path, *, text_length: int | None = None) -> list[GoldAttribution]:
    """Read attributions from a brat ``.ann`` file as PolNeAR writes them.

    T lines carry ``Source``/``Cue``/``Content`` spans (possibly in ``;``-separated
    fragments); E lines tie them together (``Attribution:T4 Content:T3 Cue:T2
    Source:T1``; ``Attribution-no-source`` has no Source). Lines that continue a
    multi-line span text, notes (``#``) and other annotation kinds are skipped.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(Errors.E082, path=path, line=0, detail=str(err)) from None
    spans: dict[str, tuple[int, int]] = {}
    events: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.startswith("T"):
            span = _text_bound(line, path=path, number=number, text_length=text_length)
            if span is not None:
                spans[span[0]] = span[1]
        elif line.startswith("E"):
            match = _E_LINE.match(line)
            if match is not None:
                events.append((number, match.group(2)))
    return [_event(body, spans, path=path, number=number) for number, body in events]


def _text_bound(line: str, *, path: Path, number: int,
                text_length: int | None) -> tuple[str, tuple[int, int]] | None:
    """``("T3", (start, end))`` of a T line (fragments joined first to last); None for a continuation line."""
    match = _T_LINE.match(line)
    if match is None:
        if re.match(r"^T\d+\t", line):
            raise DataError(Errors.E082, path=path, line=number, detail="expected 'Tn<TAB>Label start end<TAB>text'")
        return None
    try:
        offsets = [tuple(int(x) for x in frag.split()) for frag in match.group(3).split(";")]
        start, end = min(o[0] for o in offsets), max(o[1] for o in offsets)
    except (ValueError, IndexError):
        raise DataError(Errors.E082, path=path, line=number, detail=f"bad offsets {match.group(3)!r}") from None
    if start > end or (text_length is not None and end > text_length):
        raise DataError(Errors.E082, path=path, line=number, detail=f"span {start}-{end} outside the text")
    return match.group(1), (start, end)


def _event(body: str, spans: dict[str, tuple[int, int]], *, path: Path, number: int) -> GoldAttribution:
    roles: dict[str, tuple[int, int]] = {}
    for arg in body.split():
        role, _, ref = arg.partition(":")
        role = role.rstrip("0123456789")
        if ref not in spans:
            raise DataError(Errors.E082, path=path, line=number, detail=f"unknown span id {ref!r}")
        if role in roles and role == "Content":  # Content2: extend over both fragments
            roles[role] = (min(roles[role][0], spans[ref][0]), max(roles[role][1], spans[ref][1]))
        else:
            roles.setdefault(role, spans[ref])
    return GoldAttribution(roles.get("Source"), roles.get("Cue"), roles.get("Content"))


# --- examples -----------------------------------------------------------------------------


def gold_example(doc: Doc, gold: Sequence[GoldAttribution]) -> Example:
    """``doc`` (parsed; the component sets ``doc._.attributions`` on it) against its gold.

    The reference doc has ``doc``'s text and tokens, split wherever a trimmed gold span
    starts or ends inside a token (annotators leave the final period off "N.C."), so
    every gold span is a span of the reference: sources in ``doc.spans[SOURCE_KEY]``,
    cues in ``doc.spans[CUE_KEY]``.
    """
    text = doc.text
    chars = {key: [s for s in (trim_chars(text, *span) for span in spans if span is not None) if s is not None]
             for key, spans in ((SOURCE_KEY, [g.source for g in gold]), (CUE_KEY, [g.cue for g in gold]))}
    cuts = sorted({offset for spans in chars.values() for span in spans for offset in span})
    words: list[str] = []
    spaces: list[bool] = []
    for token in doc:
        end = token.idx + len(token.text)
        inside = cuts[bisect.bisect_right(cuts, token.idx):bisect.bisect_left(cuts, end)]
        bounds = [token.idx, *inside, end]
        words.extend(text[a:b] for a, b in zip(bounds, bounds[1:]))
        spaces.extend([False] * len(inside) + [bool(token.whitespace_)])
    reference = Doc(doc.vocab, words=words, spaces=spaces)
    for key, spans in chars.items():
        reference.spans[key] = [reference.char_span(start, end) for start, end in spans]
    return Example(doc, reference)


# --- overlap scoring ------------------------------------------------------------------------


def span_prf(
    gold: Iterable[tuple[int, int]],
    predicted: Iterable[tuple[int, int]],
    *,
    match: Literal["exact", "overlap"] = "exact",
    text: str | None = None,
) -> PRFScore:
    """Precision/recall/F of character spans, each gold span matched at most once.

    With ``text``, spans are first trimmed of edge whitespace and punctuation (so
    ``Trump,`` and ``Trump`` match exactly). ``overlap`` counts a prediction as
    correct when it shares at least one character with a still unmatched gold span;
    it takes the gold span it overlaps most.
    """
    gold_set = _trimmed(gold, text)
    pred_set = _trimmed(predicted, text)
    prf = PRFScore()
    if match == "exact":
        prf.score_set(pred_set, gold_set)
        return prf
    unmatched = set(gold_set)
    for start, end in sorted(pred_set):
        overlaps = [(min(end, g[1]) - max(start, g[0]), g) for g in unmatched]
        best = max((o for o in overlaps if o[0] > 0), default=None)
        if best is not None:
            unmatched.discard(best[1])
    prf.tp = len(gold_set) - len(unmatched)
    prf.fp, prf.fn = len(pred_set) - prf.tp, len(unmatched)
    return prf


def _trimmed(spans: Iterable[tuple[int, int]], text: str | None) -> set[tuple[int, int]]:
    if text is None:
        return {(s, e) for s, e in spans if e > s}
    return {t for t in (trim_chars(text, s, e) for s, e in spans) if t is not None}


def overlap_prf(examples: Iterable[Example], key: str) -> PRFScore:
    """Overlap matches of ``key`` spans (``SOURCE_KEY`` or ``CUE_KEY``) over the examples."""
    total = PRFScore()
    for example in examples:
        total += span_prf(attribution_spans(example.reference, key), attribution_spans(example.predicted, key),
                          match="overlap")
    return total

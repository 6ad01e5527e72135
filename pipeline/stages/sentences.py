"""Paragraphs and sentences of an ingested document, and the text the parsers read.

Lines are the units sentences never cross and the units the claims stage parses
(``paragraphs``); ``split_sentences`` finds the sentences inside them once, at ingest,
and the claims stage gives the parser those boundaries (``sentence_doc``) rather than
splitting again. ``ParseView`` is the text every tokenizer here reads.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from ..schema import Sentence, Turn

if TYPE_CHECKING:
    from spacy.tokens import Doc

# invisible characters that split words for a tokenizer (zero-width space, soft hyphen, BOM)
INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"

# --- text as published ----------------------------------------------------------------
#
# Offsets point into the text as read, so the text itself is never rewritten. The
# parsers get a *view* of it instead: Unicode spaces (no-break, thin, narrow no-break,
# ideographic) become plain spaces and typographic quotes plain quotes, both one
# character for one; soft hyphens and zero-width characters, which split words for a
# tokenizer although a reader never sees them, are dropped, and ``ParseView`` maps
# offsets in the view back to the text.

_SAME_LENGTH = str.maketrans({**{ch: " " for ch in "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                                  "\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t"},
                              "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"'})
DROP_INVISIBLE = str.maketrans({ch: None for ch in INVISIBLE})
INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")


class ParseView:
    """What the tokenizer and sentencizer read for ``text``, with offsets back into ``text``."""

    __slots__ = ("text", "_kept")

    def __init__(self, text: str) -> None:
        same = text.translate(_SAME_LENGTH)
        if INVISIBLE_RE.search(same) is None:
            self.text, self._kept = same, None
        else:
            self._kept = [i for i, ch in enumerate(same) if ch not in INVISIBLE]
            self.text = "".join(same[i] for i in self._kept)

    def start(self, offset: int) -> int:
        """Text offset of the view character at ``offset`` (a span's start)."""
        if self._kept is None:
            return offset
        return self._kept[offset] if offset < len(self._kept) else (self._kept[-1] + 1 if self._kept else 0)

    def end(self, offset: int) -> int:
        """Text offset just after the view character before ``offset`` (a span's end)."""
        if self._kept is None or offset <= 0:
            return offset if self._kept is None else 0
        return self._kept[offset - 1] + 1

    def to_view(self, offset: int) -> int:
        """View offset of the text offset ``offset`` (invisible characters count for nothing)."""
        if self._kept is None:
            return offset
        return bisect.bisect_left(self._kept, offset)


@lru_cache(maxsize=1)
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def paragraphs(text: str, turns: list[Turn]) -> list[tuple[int, int, int]]:
    """(start, end, turn index) of every non-empty line of every non-stage turn, trimmed.

    Lines are the units sentences never cross and the units the claims stage parses.
    """
    blocks: list[tuple[int, int, int]] = []
    for ti, turn in enumerate(turns):
        if turn.role == "stage":
            continue
        pos = turn.start
        for line in text[turn.start:turn.end].split("\n"):
            stripped = line.strip()
            if stripped:
                lead = len(line) - len(line.lstrip())
                blocks.append((pos + lead, pos + lead + len(stripped), ti))
            pos += len(line) + 1
    return blocks


def split_sentences(text: str, turns: list[Turn]) -> list[Sentence]:
    """Sentences inside each paragraph (``paragraphs``), with offsets into ``text``."""
    blocks = paragraphs(text, turns)
    nlp = _sentencizer()
    sentences: list[Sentence] = []
    views = [ParseView(text[s:e]) for s, e, _ in blocks]
    docs = nlp.pipe((v.text for v in views), batch_size=256)
    for (start, _, ti), view, doc in zip(blocks, views, docs):
        for sent in doc.sents:
            s_text = sent.text.strip()
            if not s_text:
                continue
            v_start = sent.start_char + (len(sent.text) - len(sent.text.lstrip()))
            s_start, s_end = start + view.start(v_start), start + view.end(v_start + len(s_text))
            if s_end > s_start:
                sentences.append(Sentence(start=s_start, end=s_end, turn=ti))
    return sentences


def sentence_tokens(doc: Doc, offsets: Iterable[int]) -> list[int]:
    """The index of the token holding each character offset (the token before it, in a token's trailing space)."""
    starts = [token.idx for token in doc]
    return [max(bisect.bisect_right(starts, offset) - 1, 0) for offset in offsets]


def sentence_doc(make_doc: Callable[[str], Doc], text: str, offsets: Iterable[int]) -> Doc:
    """``make_doc(text)`` whose sentences start at the tokens holding ``offsets``, and nowhere else.

    Every token's ``is_sent_start`` is set (True or False), so the parser keeps these
    boundaries and only builds the trees inside them; the entity recognizer does not
    cross them either. ``offsets`` are the starts of the sentences ``split_sentences``
    found, in ``text`` (a ``ParseView`` text).
    """
    import numpy
    from spacy.attrs import SENT_START

    doc = make_doc(text)
    starts = numpy.full((len(doc), 1), -1, dtype="int64")  # -1: not a sentence start
    starts[[0, *sentence_tokens(doc, offsets)], 0] = 1
    # in one array: the token attribute checks the whole doc for a parse on every write
    return doc.from_array([SENT_START], starts.astype("uint64")) if len(doc) else doc

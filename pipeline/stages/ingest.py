"""Stage 1: read a case's documents into speaker-attributed turns and sentences.

Everything downstream points into ``Document.text`` by character offsets, so the
invariant kept here is ``text[start:end]`` for every turn and sentence. For
``.txt``/``.md`` the text is the decoded file as is; for HTML and JSON it is the
extracted text, which the report stores. This module reads and decodes; the formats
(``formats``), speaker turns (``turns``) and sentences (``sentences``) have their own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from ..errors import CaseError, Errors, Warnings, warning_text
from ..manifest import check_nesting, document_format, read_checked, resolve_document
from ..schema import CaseSpec, Document, DocumentSpec
from .formats import MAX_HTML_DEPTH, check_html_depth, html_to_text, json_turns, strip_unsafe
from .sentences import ParseView, paragraphs, split_sentences
from .turns import _alias_set, segment_turns

__all__ = ["MAX_HTML_DEPTH", "MAX_LINE_CHARS", "ParseView", "ReadOptions", "decode", "paragraphs", "read_case",
           "read_document", "segment_turns", "split_sentences", "strip_unsafe"]

BINARY_SNIFF = 8192
_PREFERRED = ["utf_16", "utf_16_le", "utf_16_be", "cp1252", "latin_1", "iso8859_15", "mac_roman", "cp1250",
              "iso8859_2", "cp1251", "koi8_r", "euc_kr", "cp949", "big5", "gb18030", "shift_jis"]


# Limits on what one document can make a run do (README "Security"). A line is the unit
# the claims stage parses, so its length bounds spaCy's time and memory (a 1 MB line takes
# minutes and gigabytes, and spaCy refuses over 1,000,000 characters); the HTML depth
# (``formats.MAX_HTML_DEPTH``) bounds any recursive walk of the parsed tree.
MAX_LINE_CHARS = 100_000


@dataclass(frozen=True)
class ReadOptions:
    max_doc_mb: float = 50.0
    max_line_chars: int = MAX_LINE_CHARS
    allowed_roots: tuple[Path, ...] = ()  # folders besides the case folder that documents may be in


def read_document(case: CaseSpec, spec: DocumentSpec, *, options: ReadOptions = ReadOptions()) -> Document:
    """Read one document of a case; raise ``CaseError`` naming the file on bad input."""
    # inside the case folder (or a root the user allowed), a regular file, under the size
    # limit: all checked before a byte is read
    path = resolve_document(case, spec, allowed_roots=options.allowed_roots)
    raw = read_checked(path, max_bytes=options.max_doc_mb * 1024 * 1024)
    warnings: list[str] = []
    removed: dict[str, int] = {}
    text, encoding = decode(raw, path=path, warnings=warnings)
    text = strip_unsafe(text, removed)
    fmt = document_format(spec)
    if fmt == "html":
        check_html_depth(text, path=path)
        text = strip_unsafe(html_to_text(text), removed)  # entities such as &#8238; decode only here
    if fmt == "json":
        check_nesting(text, path=path, what="JSON transcript")
        text, turns = json_turns(text, path=path, spec=spec)
    if not text.strip():
        raise CaseError(Errors.E007, path=path)
    check_line_length(text, path=path, limit=options.max_line_chars)
    if removed:
        what = " and ".join(f"{n} {name}{'s' if n > 1 else ''}" for name, n in removed.items())
        warnings.append(warning_text(Warnings.W004, path=path, what=what))
    if fmt != "json":
        turns = segment_turns(text, spec=spec, aliases=_alias_set(case))
        # an "article" is prose by design; a transcript without labels is worth a warning
        if not any(t.label for t in turns) and fmt == "transcript":
            warnings.append(warning_text(Warnings.W002, path=path, speaker=spec.speaker))
    sentences = split_sentences(text, turns)
    return Document(spec=spec, text=text, sha256=hashlib.sha256(raw).hexdigest(), turns=turns,
                    sentences=sentences, encoding=encoding, warnings=warnings)


def decode(raw: bytes, *, path: Path, warnings: list[str]) -> tuple[str, str]:
    """UTF-8 if it is; otherwise detect the encoding, warn and carry on; refuse binary."""
    utf16 = sniff_utf16(raw)
    if utf16 is not None:
        encoding, confidence = utf16
        text = raw.decode(encoding)
        if _control_ratio(text) > 0.05:
            raise CaseError(Errors.E008, path=path)
        warnings.append(warning_text(Warnings.W001, path=path, encoding=encoding, confidence=confidence))
        return _normalise_newlines(text), encoding
    sample = raw[:BINARY_SNIFF]
    if sample.count(0) > max(1, len(sample) // 100) and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        # more than a stray NUL (which strip_unsafe removes with a warning): not text
        raise CaseError(Errors.E008, path=path)
    try:
        text = raw.decode("utf-8-sig")
        return _normalise_newlines(text), "utf-8"
    except UnicodeDecodeError:
        pass
    results = list(from_bytes(raw))
    if not results:
        raise CaseError(Errors.E008, path=path)
    # Single-byte code pages often decode equally cleanly; among the cleanest, prefer
    # the Western ones that English-language transcripts are overwhelmingly saved in.
    least = min(r.chaos for r in results)
    clean = [r for r in results if r.chaos <= least + 0.1]
    best = min(clean, key=lambda r: _PREFERRED.index(r.encoding) if r.encoding in _PREFERRED else len(_PREFERRED))
    text = str(best)
    if _control_ratio(text) > 0.05:
        raise CaseError(Errors.E008, path=path)
    confidence = 1.0 - float(best.chaos)
    warnings.append(warning_text(Warnings.W001, path=path, encoding=best.encoding, confidence=confidence))
    return _normalise_newlines(text), best.encoding


def _normalise_newlines(text: str) -> str:
    # Offsets are into this normalised text; CRLF files would otherwise shift them per line.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sniff_utf16(raw: bytes) -> tuple[str, float] | None:
    """(codec, share of the expected zero bytes) for UTF-16 text without a byte-order mark.

    Text in Latin script saved as UTF-16 has a zero byte in every other position, which
    the binary check would otherwise take for a binary file (and charset detectors often
    miss without a BOM). ``None`` when the pattern is absent or the bytes do not decode.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or len(raw) < 4 or len(raw) % 2:
        return None
    sample = raw[:BINARY_SNIFF]
    half = len(sample) // 2
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    for codec, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros >= 0.3 * half and other <= 0.02 * half:
            try:
                raw.decode(codec)
            except UnicodeDecodeError:
                return None
            return codec, zeros / half
    return None


def check_line_length(text: str, *, path: Path, limit: int) -> None:
    """Refuse a line longer than ``limit`` characters (1-based line number in the message)."""
    if len(text) <= limit:
        return
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > limit:
            raise CaseError(Errors.E020, path=path, line=number, length=len(line), limit=limit)


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text[:BINARY_SNIFF] if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / min(len(text), BINARY_SNIFF)


def read_case(case: CaseSpec, *, options: ReadOptions = ReadOptions()) -> tuple[list[Document], list[CaseError]]:
    """All documents of a case; a bad document is reported, never allowed to lose the others."""
    documents: list[Document] = []
    errors: list[CaseError] = []
    for spec in case.documents:
        try:
            documents.append(read_document(case, spec, options=options))
        except CaseError as err:
            errors.append(err)
    return documents, errors

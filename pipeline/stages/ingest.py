"""Stage 1: read a case's documents into speaker-attributed turns and sentences.

Everything downstream points into ``Document.text`` by character offsets, so the
invariant kept here is ``text[start:end]`` for every turn and sentence. For
``.txt``/``.md`` the text is the decoded file as is; for HTML and JSON it is the
extracted text, which the report stores.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from charset_normalizer import from_bytes

from ..errors import CaseError, Errors, Warnings, warning_text
from ..manifest import check_nesting, document_format, read_checked, resolve_document
from ..schema import CaseSpec, Document, DocumentSpec, Sentence, Turn

# Published transcripts put Unicode whitespace around labels ("MS. PSAKI:\u00a0 Hi",
# "Q\u00a0\u00a0\u00a0 On Russia"): horizontal whitespace is any whitespace but a newline,
# and a line may open with invisible characters (zero-width space, soft hyphen, BOM).
_H = r"[^\S\n]"
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_LEAD = rf"^(?:{_H}|[{_INVISIBLE}])*"
# A speaker label at the start of a line: "THE PRESIDENT:", "FOREIGN MINISTER RI:",
# "SECRETARY POMPEO:", "Q:", "Q.", "Q  Mr. President, ..." or "Q" alone on its line.
_UPPER_LABEL = re.compile(
    rf"{_LEAD}(?P<label>(?:[A-Z][A-Z.'’\-]*)(?:{_H}+[A-Z][A-Z.'’\-]*){{0,5}}){_H}*:(?={_H}|$)", re.M)
_Q_LABEL = re.compile(rf"{_LEAD}(?P<label>Q)(?:\.?{_H}*:|\.?{_H}+(?=\S)|\.?{_H}*$)", re.M)
# "[Senior administration official]:" - a placeholder the publisher put for a name
_BRACKET_LABEL = re.compile(rf"{_LEAD}\[(?P<label>[^\[\]\n:]{{2,60}})\]{_H}*:(?={_H}|$)", re.M)
# "Vladimir Putin:", "Question:", "President of Russia Vladimir Putin:" (mixed case)
_MIXED_LABEL = re.compile(rf"{_LEAD}(?P<label>[A-Z][\w.'’\-]*(?:{_H}+[\w.'’\-]+){{0,5}}){_H}*:(?P<rest>{_H}+\S|$)", re.M)
# lower-case words allowed inside a name or title ("President of Russia", "Ursula von der Leyen")
_NAME_CONNECTORS = frozenset({"of", "the", "for", "and", "de", "da", "del", "della", "di", "du", "la", "le",
                              "von", "van", "der", "den", "al", "el", "bin", "ibn"})
# Stage and interpreter notes: "(Laughter.)", "(As interpreted.)", "(Inaudible)".
# a note starts with one of these (whole words): "(Laughter.)", "(As interpreted.)", "(Speaks in Korean.)"
_STAGE_NOTE = re.compile(
    r"^(?:laughter|laughs|applause|inaudible|crosstalk|cross talk|as interpreted|via interpreter|"
    r"interpreter|interpretation|translation|translated|off mic|off-mic|break|pause|end|recess|"
    r"speaks in \w+|in (?:korean|english|vietnamese|chinese)|audio (?:cuts|drops|unavailable)|"
    r"unintelligible|technical difficulties|pool spray|music|silence|no response)\b[^()]*$", re.I)
_PAREN = re.compile(r"\(([^()\n]{1,80})\)")
_QUESTION_LABELS = {"Q", "QUESTION", "REPORTER", "JOURNALIST", "AUDIENCE MEMBER", "AUDIENCE QUESTION",
                    "PARTICIPANT", "CORRESPONDENT"}
_MODERATOR_LABELS = {"MODERATOR", "OPERATOR", "ANNOUNCER", "MC", "HOST", "PRESENTER", "CHAIR", "CHAIRMAN"}
# An interpreter's turn renders what the previous speaker said: it is that speaker's turn.
_INTERPRETER_LABELS = {"INTERPRETER", "THE INTERPRETER", "TRANSLATOR", "THE TRANSLATOR", "INTERPRETATION"}
BINARY_SNIFF = 8192
_PREFERRED = ["utf_16", "utf_16_le", "utf_16_be", "cp1252", "latin_1", "iso8859_15", "mac_roman", "cp1250",
              "iso8859_2", "cp1251", "koi8_r", "euc_kr", "cp949", "big5", "gb18030", "shift_jis"]


# Limits on what one document can make a run do (README "Security"). A line is the unit
# the claims stage parses, so its length bounds spaCy's time and memory (a 1 MB line takes
# minutes and gigabytes, and spaCy refuses over 1,000,000 characters); the HTML depth bounds
# any recursive walk of the parsed tree.
MAX_LINE_CHARS = 100_000
MAX_HTML_DEPTH = 256


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


# NUL and other C0 controls (tab, newlines and form feed aside) and DEL carry no text; the
# bidirectional embeddings, overrides and isolates can make a report show words in another
# order than the document has them ("Trojan Source"), so neither is kept in the text.
_CONTROL_CHARS = {c: None for c in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F]}
_BIDI_CHARS = {c: None for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def strip_unsafe(text: str, removed: dict[str, int]) -> str:
    """``text`` without control and bidirectional formatting characters; counts go into ``removed``."""
    for name, table in (("NUL byte", {0: None}), ("control character", _CONTROL_CHARS),
                        ("bidirectional control character", _BIDI_CHARS)):
        cleaned = text.translate(table)
        if len(cleaned) != len(text):
            removed[name] = removed.get(name, 0) + len(text) - len(cleaned)
            text = cleaned
    return text


def check_line_length(text: str, *, path: Path, limit: int) -> None:
    """Refuse a line longer than ``limit`` characters (1-based line number in the message)."""
    if len(text) <= limit:
        return
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > limit:
            raise CaseError(Errors.E020, path=path, line=number, length=len(line), limit=limit)


_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>|<!--|<!\[CDATA\[")
# elements that never hold children, or whose end tag the parser implies when a sibling
# starts (a page of 500 unclosed <p> is 500 siblings, not 500 levels)
_FLAT_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
              "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rtc",
              "rp", "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head", "body"}
_RAW_TEXT_TAGS = {"script", "style", "textarea", "title", "xmp", "noscript", "template", "iframe"}


def check_html_depth(markup: str, *, path: Path, limit: int = MAX_HTML_DEPTH) -> None:
    """Refuse HTML whose elements nest deeper than ``limit``, from the raw markup, in one loop.

    Runs before any parser, so whichever extractor follows (and whatever recursion it
    does over the tree) never sees a 1,000-level document. An estimate on the safe side
    of what a parser builds: end tags close back to their element, void elements and
    those with implied end tags do not count, comments and script/style bodies are skipped.
    """
    stack: list[str] = []
    open_count: dict[str, int] = {}
    pos = 0
    while (m := _TAG.search(markup, pos)) is not None:
        pos = m.end()
        token = m.group(0)
        if token == "<!--":
            end = markup.find("-->", pos)
            pos = len(markup) if end < 0 else end + 3
            continue
        if token.startswith("<![CDATA["):
            end = markup.find("]]>", pos)
            pos = len(markup) if end < 0 else end + 3
            continue
        closing, name, self_closing = m.group(1), m.group(2).lower(), m.group(3)
        if name in _FLAT_TAGS:
            continue
        if closing:
            if open_count.get(name):
                while stack:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top == name:
                        break
            continue
        if self_closing:
            continue
        if name in _RAW_TEXT_TAGS:
            end = re.compile(f"</{name}", re.I).search(markup, pos)  # compiled once per name (re's cache)
            pos = len(markup) if end is None else end.start()
            continue
        stack.append(name)
        open_count[name] = open_count.get(name, 0) + 1
        if len(stack) > limit:
            raise CaseError(Errors.E021, path=path, what="HTML", limit=limit)


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text[:BINARY_SNIFF] if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / min(len(text), BINARY_SNIFF)


# --- formats -------------------------------------------------------------------------

_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
               "section", "article", "blockquote", "pre", "header", "footer", "dd", "dt", "hr"}
_SKIP_TAGS = {"script", "style", "noscript", "template", "head", "svg", "nav", "form", "button"}


def html_to_text(html: str) -> str:
    """The main text of an HTML page as saved from a browser, one block element a line.

    trafilatura (a maintained main-content extractor) decides what the page's text is,
    leaving out navigation, headers and footers, related-article lists and forms. Where
    it keeps (nearly) everything the page shows - a bare page, a transcript with no
    boilerplate - the page's own block structure is kept instead, because trafilatura
    breaks inline elements of such pages into lines of their own.
    """
    visible = _visible_text(html)
    main = _main_text(html)
    if main and len(main.split()) < 0.9 * len(visible.split()):
        return main
    return visible


def _main_text(html: str) -> str | None:
    import trafilatura

    try:
        text = trafilatura.extract(html, output_format="txt", include_comments=False, include_tables=True,
                                   favor_recall=True, deduplicate=False)
    except Exception:  # noqa: BLE001 - a page the extractor cannot handle falls back to the visible text
        return None
    if not text or not text.strip():
        return None
    lines = [re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n")]
    return "\n\n".join(line for line in lines if line) + "\n"


def _visible_text(html: str) -> str:
    """Visible text of an HTML page, one block element a line (a real parser, not regexes)."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    parts: list[str] = []

    def walk(node) -> None:  # noqa: ANN001 - selectolax Node
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                parts.append(child.text_content or "")
            elif tag in _SKIP_TAGS or tag == "_comment":
                continue
            else:
                block = tag in _BLOCK_TAGS
                if block:
                    parts.append("\n")
                walk(child)
                if block:
                    parts.append("\n")

    walk(root)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in "".join(parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def json_turns(raw: str, *, path: Path, spec: DocumentSpec) -> tuple[str, list[Turn]]:
    """A JSON transcript: a list of {"speaker", "text"} turns, joined by blank lines."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CaseError(Errors.E010, path=path, detail=f"line {err.lineno}: {err.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("turns"), list):
        data = data["turns"]
    if not isinstance(data, list):
        raise CaseError(Errors.E010, path=path, detail="expected a list of {\"speaker\", \"text\"} objects")
    chunks: list[str] = []
    turns: list[Turn] = []
    pos = 0
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise CaseError(Errors.E010, path=path, detail=f"item {i} has no \"text\" string")
        if item.get("speaker") is not None and not isinstance(item["speaker"], str):
            raise CaseError(Errors.E010, path=path, detail=f"item {i}: \"speaker\" must be a string")
        speaker = item.get("speaker") or spec.speaker
        body = strip_unsafe(item["text"], {}).strip()  # "\u0000"/"\u202e" escapes: see strip_unsafe
        if not body:
            continue
        label = str(speaker).upper() if speaker else None
        role = "question" if label in _QUESTION_LABELS else "statement"
        turns.append(Turn(speaker=speaker, role=role, start=pos, end=pos + len(body), label=speaker))
        chunks.append(body)
        pos += len(body) + 2
    return "\n\n".join(chunks) + ("\n" if chunks else ""), turns


# --- transcripts -----------------------------------------------------------------------


def _alias_set(case: CaseSpec) -> frozenset[str]:
    names = {a.upper() for side in case.sides.values() for a in side.aliases}
    names |= {_clean_label(d.speaker).upper() for d in case.documents if d.speaker}
    return frozenset(names)


def _clean_label(label: str) -> str:
    """"MS.\\u00a0 PSAKI" -> "MS. PSAKI": one plain space between the words, nothing invisible."""
    return " ".join(label.translate(_DROP_INVISIBLE).split())


def _label_kind(label: str) -> str:
    """question | moderator | interpreter | speaker, tolerant of case and one-letter typos ("OPERTATOR")."""
    up = label.upper()
    for kind, names in (("question", _QUESTION_LABELS), ("moderator", _MODERATOR_LABELS),
                        ("interpreter", _INTERPRETER_LABELS)):
        if up in names:
            return kind
    if len(up) >= 6:
        for kind, names in (("moderator", _MODERATOR_LABELS), ("interpreter", _INTERPRETER_LABELS),
                            ("question", _QUESTION_LABELS)):
            if any(len(n) >= 6 and difflib.SequenceMatcher(None, up, n).ratio() >= 0.88 for n in names):
                return kind
    return "speaker"


def _name_like(label: str) -> bool:
    """"Vladimir Putin", "President of Russia Vladimir Putin": capitalised words, no sentence words.

    Keeps "On Russia:", "Another example:" or "The question is:" (phrases that end in a
    colon inside speech) from being taken for labels.
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    words = label.split()
    if len(words) < 2 or len(words) > 6:
        return False
    for i, word in enumerate(words):
        bare = word.strip(".'’-")
        if not bare:
            return False
        if bare.lower() in _NAME_CONNECTORS and 0 < i < len(words) - 1:
            continue
        if not bare[0].isupper() or bare.lower() in STOP_WORDS or any(ch.isdigit() for ch in bare):
            return False
    return True


def _find_labels(text: str, aliases: frozenset[str]) -> list[tuple[int, int, str]]:
    """(label start, content start, label) for every speaker label in the text.

    Upper-case labels, ``Q``, and bracketed placeholders are labels wherever they open a
    line. A mixed-case label is one when it names a known speaker (an alias), is a role
    ("Question:", "Moderator:"), or looks like a name and the text uses such labels
    (the same one opens two lines, or two other mixed-case labels were found).
    """
    found: dict[int, tuple[int, int, str]] = {}
    for m in _UPPER_LABEL.finditer(text):
        label = _clean_label(m.group("label"))
        # One capital letter and a colon is too weak to be a label, except "Q"/"A".
        if len(label) < 2 and label not in {"Q", "A"}:
            continue
        found[m.start("label")] = (m.start("label"), m.end(), label)
    for m in _Q_LABEL.finditer(text):
        found.setdefault(m.start("label"), (m.start("label"), m.end(), "Q"))
    for m in _BRACKET_LABEL.finditer(text):
        # the turn starts after "]:", the label is what the brackets hold
        found.setdefault(m.start("label") - 1, (m.start("label") - 1, m.end(), _clean_label(m.group("label"))))
    candidates: list[tuple[int, int, str]] = []
    for m in _MIXED_LABEL.finditer(text):
        if m.start("label") in found:
            continue
        label = _clean_label(m.group("label"))
        end = m.end("rest") - (1 if m.group("rest") else 0)
        up = label.upper()
        if up in aliases or label.split()[-1].upper() in aliases or _label_kind(label) != "speaker":
            found[m.start("label")] = (m.start("label"), end, label)
        elif m.group("rest") and _name_like(label):  # a name with speech after it on the same line
            candidates.append((m.start("label"), end, label))
    if candidates:
        mixed_found = sum(1 for _, _, label in found.values() if not label.isupper())
        repeats: dict[str, int] = {}
        for _, _, label in candidates:
            repeats[label] = repeats.get(label, 0) + 1
        for start, end, label in candidates:
            if repeats[label] >= 2 or mixed_found + len(repeats) - 1 >= 2:
                found[start] = (start, end, label)
    return [found[k] for k in sorted(found)]


def _is_stage_note(inner: str) -> bool:
    return bool(_STAGE_NOTE.match(inner.strip()))


def _speaker_for(label: str | None, spec: DocumentSpec, main_label: str | None, has_labels: bool) -> str | None:
    if label is None:
        # Text before the first label of a transcript is its heading, spoken by nobody.
        return None if has_labels else spec.speaker
    if label == main_label and spec.speaker:
        return spec.speaker
    kind = _label_kind(label)
    if kind == "question":
        return "Reporter"
    if kind == "moderator":
        return label.title() if label.isupper() else label
    return label.title() if label.isupper() else label


def _role_for(label: str | None, has_labels: bool) -> str:
    if label is None:
        return "narration" if not has_labels else "header"
    kind = _label_kind(label)
    if kind == "question":
        return "question"
    if kind == "moderator":
        return "stage"
    return "statement"


def _asks(text: str) -> bool:
    """Whether a stretch of speech ends on a question mark (closing quotes and brackets aside)."""
    return text.rstrip().rstrip("\"'”’)]").endswith("?")


def segment_turns(text: str, *, spec: DocumentSpec, aliases: frozenset[str] = frozenset()) -> list[Turn]:
    """Split a transcript into turns at speaker labels, with stage notes as turns of their own.

    The document's main speaker is the most frequent non-question label ("THE PRESIDENT"
    in a White House transcript), which takes the manifest's ``speaker`` name. Reporters'
    questions and moderators get roles that never yield a party's claims: besides the
    role labels ("Q", "Question:", "MODERATOR:"), a named label that is neither the main
    speaker nor a side's alias and whose every turn ends on a question mark is a
    journalist asking. An interpreter's turn is the previous speaker's.
    """
    labels = _find_labels(text, aliases)
    counts: dict[str, int] = {}
    for _, _, label in labels:
        if _label_kind(label) == "speaker":
            counts[label] = counts.get(label, 0) + 1
    manifest_label = _clean_label(spec.speaker).upper() if spec.speaker else None
    main = next((label for label in counts if label.upper() == manifest_label), None)
    if main is None and counts:
        main = max(counts, key=counts.get)  # type: ignore[arg-type]
    bounds: list[tuple[int, int, str | None]] = []  # (content start, content end, label)
    if not labels or labels[0][0] > 0:
        bounds.append((0, labels[0][0] if labels else len(text), None))
    for i, (_, content_start, label) in enumerate(labels):
        end = labels[i + 1][0] if i + 1 < len(labels) else len(text)
        bounds.append((content_start, end, label))
    askers = {label for label in counts if label != main and label.upper() not in aliases
              and label.split()[-1].upper() not in aliases
              and all(_asks(text[s:e]) for s, e, lab in bounds if lab == label)}

    # an article's opening (headline, lead) is the article's, labels or not further down
    article = document_format(spec) == "article"
    turns: list[Turn] = []
    previous: tuple[str | None, str] | None = None  # the last labelled speaker and role
    for start, end, label in bounds:
        speaker = _speaker_for(label, spec, main, bool(labels) and not article)
        role = _role_for(label, bool(labels) and not article)
        if label in askers:
            speaker, role = label, "question"
        if label is not None and _label_kind(label) == "interpreter":
            speaker, role = previous if previous is not None else (None, "stage")
        elif label is not None:
            previous = (speaker, role)
        cursor = start
        for m in _PAREN.finditer(text, start, end):
            if not _is_stage_note(m.group(1)):
                continue
            _append_trimmed(turns, text, cursor, m.start(), speaker, role, label)
            turns.append(Turn(speaker=None, role="stage", start=m.start(), end=m.end(), label=None))
            cursor = m.end()
        _append_trimmed(turns, text, cursor, end, speaker, role, label)
    return turns


def _append_trimmed(turns: list[Turn], text: str, start: int, end: int, speaker: str | None,
                    role: str, label: str | None) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped or all(not c.isalnum() for c in stripped):
        return
    lead = len(chunk) - len(chunk.lstrip())
    trail = len(chunk) - len(chunk.rstrip())
    turns.append(Turn(speaker=speaker, role=role, start=start + lead, end=end - trail, label=label))


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
_DROP_INVISIBLE = str.maketrans({ch: None for ch in _INVISIBLE})
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE}]")


class ParseView:
    """What the tokenizer and sentencizer read for ``text``, with offsets back into ``text``."""

    __slots__ = ("text", "_kept")

    def __init__(self, text: str) -> None:
        same = text.translate(_SAME_LENGTH)
        if _INVISIBLE_RE.search(same) is None:
            self.text, self._kept = same, None
        else:
            self._kept = [i for i, ch in enumerate(same) if ch not in _INVISIBLE]
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

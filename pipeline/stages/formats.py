"""Document formats besides plain text: HTML pages (main text, nesting depth) and JSON turns.

Part of the ingest stage; each reader returns the text the report stores (and, for
JSON, the turns), and ``strip_unsafe`` takes out what a reader must never show.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import CaseError, Errors
from ..schema import DocumentSpec, Turn
from .turns import QUESTION_LABELS

MAX_HTML_DEPTH = 256

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
        role = "question" if label in QUESTION_LABELS else "statement"
        turns.append(Turn(speaker=speaker, role=role, start=pos, end=pos + len(body), label=speaker))
        chunks.append(body)
        pos += len(body) + 2
    return "\n\n".join(chunks) + ("\n" if chunks else ""), turns

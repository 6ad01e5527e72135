"""Real-transcript events (CONTRACTS §4b): a case folder of verbatim texts plus quote-anchored gold.

The gold quotes exact substrings of the documents. :func:`load_real_event` reads it
as a :class:`~pipeline.scoring.gold.GoldEvent` whose "statements" are the quotes, and
:func:`real_case` locates each quote in the text a report stores, so the same scorer
(:func:`pipeline.scoring.event_score.score_report`) matches claims to them by overlap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import DataError, Errors
from ..report import Report
from .gold import GoldCase, GoldDocument, GoldEvent, GoldItem, StatementRef, StatementSpan, map_gold_type

__all__ = ["REAL_GOLD_NAME", "is_real_event", "load_real_event", "locate_quote", "real_case"]

REAL_GOLD_NAME = "gold.json"


def is_real_event(path: str | Path) -> bool:
    """A case folder with quote-anchored gold beside it (CONTRACTS §4b)."""
    path = Path(path)
    return path.is_dir() and (path / REAL_GOLD_NAME).is_file() and (path / "case.toml").is_file()


def load_real_event(folder: str | Path) -> GoldEvent:
    """Read ``folder/gold.json`` as a :class:`GoldEvent` whose "statements" are the quotes.

    Each document's statements are its distinct gold quotes in the order the gold names them,
    so the items point at them by index exactly as in a paraphrased gold file; where each
    quote sits in the text is found later, in the report's stored text (:func:`real_case`).
    """
    from ..manifest import load_manifest

    folder = Path(folder)
    path = folder / REAL_GOLD_NAME
    case = load_manifest(folder)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(Errors.E101, path=path, detail=str(err)) from None
    side_of = {d.id: d.side for d in case.documents}
    quotes: dict[str, list[str]] = {d.id: [] for d in case.documents}

    def ref(value: Mapping[str, Any] | None, where: str) -> StatementRef | None:
        if value is None:
            return None
        doc, quote = str(value["doc"]), str(value["quote"])
        if doc not in quotes:
            raise ValueError(f"{where}: unknown doc {doc!r}")
        if quote not in quotes[doc]:
            quotes[doc].append(quote)
        return StatementRef(doc, quotes[doc].index(quote))

    parties = case.parties
    try:
        items: dict[str, list[GoldItem]] = {"divergence": [], "agreement": []}
        for kind, key in (("divergence", "divergences"), ("agreement", "agreements")):
            for i, d in enumerate(raw.get(key) or []):
                iid = str(d.get("id") or f"{kind[0].upper()}{i + 1}")
                a, b = ref(d["a"], iid), ref(d.get("b"), iid)
                if a is None or (kind == "agreement" and b is None):
                    raise ValueError(f"{iid}: missing quote")
                gold_type = "agreement" if kind == "agreement" else str(d["type"])
                omitting = tuple(s for s in parties if s != side_of[a.doc_id]) if b is None else ()
                items[kind].append(GoldItem(id=iid, kind=kind, topic=str(d.get("topic") or ""), gold_type=gold_type,
                                            types=map_gold_type(gold_type), a=a, b=b, omitting_sides=omitting))
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise DataError(Errors.E101, path=path, detail=detail) from None
    documents = tuple(GoldDocument(doc_id=d.id, side=d.side, speaker=d.speaker or d.side,
                                   statements=tuple(quotes[d.id]), date=d.date, source=d.source)
                      for d in case.documents)
    return GoldEvent(id=case.id, title=case.title or case.id, date=case.date, documents=documents,
                     divergences=tuple(items["divergence"]), agreements=tuple(items["agreement"]))


_SPACE_CHARS = "\u00a0\u2007\u202f\u2009\u200a\u2002\u2003\u2004\u2005\u2006\u2008\u205f\u3000\t"


def locate_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` is in ``text``: exactly, else with any run of (Unicode) whitespace
    matching any other, so a stored text whose no-break spaces were normalised still matches."""
    at = text.find(quote)
    if at >= 0:
        return at, at + len(quote)
    words = quote.translate({ord(c): " " for c in _SPACE_CHARS}).split()
    if not words:
        return None
    pattern = r"[\s\u00a0\u2007\u202f\u200b]+".join(re.escape(w) for w in words)
    m = re.search(pattern, text)
    return (m.start(), m.end()) if m else None


def real_case(event: GoldEvent, folder: str | Path, report: Report | Mapping[str, Any]) -> GoldCase:
    """The :class:`GoldCase` of a real event: each quote located in the text the report stores
    for its document (the offsets of the report's claims point into that text). ``report``
    may be just ``{"documents": [{"id", "text"}, ...]}``."""
    texts = ({d.id: d.text or "" for d in report.documents} if isinstance(report, Report)
             else {str(d.get("id")): str(d.get("text") or "") for d in report.get("documents") or []})
    case = GoldCase(root=Path(folder), case_id=event.id, doc_ids={d.doc_id: d.doc_id for d in event.documents})
    for doc in event.documents:
        for i, quote in enumerate(doc.statements):
            where = locate_quote(texts.get(doc.doc_id, ""), quote)
            if where is None:
                raise DataError(Errors.E103, path=Path(folder) / REAL_GOLD_NAME, doc=doc.doc_id, quote=quote[:60])
            case.spans[(doc.doc_id, i)] = StatementSpan(doc.doc_id, i, doc.side, *where)
    return case

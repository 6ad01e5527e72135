"""Render a report (CONTRACTS §3) as one self-contained HTML page.

The page is what a reviewer reads, often offline and from an e-mail attachment, so it
carries its own CSS, JS and SVG and makes no external request. The report is turned
into a small view model here (sorting, counts, highlighting) and laid out by the Jinja2
template ``templates/report.html.j2`` with autoescaping on: transcripts are untrusted
text, and a ``<script>`` in a speech must show as words on the page.

Entity highlighting follows displaCy's look (its markup classes and label colours) but
is built here rather than by ``spacy.displacy.render``: a quoted claim carries two
overlapping layers, entities and the words that differ from the other side, which
displaCy's entity renderer cannot nest.
"""

from __future__ import annotations

import difflib
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from .files import atomic_write
from .report import REPORT_FILE, Report, ReportClaim, ReportDivergence, ReportDocument, ReportTurn, SetAside
from .schema import DIVERGENCE_TYPES

TEMPLATE_NAME = "report.html.j2"

TYPE_LABELS = {
    "contradiction": "Contradiction",
    "quantity": "Quantity",
    "scope": "Scope",
    "added_condition": "Added condition",
    "attribution": "Attribution",
    "omission": "Omission",
    "agreement": "Agreement",
}
# Badge colours: red for what cannot both be true, green for agreement, distinct hues between.
TYPE_COLORS = {
    "contradiction": "#b3261e",
    "quantity": "#7b3fa0",
    "scope": "#c25e00",
    "added_condition": "#00796b",
    "attribution": "#3949ab",
    "omission": "#6d4c41",
    "agreement": "#2e7d32",
}
SIDE_COLORS = ("#1f5fa8", "#a83232", "#2e7d32", "#8a5a00", "#6a3d9a", "#00796b")
# Extra entity colours for labels displaCy has no colour for (gazetteer labels).
_EXTRA_ENTITY_COLORS = ("#f4c7c3", "#c9e4ff", "#d7f5c4", "#ffe0b2", "#e1d5f5", "#cfeee9", "#f8d8ea")
_DEFAULT_TOPIC = "Other"
_FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's they them their theirs we us our ours i me my you your he him his
she her hers of in on at to for from by with as into onto about over than then so and or but if while
is are was were be been being am do does did has have had having will would shall should can could may
might must which who whom whose what there here also just very really said says say
""".split())
_WORD = re.compile(r"\w+(?:['’.\-]\w+)*")


# --- view model ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimView:
    id: str
    side: str
    side_color: str
    claimer: str
    speaker: str | None
    reported: bool
    cue: str | None
    doc_id: str
    doc_date: str | None
    html: Markup


@dataclass(frozen=True)
class ColumnView:
    side: str
    side_color: str
    claims: list[ClaimView]
    absent_note: str | None = None  # omissions: "no counterpart in DPRK's documents"


@dataclass(frozen=True)
class DivergenceView:
    id: str
    type: str
    type_label: str
    type_color: str
    topic: str
    score: float
    explanation: str
    sides: list[str]
    columns: list[ColumnView]
    probs: list[tuple[str, float]]
    review: str | None
    review_kind: str | None
    review_title: str | None


@dataclass
class TopicView:
    anchor: str
    name: str
    flagged: list[DivergenceView] = field(default_factory=list)
    agreements: list[DivergenceView] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def top_score(self) -> float:
        return max((d.score for d in self.flagged), default=-1.0)


@dataclass(frozen=True)
class BlockView:
    """One speaker turn (or stretch of unlabelled text) of a document in the appendix."""

    label: str | None
    role: str
    html: Markup


@dataclass(frozen=True)
class DocumentView:
    id: str
    side: str
    side_color: str
    speaker: str | None
    date: str | None
    source: str | None
    source_href: str | None
    path: str | None
    blocks: list[BlockView]
    has_text: bool


# --- public API ------------------------------------------------------------------------


def render_report_html(report: Report | Mapping[str, Any], *,
                       reviews: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The report page (CONTRACTS §3 plus the pipeline's extensions); a dict is checked first.

    ``reviews`` maps divergence ids to a reviewer's decision
    (``{"decision", "type", "reviewer", "time"}``), shown as a badge on the flag.
    """
    view = build_view(Report.from_data(report), reviews=reviews or {})
    return _environment().get_template(TEMPLATE_NAME).render(**view)


def write_report(report: Report, out_dir: str | Path) -> Path:
    """The writer of a run's report folder: ``report.html`` and ``report.json``, each atomically
    (a batch writes the same two files, made in its workers, with its fingerprint: ``batch.fingerprints``).

    Both are made in memory before either is written, so a failure leaves the old pair.
    Returns the path of ``report.json``.
    """
    out_dir = Path(out_dir)
    html = render_report_html(report)
    body = report.dumps()
    atomic_write(out_dir / "report.html", html)
    return atomic_write(out_dir / REPORT_FILE, body)


def write_report_html(path: str | Path, report: Report | Mapping[str, Any], *,
                      reviews: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Render and write the page atomically (temp file in the same folder, then replace)."""
    return atomic_write(Path(path), render_report_html(report, reviews=reviews))


def build_view(report: Report, *, reviews: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the template needs, computed from the report (counts are never trusted from it)."""
    claims = report.claims_by_id()
    docs_by_id = report.documents_by_id()

    side_colors = _side_colors(report)
    entity_colors = _EntityColors()
    parties = [s for s in side_colors if any(d.side == s for d in report.documents)] or list(side_colors)

    # Topics are ids ("t3") named in the report's "topics" table, or names already.
    views = [
        _divergence_view(d, claims=claims, docs=docs_by_id, side_colors=side_colors, parties=parties,
                         entity_colors=entity_colors, review=reviews.get(d.id), topic=report.topic_name(d.topic))
        for d in report.divergences
    ]
    views.sort(key=lambda v: -v.score)

    topics: dict[str, TopicView] = {}
    for v in views:
        topic = topics.setdefault(v.topic, TopicView(anchor=f"topic-{len(topics) + 1}", name=v.topic))
        (topic.agreements if v.type == "agreement" else topic.flagged).append(v)
        topic.counts[v.type] += 1
    # The topic holding the most confident flag comes first, topics with agreements only last.
    ordered_topics = sorted(topics.values(), key=lambda t: (-t.top_score, t.name.lower()))

    type_counts = Counter(v.type for v in views)
    known = [t for t in DIVERGENCE_TYPES if type_counts[t]] + sorted(t for t in type_counts if t not in TYPE_LABELS)
    type_rows = [{"type": t, "label": _type_label(t), "color": _type_color(t), "count": type_counts[t]} for t in known]
    flagged = [v for v in views if v.type != "agreement"]
    reviewed = sum(1 for v in views if v.review)

    case = report.case
    return {
        "set_aside": _set_aside_view(report.set_aside, claims),
        "case": {"id": case.id, "title": case.title or case.id, "date": case.date},
        "schema_version": report.schema_version,
        "documents": [_document_view(d, claims=claims, side_colors=side_colors) for d in report.documents],
        "topics": ordered_topics,
        "type_rows": type_rows,
        "type_chart": _bar_chart(type_rows),
        "total": len(views),
        "flagged_total": len(flagged),
        "agreement_total": type_counts["agreement"],
        "reviewed_total": reviewed,
        "top": flagged[:5],
        "sides": [{"name": s, "color": c} for s, c in side_colors.items()],
        "warnings": list(report.warnings),
        "config": _flat_config(report),
        "type_colors": {t: _type_color(t) for t in type_counts},
    }


# --- highlighting ----------------------------------------------------------------------


def word_diff(a: str, b: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Character spans of the content words that differ between two claims (difflib on words).

    Function words and punctuation are never marked: "the" and commas differing between two
    paraphrases is noise, "entirety" vs "part" is the point. (spaCy's stop list is not used:
    it holds "all", "part", "only", "never", "five", exactly the words a divergence turns on.)
    """
    ta, tb = list(_WORD.finditer(a)), list(_WORD.finditer(b))
    matcher = difflib.SequenceMatcher(None, [m.group().lower() for m in ta], [m.group().lower() for m in tb],
                                      autojunk=False)
    # A word that only moved ("lifted the sanctions" / "the sanctions lifted") is no difference.
    stems_a, stems_b = {_stem(m.group()) for m in ta}, {_stem(m.group()) for m in tb}
    marks_a: list[tuple[int, int]] = []
    marks_b: list[tuple[int, int]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        marks_a += [m.span() for m in ta[i1:i2] if _content(m.group()) and _stem(m.group()) not in stems_b]
        marks_b += [m.span() for m in tb[j1:j2] if _content(m.group()) and _stem(m.group()) not in stems_a]
    return _join_adjacent(marks_a, a), _join_adjacent(marks_b, b)


def _content(word: str) -> bool:
    return word.lower() not in _FUNCTION_WORDS


def _stem(word: str) -> str:
    """Crude suffix stripping, enough to see "lifting" and "lifted" as one word."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def highlight(text: str, *, entities: Sequence[tuple[int, int, str, str]] = (),
              marks: Sequence[tuple[int, int]] = (), colors: "_EntityColors | None" = None) -> Markup:
    """Escaped HTML of ``text`` with entities (``(start, end, label, canonical)``) in displaCy's
    style and ``marks`` (the differing words) as ``<mark class="diff">``; spans are relative to
    ``text``. Overlapping entities keep the first; marks may cross entity edges."""
    colors = colors or _EntityColors()
    n = len(text)
    ents: list[tuple[int, int, str, str]] = []
    for start, end, label, canonical in sorted(entities, key=lambda e: (e[0], -e[1])):
        if 0 <= start < end <= n and (not ents or start >= ents[-1][1]):
            ents.append((start, end, label, canonical))
    spans = _merge([(max(0, s), min(n, e)) for s, e in marks if min(n, e) > max(0, s)])
    cuts = sorted({0, n, *(p for e in ents for p in e[:2]), *(p for s in spans for p in s)})

    out: list[str] = []
    ei = mi = 0
    for start, end in zip(cuts, cuts[1:]):
        while ei < len(ents) and ents[ei][1] <= start:
            ei += 1
        while mi < len(spans) and spans[mi][1] <= start:
            mi += 1
        ent = ents[ei] if ei < len(ents) and ents[ei][0] <= start else None
        if ent and ent[0] == start:
            title = f' title="{escape(ent[3])}"' if ent[3] and ent[3] != text[ent[0]:ent[1]] else ""
            out.append(f'<mark class="entity" style="background: {colors[ent[2]]}"{title}>')
        piece = str(escape(text[start:end]))
        if mi < len(spans) and spans[mi][0] <= start:
            piece = f'<mark class="diff">{piece}</mark>'
        out.append(piece)
        if ent and ent[1] == end:
            out.append(f'<span class="entity-label">{escape(ent[2])}</span></mark>')
    return Markup("".join(out))


class _EntityColors:
    """displaCy's label colours, plus stable extra colours for labels it does not know."""

    def __init__(self) -> None:
        from spacy.displacy.render import DEFAULT_LABEL_COLORS

        self._colors = dict(DEFAULT_LABEL_COLORS)

    def __getitem__(self, label: str) -> str:
        if label not in self._colors:
            self._colors[label] = _EXTRA_ENTITY_COLORS[zlib.crc32(label.encode()) % len(_EXTRA_ENTITY_COLORS)]
        return self._colors[label]


# --- pieces of the view ----------------------------------------------------------------


def _divergence_view(d: ReportDivergence, *, claims: Mapping[str, ReportClaim], docs: Mapping[str, ReportDocument],
                     side_colors: Mapping[str, str], parties: Sequence[str], entity_colors: _EntityColors,
                     review: Mapping[str, Any] | None, topic: str) -> DivergenceView:
    dtype = d.type or "unknown"
    found = [claims[c] for c in d.claims]  # the report checked that they exist
    marks: dict[str, list[tuple[int, int]]] = dict(d.highlights)
    if not marks and len(found) == 2 and dtype != "agreement":
        marks[found[0].id], marks[found[1].id] = word_diff(found[0].text, found[1].text)

    claim_views = [_claim_view(c, docs=docs, side_colors=side_colors, marks=marks.get(c.id, []),
                               entity_colors=entity_colors) for c in found]
    sides = list(d.sides) or list(dict.fromkeys(c.side for c in claim_views))
    order = list(dict.fromkeys([*sides, *(c.side for c in claim_views)]))
    columns = [ColumnView(side=s, side_color=side_colors.get(s, "#555"),
                          claims=[c for c in claim_views if c.side == s]) for s in order]
    columns = [c for c in columns if c.claims]
    if dtype == "omission":
        asserted = {c.side for c in claim_views}
        others = [s for s in sides if s not in asserted] or [s for s in parties if s not in asserted]
        if others:
            note = "no counterpart in " + " or ".join(f"{s}'s" for s in others) + " documents"
            columns.append(ColumnView(side=others[0], side_color=side_colors.get(others[0], "#555"), claims=[],
                                      absent_note=note))

    probs = sorted(d.probs.items(), key=lambda kv: -kv[1])
    badge, kind, title = review_badge(review)
    return DivergenceView(
        id=d.id, type=dtype, type_label=_type_label(dtype), type_color=_type_color(dtype),
        topic=topic or _DEFAULT_TOPIC, score=float(d.score) if d.score is not None else 0.0,
        explanation=d.explanation or "", sides=sides, columns=columns, probs=probs[:4],
        review=badge, review_kind=kind, review_title=title,
    )


def _claim_view(claim: ReportClaim, *, docs: Mapping[str, ReportDocument], side_colors: Mapping[str, str],
                marks: Sequence[tuple[int, int]], entity_colors: _EntityColors) -> ClaimView:
    text, offset = claim.text, claim.start
    ents = []
    for e in claim.entities:
        start, end = e.start - offset, e.end - offset
        # Offsets are into the document; tolerate reports that give them relative to the claim.
        if text[max(start, 0):max(end, 0)] != e.text and text[e.start:e.end] == e.text:
            start, end = e.start, e.end
        ents.append((start, end, e.label or "ENT", e.canonical or ""))
    doc = docs.get(claim.doc_id)
    side = claim.side or (doc.side if doc else "") or "?"
    return ClaimView(
        id=claim.id, side=side, side_color=side_colors.get(side, "#555"),
        claimer=claim.claimer or claim.speaker or (doc.speaker if doc else None) or "unknown speaker",
        speaker=claim.speaker, reported=claim.reported, cue=claim.cue,
        doc_id=claim.doc_id, doc_date=doc.date if doc else None,
        html=highlight(text, entities=ents, marks=marks, colors=entity_colors),
    )


def review_badge(review: Mapping[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    """("accepted by X" | "corrected to scope by X" | "rejected by X", kind, tooltip) for a review."""
    if not review:
        return None, None, None
    decision = str(review.get("decision") or "").lower()
    who = str(review.get("reviewer") or "a reviewer")
    when = review.get("time")
    title = f"reviewed {when}" if when else None
    if decision.startswith("accept"):
        return f"accepted by {who}", "accepted", title
    if decision.startswith("reject"):
        return f"rejected by {who}", "rejected", title
    if decision.startswith("correct") or decision.startswith("relabel"):
        new = str(review.get("type") or "?")
        return f"corrected to {_type_label(new).lower()} by {who}", "corrected", title
    return f"{decision or 'reviewed'} by {who}", "other", title


def _document_view(doc: ReportDocument, *, claims: Mapping[str, ReportClaim],
                   side_colors: Mapping[str, str]) -> DocumentView:
    own = sorted((c for c in claims.values() if c.doc_id == doc.id), key=lambda c: (c.start, -c.end))
    side = doc.side or "?"
    if doc.text is not None:
        blocks = _document_blocks(doc.text, doc.turns, own, default_speaker=doc.speaker)
    else:  # the report left the text out: still give every claim its anchor
        blocks = [BlockView(label=c.speaker or c.claimer, role="statement",
                            html=Markup(f'<span class="claim-src" id="src-{escape(c.id)}">{escape(c.text)}</span>'))
                  for c in own]
    return DocumentView(id=doc.id, side=side, side_color=side_colors.get(side, "#555"), speaker=doc.speaker,
                        date=doc.date, source=doc.source, source_href=_safe_href(doc.source), path=doc.path,
                        blocks=blocks, has_text=doc.text is not None)


def _set_aside_view(section: SetAside | None, claims: Mapping[str, ReportClaim]) -> dict[str, Any]:
    """Claims set aside as off-topic, per document, so that nothing disappears silently."""
    if section is None:
        return {"total": 0, "documents": []}
    per_doc: dict[str, list[dict[str, Any]]] = {}
    for item in section.claims:
        claim = claims.get(item.id)
        per_doc.setdefault(item.doc_id, []).append(
            {"id": item.id, "text": claim.text if claim else "",
             "speaker": (claim.speaker or claim.claimer) if claim else None, "relevance": item.relevance})
    documents = [{"id": doc_id, "count": len(items), "claims": items} for doc_id, items in per_doc.items()]
    return {"total": sum(d["count"] for d in documents), "documents": documents,
            "min_similarity": section.min_similarity}


def _document_blocks(text: str, turns: Sequence[ReportTurn], claims: Sequence[ReportClaim], *,
                     default_speaker: str | None) -> list[BlockView]:
    """The document as speaker turns, each claim wrapped in ``<span id="src-<claim id>">``.

    A claim outside every turn (labels, headings) gets a block of its own so that every
    claim link lands somewhere.
    """
    regions = sorted(((t.start, t.end, t) for t in turns if t.end > t.start), key=lambda r: r[0])
    if not regions:
        regions = [(0, len(text), ReportTurn(speaker=default_speaker, start=0, end=len(text)))]
    placed: dict[int, list[ReportClaim]] = {i: [] for i in range(len(regions))}
    orphans: list[ReportClaim] = []
    for claim in claims:
        best, overlap = None, 0
        for i, (rs, re_, _) in enumerate(regions):
            o = min(claim.end, re_) - max(claim.start, rs)
            if o > overlap:
                best, overlap = i, o
        (placed[best].append(claim) if best is not None else orphans.append(claim))
    for claim in orphans:
        cs, ce = claim.start, max(claim.end, claim.start)
        regions.append((cs, ce, ReportTurn(role="narration", start=cs, end=ce)))
        placed[len(regions) - 1] = [claim]
    order = sorted(range(len(regions)), key=lambda i: regions[i][0])

    blocks = []
    for i in order:
        start, end, turn = regions[i]
        role = turn.role or "statement"
        label = None if role == "stage" else (turn.label or turn.speaker)
        if role == "question" and not label:
            label = "Q"
        blocks.append(BlockView(label=label, role=role, html=_anchored(text, start, end, placed[i])))
    return blocks


def _anchored(text: str, start: int, end: int, claims: Sequence[ReportClaim]) -> Markup:
    """Escaped ``text[start:end]`` with each claim span wrapped in its anchor.

    Claims that cross another (rare: reported speech inside a longer claim) get an empty
    anchor at their start instead, so links still land on the right place.
    """
    wrap: list[tuple[int, int, str]] = []
    points: list[tuple[int, str]] = []
    for c in claims:
        cs, ce = max(start, c.start), min(end, c.end)
        if ce > cs and (not wrap or cs >= wrap[-1][1]):
            wrap.append((cs, ce, c.id))
        else:
            points.append((min(max(cs, start), end), c.id))

    def anchor(cid: str) -> str:
        return f'<span class="claim-src anchor-only" id="src-{escape(cid)}"></span>'

    def plain(lo: int, hi: int, anchors: Sequence[tuple[int, str]]) -> str:
        pieces, cur = [], lo
        for p, cid in anchors:
            pieces += [str(escape(text[cur:p])), anchor(cid)]
            cur = p
        return "".join(pieces) + str(escape(text[cur:hi]))

    points.sort()
    out: list[str] = []
    pos = start
    for ws, we, cid in wrap:
        out.append(plain(pos, ws, [pt for pt in points if pos <= pt[0] < ws]))
        inner = plain(ws, we, [pt for pt in points if ws <= pt[0] < we])
        out.append(f'<span class="claim-src" id="src-{escape(cid)}">{inner}</span>')
        pos = we
    out.append(plain(pos, end, [pt for pt in points if pt[0] >= pos]))
    return Markup("".join(out))


def _side_colors(report: Report) -> dict[str, str]:
    names = [d.side or "?" for d in report.documents]
    names += [c.side for c in report.claims if c.side]
    names += [s for d in report.divergences for s in d.sides]
    return {name: SIDE_COLORS[i % len(SIDE_COLORS)] for i, name in enumerate(dict.fromkeys(names))}


def _bar_chart(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Geometry of the horizontal bar chart of counts by type (drawn as inline SVG)."""
    label_w, bar_w, row_h = 130, 220, 22
    peak = max((r["count"] for r in rows), default=0) or 1
    bars = [{"label": r["label"], "count": r["count"], "color": r["color"], "y": i * row_h,
             "width": max(2, round(bar_w * r["count"] / peak))} for i, r in enumerate(rows)]
    return {"bars": bars, "label_w": label_w, "width": label_w + bar_w + 40, "height": max(row_h, len(rows) * row_h),
            "row_h": row_h}


def _flat_config(report: Report) -> list[tuple[str, str]]:
    if report.config is None:
        return []
    return [(k, v if isinstance(v, str) else repr(v)) for k, v in report.config.model_dump(exclude_unset=True).items()]


def _safe_href(url: Any) -> str | None:
    """Only web links become links: a ``javascript:`` source must not be clickable."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in {"http", "https"} else None


def _join_adjacent(spans: Sequence[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Merge marked words separated only by spaces into one mark, so phrases read as one."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and not text[out[-1][1]:s].strip():
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def _type_label(t: str) -> str:
    return TYPE_LABELS.get(t, t.replace("_", " ").capitalize())


def _type_color(t: str) -> str:
    return TYPE_COLORS.get(t, "#546e7a")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline", "templates"),
        autoescape=True,  # ".j2" is not in select_autoescape's list: switch it on explicitly
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x: f"{100 * float(x):.0f}%"
    return env

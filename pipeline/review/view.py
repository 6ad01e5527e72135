"""How the review pages are laid out and worded: the Jinja2 templates and the text helpers
they share with the JSON replies (``review_text`` is what both show for a flag's review)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi.templating import Jinja2Templates

from ..labels import label_text
from ..schema import DIVERGENCE_TYPES
from .cases import ReviewCase

HERE = Path(__file__).parent
PAIR_TYPES = tuple(t for t in DIVERGENCE_TYPES if t != "omission")


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its extension: transcripts are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seg"] = seg  # ids inside URL paths
    env.globals.update(pair_types=PAIR_TYPES, short_time=short_time, review_text=review_text, label_text=label_text)
    return Jinja2Templates(env=env)


def review_text(review: Mapping[str, Any] | None) -> str:
    """How a flag's review reads on the page, e.g. "corrected to scope by ann, 2026-02-28 10:31 UTC"."""
    if not review:
        return "not reviewed"
    return f"{label_text(review)} by {review['reviewer']}, {short_time(review.get('time'))}"


def case_url(case: ReviewCase, anchor: str = "") -> str:
    return f"/cases/{seg(case.id)}" + (f"#{anchor}" if anchor else "")


def seg(value: str) -> str:
    return quote(str(value), safe="")


def short_time(iso: str | None) -> str:
    """``2026-02-28T10:31:02.123+00:00`` -> ``2026-02-28 10:31 UTC``."""
    if not iso:
        return ""
    return iso[:10] + " " + iso[11:16] + " UTC"

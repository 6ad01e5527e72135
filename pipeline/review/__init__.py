"""Reviewing divergence reports in the browser (``divergence review``).

``create_app`` builds the FastAPI app over report folders; labels go to a
:class:`pipeline.labels.LabelStore`. ``cases`` reads report folders into what the
pages show: claims in context and the review queue, most uncertain flags first.
``routes/`` holds the pages and the label actions (``APIRouter`` modules), ``deps`` what
they are given (FastAPI ``Depends``), ``security`` what the app trusts and how it checks it.
"""

from .app import create_app, label_text, review_text
from .cases import Context, ReviewCase, ReviewClaim, ReviewDivergence, load_case, load_cases, uncertainty

__all__ = [
    "Context",
    "ReviewCase",
    "ReviewClaim",
    "ReviewDivergence",
    "create_app",
    "label_text",
    "load_case",
    "load_cases",
    "review_text",
    "uncertainty",
]

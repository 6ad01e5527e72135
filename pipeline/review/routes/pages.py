"""The pages (GET): the cases with their progress, a case's flags in review order, the
history of its labels, and the queue as JSON for scripts and for the page to refresh itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..deps import Case, Cases, Page, Store, Templates
from ..security import Refused
from ..view import case_url

router = APIRouter()


@router.get("/", name="index")
def index(request: Request, page: Page, cases: Cases, store: Store, templates: Templates) -> Response:
    rows = [{"case": case, "progress": case.progress(store.reviews_for(case.id))} for case in cases.values()]
    return templates.TemplateResponse(request, "index.html", {**page, "rows": rows})


@router.get("/cases/{case_id}", name="case")
def case_page(request: Request, case: Case, page: Page, store: Store, templates: Templates,
              view: str = "queue") -> Response:
    if view not in ("queue", "topic"):
        raise Refused(400, f"unknown view {view!r} (use queue or topic)")
    reviews = store.reviews_for(case.id)
    groups = case.by_topic(reviews) if view == "topic" else [("", case.queue(reviews))]
    return templates.TemplateResponse(request, "case.html", {
        **page,
        "case": case,
        "view": view,
        "groups": groups,
        "reviews": reviews,
        "progress": case.progress(reviews),
        "missed": store.labels(case_id=case.id, decision="missed"),
        "case_url": case_url(case),
    })


@router.get("/cases/{case_id}/history", name="history")
def history_page(request: Request, case: Case, page: Page, store: Store, templates: Templates) -> Response:
    entries = store.history(case_id=case.id)
    return templates.TemplateResponse(request, "history.html",
                                      {**page, "case": case, "entries": list(reversed(entries))})


@router.get("/api/cases/{case_id}", name="case_api")
def case_api(case: Case, store: Store) -> Response:
    """The queue as JSON, for scripts and for the page to refresh itself."""
    reviews = store.reviews_for(case.id)
    queue = [{"id": d.id, "type": d.type, "topic": d.topic, "uncertainty": round(d.uncertainty, 4),
              "review": reviews.get(d.id)} for d in case.queue(reviews)]
    return JSONResponse({"case": case.id, "progress": case.progress(reviews), "queue": queue})

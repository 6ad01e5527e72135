"""What the routes are given (FastAPI ``Depends``): the label store, the cases, the settings,
the checked form, the case and flag named in the path. All cheap and non-blocking, so
they are ``async`` (a sync dependency would cost a thread hop each).

The app keeps one :class:`ReviewState` on ``app.state``; every route reads it through
these dependencies, so a test can swap any of them (``app.dependency_overrides``) and a
route's signature says what it uses. Results are cached per request: the form is read
and checked once however many dependencies need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from ..labels import LabelStore
from .cases import ReviewCase, ReviewDivergence
from .security import Refused, Signer, checked_form, remembered_reviewer


@dataclass(frozen=True)
class ReviewSettings:
    token: str | None  # required on every request when set
    reviewer: str | None  # the name put on labels when the page has not set one
    signer: Signer


@dataclass(frozen=True)
class ReviewState:
    cases: dict[str, ReviewCase]  # by case id
    store: LabelStore
    settings: ReviewSettings
    templates: Jinja2Templates


async def review_state(request: Request) -> ReviewState:
    return request.app.state.review


async def get_store(state: Annotated[ReviewState, Depends(review_state)]) -> LabelStore:
    return state.store


async def get_cases(state: Annotated[ReviewState, Depends(review_state)]) -> dict[str, ReviewCase]:
    return state.cases


async def get_settings(state: Annotated[ReviewState, Depends(review_state)]) -> ReviewSettings:
    return state.settings


async def get_templates(state: Annotated[ReviewState, Depends(review_state)]) -> Jinja2Templates:
    return state.templates


Store = Annotated[LabelStore, Depends(get_store)]
Cases = Annotated[dict[str, ReviewCase], Depends(get_cases)]
Settings = Annotated[ReviewSettings, Depends(get_settings)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]


async def get_case(case_id: str, cases: Cases) -> ReviewCase:
    case = cases.get(case_id)
    if case is None:
        raise Refused(404, f"unknown case {case_id!r}")
    return case


async def get_flag(divergence_id: str, case: Annotated[ReviewCase, Depends(get_case)]) -> ReviewDivergence:
    divergence = case.divergence(divergence_id)
    if divergence is None:
        raise Refused(404, f"unknown divergence {divergence_id!r} in case {case.id!r}")
    return divergence


async def get_form(request: Request, settings: Settings) -> FormData:
    """The POST body, refused (403) unless same-origin and carrying the session's CSRF token."""
    return await checked_form(request, settings.signer)


def reviewer_of(request: Request, settings: ReviewSettings, form: FormData | None = None) -> str:
    """The name on a label: the form's, else the signed cookie's, else the app's default."""
    name = (form.get("reviewer") if form else None) or remembered_reviewer(request, settings.signer) \
        or settings.reviewer or ""
    return str(name).strip()


async def get_reviewer(request: Request, settings: Settings, form: Annotated[FormData, Depends(get_form)]) -> str:
    return reviewer_of(request, settings, form)


def page_values(request: Request, settings: ReviewSettings) -> dict[str, Any]:
    """What every page template needs: the CSRF token, the reviewer's name, its own address."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {"csrf": request.state.csrf, "reviewer": reviewer_of(request, settings), "here": here}


async def page_context(request: Request, settings: Settings) -> dict[str, Any]:
    return page_values(request, settings)


Case = Annotated[ReviewCase, Depends(get_case)]
Flag = Annotated[ReviewDivergence, Depends(get_flag)]
CheckedForm = Annotated[FormData, Depends(get_form)]
Reviewer = Annotated[str, Depends(get_reviewer)]
Page = Annotated[dict[str, Any], Depends(page_context)]

"""The review web app: server-rendered pages over report folders, labels into a LabelStore.

Pages work without JavaScript (plain forms that POST and redirect back);
``static/review.js`` adds keyboard shortcuts and in-place updates on top. The routes
live in ``routes/`` (``pages``, ``labels``) and get what they use through FastAPI
dependencies (``deps``); what the app trusts and how it checks it is in ``security``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import DivergenceError, Errors, ReportError
from ..labels import LabelStore
from .cases import load_cases
from .deps import ReviewSettings, ReviewState, page_values
from .routes import labels, pages
from .security import LOOPBACK_HOSTS, Refused, Signer, access_guard, wants_json
from .view import HERE, label_text, make_templates, review_text


def create_app(
    report_dirs: Iterable[str | Path],
    *,
    store: LabelStore,
    token: str | None = None,
    reviewer: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    skipped: list[ReportError] | None = None,
) -> FastAPI:
    """The review app over ``report_dirs``, writing labels to ``store``.

    ``token``: required on every request when set (use it whenever the app is
    reachable beyond this machine). ``reviewer``: the default name put on labels
    when the page has not set one. ``allowed_hosts``: Host header names served;
    defaults to loopback names when there is no token, anything when there is one.
    Raises :class:`~pipeline.errors.ReportError` for an unreadable report folder, or, when
    ``skipped`` is a list, appends the error there and serves the other folders.
    """
    if token is not None and not token.strip():
        raise DivergenceError(Errors.E096)  # an empty token would lock every reviewer out
    settings = ReviewSettings(token=token, reviewer=reviewer, signer=Signer())
    app = FastAPI(title="divergence review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = ReviewState(cases=load_cases(report_dirs, skipped=skipped), store=store, settings=settings,
                                   templates=make_templates())
    if allowed_hosts is None and token is None:
        allowed_hosts = LOOPBACK_HOSTS
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.middleware("http")(access_guard(token=token, signer=settings.signer))  # outermost: runs first
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(DivergenceError, _divergence_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(labels.router)
    return app


async def _refused(request: Request, err: Refused) -> Response:
    """A refusal as one line: JSON for scripts, the error page for browsers."""
    if wants_json(request):
        return JSONResponse({"error": err.message}, status_code=err.status)
    state: ReviewState = request.app.state.review
    context = {**page_values(request, state.settings), "status": err.status, "message": err.message}
    return state.templates.TemplateResponse(request, "error.html", context, err.status)


async def _divergence_error(request: Request, err: DivergenceError) -> Response:
    return await _refused(request, Refused(422, err.problem))


__all__ = ["create_app", "label_text", "review_text"]

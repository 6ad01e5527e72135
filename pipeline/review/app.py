"""The review web app: server-rendered pages over report folders, labels into a LabelStore.

Pages work without JavaScript (plain forms that POST and redirect back);
``static/review.js`` adds keyboard shortcuts and in-place updates on top.

Safety, because transcripts are untrusted text and labels are someone's work:
- every transcript string goes through Jinja2 autoescaping, and a strict
  Content-Security-Policy (no inline script) backs that up;
- with a ``token``, every request must carry it (header ``X-Divergence-Token``,
  cookie, or ``?token=`` once, which sets the cookie); without one, only loopback
  Host names are served, so a DNS-rebinding page cannot read the app;
- state changes are POSTs that must carry a CSRF token (form field ``csrf_token`` or
  header ``X-CSRF-Token``) equal to an HMAC, under a secret that never leaves the server,
  of the session cookie: a page on another port of the same host can set our cookies
  (cookies ignore ports) but cannot compute the token. POSTs whose ``Origin`` is another
  origin or ``null`` (sandboxed frames, data: URLs) or whose ``Sec-Fetch-Site`` is not
  same-origin are refused before the token is looked at; the reviewer-name cookie is
  signed the same way, so a foreign page cannot choose the name on a label;
- bad label values are refused with a 4xx and a one-line reason, and change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import DivergenceError, Errors, LabelError, ReportError
from ..labels import FLAG_DECISIONS, Label, LabelStore, flag_key, missed_key
from ..schema import DIVERGENCE_TYPES
from .cases import ReviewCase, ReviewDivergence, load_cases

HERE = Path(__file__).parent
TOKEN_HEADER = "X-Divergence-Token"
TOKEN_COOKIE = "divergence_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE = "divergence_csrf"
CSRF_FIELD = "csrf_token"
REVIEWER_COOKIE = "divergence_reviewer"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
PAIR_TYPES = tuple(t for t in DIVERGENCE_TYPES if t != "omission")

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _Refused(Exception):
    """A request the app answers with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
    cases = load_cases(report_dirs, skipped=skipped)
    secret = secrets.token_bytes(32)  # server-side only: signs CSRF tokens and the reviewer cookie

    def sign(purpose: str, value: str) -> str:
        mac = hmac.new(secret, f"{purpose}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")
    app = FastAPI(title="divergence review", docs_url=None, redoc_url=None, openapi_url=None)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its extension: transcripts are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seg"] = _seg  # ids inside URL paths
    env.globals.update(
        pair_types=PAIR_TYPES, short_time=_short_time, review_text=review_text, label_text=label_text
    )
    templates = Jinja2Templates(env=env)

    if allowed_hosts is None and token is None:
        allowed_hosts = LOOPBACK_HOSTS
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    # --- middleware: token, CSRF cookie, security headers -----------------------------

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if token is not None:
            offered = (
                request.headers.get(TOKEN_HEADER)
                or request.cookies.get(TOKEN_COOKIE)
                or request.query_params.get("token")
            )
            if not offered or not _same(offered, token):
                return _secure(
                    PlainTextResponse(
                        "missing or wrong access token: open the URL that `divergence review` printed",
                        status_code=401,
                    )
                )
            if request.query_params.get("token") and request.method == "GET":
                # trade the URL token for a cookie, and drop it from the address bar and history
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                response: Response = RedirectResponse(target, status_code=303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return _secure(response)
        session = request.cookies.get(CSRF_COOKIE)
        fresh = not session or not 32 <= len(session) <= 128
        if fresh:
            session = secrets.token_urlsafe(32)
        request.state.session = session
        request.state.csrf = sign("csrf", session)  # what pages embed; the cookie alone is worth nothing
        response = await call_next(request)
        if fresh:
            response.set_cookie(CSRF_COOKIE, session, httponly=True, samesite="strict")
        return _secure(response)

    @app.exception_handler(_Refused)
    async def refused(request: Request, err: _Refused) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": err.message}, status_code=err.status)
        return templates.TemplateResponse(
            request, "error.html", {**_page(request), "status": err.status, "message": err.message}, err.status
        )

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # --- helpers -------------------------------------------------------------------------

    def _page(request: Request) -> dict[str, Any]:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return {"csrf": request.state.csrf, "reviewer": _reviewer_of(request), "here": here}

    def _reviewer_of(request: Request, form: FormData | None = None) -> str:
        # "name.signature": a cookie another page of this host set carries no valid signature
        stored, _, signature = request.cookies.get(REVIEWER_COOKIE, "").rpartition(".")
        remembered = unquote(stored) if stored and _same(signature, sign("reviewer", stored)) else ""
        name = (form.get("reviewer") if form else None) or remembered or reviewer or ""
        return str(name).strip()

    def _case(case_id: str) -> ReviewCase:
        case = cases.get(case_id)
        if case is None:
            raise _Refused(404, f"unknown case {case_id!r}")
        return case

    def _flag(case: ReviewCase, divergence_id: str) -> ReviewDivergence:
        divergence = case.divergence(divergence_id)
        if divergence is None:
            raise _Refused(404, f"unknown divergence {divergence_id!r} in case {case.id!r}")
        return divergence

    async def _checked_form(request: Request) -> FormData:
        """The POST body, after the same-origin and CSRF checks."""
        origin = request.headers.get("origin")
        if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
            raise _Refused(403, "cross-origin request refused")
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            raise _Refused(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
        form = await request.form()
        session = request.cookies.get(CSRF_COOKIE)
        offered = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not session or not isinstance(offered, str) or not _same(offered, sign("csrf", session)):
            raise _Refused(403, "missing or stale CSRF token: reload the page and try again")
        return form

    async def _record(label: Label) -> Label:
        try:
            return await run_in_threadpool(store.record, label)
        except LabelError as err:
            raise _Refused(422, err.problem) from err

    def _progress(case: ReviewCase, reviews: Mapping[str, Any]) -> dict[str, int]:
        return {"reviewed": sum(1 for d in case.divergences if d.id in reviews), "total": len(case.divergences)}

    def _back(request: Request, form: FormData, default: str) -> Response:
        target = str(form.get("next") or default)
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = default  # never redirect off-site
        return RedirectResponse(target, status_code=303)

    def _case_url(case: ReviewCase, anchor: str = "") -> str:
        return f"/cases/{_seg(case.id)}" + (f"#{anchor}" if anchor else "")

    # --- pages ---------------------------------------------------------------------------

    @app.get("/", name="index")
    def index(request: Request) -> Response:
        rows = []
        for case in cases.values():
            reviews = store.reviews_for(case.id)
            rows.append({"case": case, "progress": _progress(case, reviews)})
        return templates.TemplateResponse(request, "index.html", {**_page(request), "rows": rows})

    @app.get("/cases/{case_id}", name="case")
    def case_page(request: Request, case_id: str, view: str = "queue") -> Response:
        case = _case(case_id)
        if view not in ("queue", "topic"):
            raise _Refused(400, f"unknown view {view!r} (use queue or topic)")
        reviews = store.reviews_for(case.id)
        groups = case.by_topic(reviews) if view == "topic" else [("", case.queue(reviews))]
        missed = store.labels(case_id=case.id, decision="missed")
        return templates.TemplateResponse(
            request,
            "case.html",
            {
                **_page(request),
                "case": case,
                "view": view,
                "groups": groups,
                "reviews": reviews,
                "progress": _progress(case, reviews),
                "missed": missed,
                "case_url": _case_url(case),
            },
        )

    @app.get("/cases/{case_id}/history", name="history")
    def history_page(request: Request, case_id: str) -> Response:
        case = _case(case_id)
        entries = store.history(case_id=case.id)
        return templates.TemplateResponse(
            request, "history.html", {**_page(request), "case": case, "entries": list(reversed(entries))}
        )

    @app.get("/api/cases/{case_id}", name="case_api")
    def case_api(request: Request, case_id: str) -> Response:
        """The queue as JSON, for scripts and for the page to refresh itself."""
        case = _case(case_id)
        reviews = store.reviews_for(case.id)
        queue = [
            {
                "id": d.id,
                "type": d.type,
                "topic": d.topic,
                "uncertainty": round(d.uncertainty, 4),
                "review": reviews.get(d.id),
            }
            for d in case.queue(reviews)
        ]
        return JSONResponse({"case": case.id, "progress": _progress(case, reviews), "queue": queue})

    # --- actions -------------------------------------------------------------------------

    @app.post("/cases/{case_id}/divergences/{divergence_id}", name="label")
    async def label_flag(request: Request, case_id: str, divergence_id: str) -> Response:
        """Accept, reject, correct (with ``type``) or mark "not about the same thing" (``unrelated``)."""
        form = await _checked_form(request)
        case = _case(case_id)
        divergence = _flag(case, divergence_id)
        decision = str(form.get("decision") or "")
        if decision not in FLAG_DECISIONS:
            raise _Refused(422, f"unknown decision {decision!r} (use one of: {', '.join(FLAG_DECISIONS)})")
        stored = await _record(
            Label.for_flag(
                case_id=case.id,
                divergence_id=divergence.id,
                decision=decision,
                reviewer=_reviewer_of(request, form),
                claims=case.claim_refs(divergence),
                predicted_type=divergence.type,
                type=str(form.get("type") or "") or None,
                topic=divergence.topic,
                score=divergence.score,
            )
        )
        if _wants_json(request):
            reviews = await run_in_threadpool(store.reviews_for, case.id)
            summary = stored.summary()
            return JSONResponse({"review": summary, "text": review_text(summary), "progress": _progress(case, reviews)})
        return _back(request, form, _case_url(case, f"d-{divergence.id}"))

    @app.post("/cases/{case_id}/divergences/{divergence_id}/clear", name="clear")
    async def clear_flag(request: Request, case_id: str, divergence_id: str) -> Response:
        """Undo: withdraw the flag's current label (the history keeps it)."""
        form = await _checked_form(request)
        case = _case(case_id)
        divergence = _flag(case, divergence_id)
        try:
            await run_in_threadpool(
                store.clear, case.id, flag_key(divergence.id), reviewer=_reviewer_of(request, form)
            )
        except LabelError as err:
            raise _Refused(422, err.problem) from err
        if _wants_json(request):
            reviews = await run_in_threadpool(store.reviews_for, case.id)
            return JSONResponse({"review": None, "text": review_text(None), "progress": _progress(case, reviews)})
        return _back(request, form, _case_url(case, f"d-{divergence.id}"))

    @app.post("/cases/{case_id}/missed", name="missed")
    async def add_missed(request: Request, case_id: str) -> Response:
        """A divergence the pipeline missed: link ``claim_a`` and ``claim_b``, or ``claim_a`` alone as an omission."""
        form = await _checked_form(request)
        case = _case(case_id)
        ids = [str(form.get(k) or "").strip() for k in ("claim_a", "claim_b")]
        ids = [i for i in ids if i]
        if not ids:
            raise _Refused(422, "choose the claim(s) the pipeline missed")
        unknown = [i for i in ids if i not in case.claims]
        if unknown:
            raise _Refused(422, f"unknown claim {unknown[0]!r} in case {case.id!r}")
        kind = str(form.get("type") or ("omission" if len(ids) == 1 else ""))
        existing = case.flag_on(ids)
        if existing is not None:
            raise _Refused(
                409, f"the pipeline already flagged these claims as {existing.id!r} ({existing.type}); review that flag"
            )
        await _record(
            Label.missed(
                case_id=case.id,
                reviewer=_reviewer_of(request, form),
                claims=[case.claims[i].ref() for i in ids],
                type=kind,
            )
        )
        if _wants_json(request):
            missed = await run_in_threadpool(store.labels, case_id=case.id, decision="missed")
            return JSONResponse({"missed": len(missed)})
        return _back(request, form, _case_url(case, "missed"))

    @app.post("/cases/{case_id}/missed/clear", name="clear_missed")
    async def clear_missed(request: Request, case_id: str) -> Response:
        form = await _checked_form(request)
        case = _case(case_id)
        ids = [str(form.get(k) or "").strip() for k in ("claim_a", "claim_b")]
        key = missed_key([i for i in ids if i])
        try:
            cleared = await run_in_threadpool(store.clear, case.id, key, reviewer=_reviewer_of(request, form))
        except LabelError as err:
            raise _Refused(422, err.problem) from err
        if cleared is None:
            raise _Refused(404, "no such missed-divergence label")
        if _wants_json(request):
            return JSONResponse({"cleared": True})
        return _back(request, form, _case_url(case, "missed"))

    @app.post("/reviewer", name="set_reviewer")
    async def set_reviewer(request: Request) -> Response:
        """Remember the reviewer's name (a cookie) so each label carries it."""
        form = await _checked_form(request)
        name = str(form.get("reviewer") or "").strip()
        if not name:
            raise _Refused(422, "the reviewer's name is required")
        if len(name) > 100:
            raise _Refused(422, "reviewer name longer than 100 characters")
        response = JSONResponse({"reviewer": name}) if _wants_json(request) else _back(request, form, "/")
        # percent-encoded: cookies are Latin-1 and names are not
        year = 365 * 24 * 3600
        stored = quote(name, safe="")
        response.set_cookie(REVIEWER_COOKIE, f"{stored}.{sign('reviewer', stored)}", httponly=True,
                            samesite="strict", max_age=year)
        return response

    @app.exception_handler(DivergenceError)
    async def divergence_error(request: Request, err: DivergenceError) -> Response:
        return await refused(request, _Refused(422, err.problem))

    return app


def review_text(review: Mapping[str, Any] | None) -> str:
    """How a flag's review reads on the page, e.g. "corrected to scope by ann, 2026-02-28 10:31 UTC"."""
    if not review:
        return "not reviewed"
    return f"{label_text(review)} by {review['reviewer']}, {_short_time(review.get('time'))}"


def label_text(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return "(none)"
    kind = str(summary.get("type") or "").replace("_", " ")
    return {
        "accept": f"accepted as {kind}",
        "reject": "rejected",
        "correct": f"corrected to {kind}",
        "unrelated": "not about the same thing",
        "missed": f"missed {kind}",
    }.get(summary["decision"], summary["decision"])


def _same(offered: str, expected: str) -> bool:
    # constant-time, and bytes so that a non-ASCII guess is a mismatch rather than a TypeError
    return secrets.compare_digest(offered.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _secure(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _short_time(iso: str | None) -> str:
    """``2026-02-28T10:31:02.123+00:00`` -> ``2026-02-28 10:31 UTC``."""
    if not iso:
        return ""
    return iso[:10] + " " + iso[11:16] + " UTC"

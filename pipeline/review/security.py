"""What the review app trusts, and how it checks it.

Transcripts are untrusted text and labels are someone's work, so:
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
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import FormData

TOKEN_HEADER = "X-Divergence-Token"
TOKEN_COOKIE = "divergence_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE = "divergence_csrf"
CSRF_FIELD = "csrf_token"
REVIEWER_COOKIE = "divergence_reviewer"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_YEAR = 365 * 24 * 3600

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Refused(Exception):
    """A request the app answers with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Signer:
    """HMACs under a secret made at start that never leaves the server: CSRF tokens and the reviewer cookie."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def sign(self, purpose: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{purpose}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def verify(self, purpose: str, value: str, offered: object) -> bool:
        return isinstance(offered, str) and same(offered, self.sign(purpose, value))


def same(offered: str, expected: str) -> bool:
    # constant-time, and bytes so that a non-ASCII guess is a mismatch rather than a TypeError
    return secrets.compare_digest(offered.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def access_guard(*, token: str | None, signer: Signer) -> Callable[[Request, Callable], Awaitable[Response]]:
    """The HTTP middleware: the access token, the CSRF session cookie, the security headers."""

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is not None:
            refused = _token_refusal(request, token)
            if refused is not None:
                return secure(refused)
        session = request.cookies.get(CSRF_COOKIE)
        fresh = not session or not 32 <= len(session) <= 128
        if fresh:
            session = secrets.token_urlsafe(32)
        request.state.session = session
        request.state.csrf = signer.sign("csrf", session)  # what pages embed; the cookie alone is worth nothing
        response = await call_next(request)
        if fresh:
            response.set_cookie(CSRF_COOKIE, session, httponly=True, samesite="strict")
        return secure(response)

    return guard


def _token_refusal(request: Request, token: str) -> Response | None:
    """A 401 without the token; a redirect that trades a URL token for a cookie; else None."""
    offered = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token")
    if not offered or not same(offered, token):
        return PlainTextResponse("missing or wrong access token: open the URL that `divergence review` printed",
                                 status_code=401)
    if request.query_params.get("token") and request.method == "GET":
        # trade the URL token for a cookie, and drop it from the address bar and history
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        response = RedirectResponse(request.url.path + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response
    return None


async def checked_form(request: Request, signer: Signer) -> FormData:
    """The POST body, after the same-origin and CSRF checks."""
    origin = request.headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        raise Refused(403, "cross-origin request refused")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Refused(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
    form = await request.form()
    session = request.cookies.get(CSRF_COOKIE)
    if not session or not signer.verify("csrf", session, request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)):
        raise Refused(403, "missing or stale CSRF token: reload the page and try again")
    return form


def remembered_reviewer(request: Request, signer: Signer) -> str:
    """The name in the reviewer cookie, if this server signed it ("name.signature")."""
    stored, _, signature = request.cookies.get(REVIEWER_COOKIE, "").rpartition(".")
    return unquote(stored) if stored and signer.verify("reviewer", stored, signature) else ""


def remember_reviewer(response: Response, name: str, signer: Signer) -> None:
    stored = quote(name, safe="")  # percent-encoded: cookies are Latin-1 and names are not
    response.set_cookie(REVIEWER_COOKIE, f"{stored}.{signer.sign('reviewer', stored)}", httponly=True,
                        samesite="strict", max_age=_YEAR)

"""The HTML pages: sign-in and sign-out, the agent console and the CX dashboard.

Sign-in is protected against login CSRF by a double-submit token (the form field must equal a
cookie only this site can set); once signed in, every state-changing request carries the session's
own token (form field here, `X-CSRF-Token` header on the scripts' fetch calls; see `kernel.auth`).
The session cookie is HttpOnly, SameSite=Strict, and Secure over TLS. The pages have no inline
script or style: they work under the strict content-security policy `kernel.web_security` puts on
every answer.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from kernel.accounts import AccountLocked, Accounts, ActiveSession
from kernel.api_errors import ApiError
from kernel.auth import CAN_SET_SETTINGS, SESSION_COOKIE, session_of
from kernel.ports import LogUnavailable
from kernel.request_body import read_limited
from services.projections.timeline import type_titles
from services.query_api.web.i18n import LANG_COOKIE, LANGUAGES, MESSAGES, language_of
from services.query_api.web.settings import WebSettings
from services.service_metrics.calendar import WEEKDAYS, time_zones


class _PageRoute(APIRoute):
    """A page route: while the account store (PostgreSQL) does not answer, the person gets the
    sign-in page saying so (503, Retry-After), not the API's JSON error (found by a review)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LogUnavailable:
                return _unavailable_page(request)

        return guarded


router = APIRouter(include_in_schema=False, route_class=_PageRoute)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC_DIR = Path(__file__).parent / "static"


@functools.cache
def static_url(path: str) -> str:
    """`/static/<path>?v=<a hash of its content>`. Static files are cached for an hour
    (kernel/web_security.py), so without it a browser could run a cached common.js with a new
    console.js after an upgrade: a browser test run across a change of both saw exactly that.
    A changed file is a new address; read once a process, as the files do not change under it."""
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


templates.env.globals["static"] = static_url
SIGNIN_CSRF_COOKIE = "cem_signin_csrf"
MANAGERS = frozenset({"manager", "admin"})
MAX_FORM_BYTES = 8 * 1024


def _secure(request: Request) -> bool:
    settings: WebSettings = request.app.state.web_settings
    return request.url.scheme == "https" or settings.behind_tls


def _render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    kept: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    lang = language_of(request)
    page = {"lang": lang, "languages": LANGUAGES, "t": MESSAGES[lang], "messages": MESSAGES[lang]}
    # Each language's link keeps the page's own query (the sign-in's `next`, say), or `kept`.
    if kept is None:
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    page["language_links"] = {code: "?" + urlencode([*kept, ("lang", code)]) for code in LANGUAGES}
    response = templates.TemplateResponse(
        request, name, {**page, **context}, status_code=status_code
    )
    if request.query_params.get("lang") in LANGUAGES:
        # Remembered for the next pages; not a credential, so readable by the scripts.
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", secure=_secure(request)
        )
    return response


def _to_signin(request: Request) -> RedirectResponse:
    """To the sign-in page, which brings the person back here once signed in."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?{urlencode({'next': back})}", status_code=303)


# Where a sign-in may lead: a page a person reads on this site (`/console#customer=…`), never
# another site (`//evil.example`, `https://…`: an open redirect), the API (an export fetched
# after signing in), nor sign-in or sign-out themselves (`/signout` answers POST only).
NEXT_PAGES = ("/console", "/dashboard", "/settings")
MAX_NEXT = 1000


def _next_page(wanted: str | None) -> str:
    """`wanted` when its path is one of `NEXT_PAGES` (the redirect quotes the rest), else the
    console."""
    if not wanted or len(wanted) > MAX_NEXT:
        return "/console"
    page = wanted.split("#", 1)[0].split("?", 1)[0]
    return wanted if page in NEXT_PAGES else "/console"


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form, read as every body is (a 413 past MAX_FORM_BYTES); a 400 for more
    fields than a sign-in or sign-out form has."""
    body = await read_limited(request, MAX_FORM_BYTES)
    try:
        parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:
        raise ApiError(400, "malformed_form", "too many form fields") from None
    return {name: values[0] for name, values in parsed.items()}


def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/console" if session_of(request) else "/signin", status_code=303)


@router.get("/signin")
def signin_page(request: Request) -> Response:
    # `ended`: a page whose session ended (signed out elsewhere, expired) sent the person here.
    ended = request.query_params.get("ended") == "1"
    return _signin_form(request, error=None, info="session_ended" if ended else None)


def _signin_form(
    request: Request,
    error: str | None,
    status_code: int = 200,
    info: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The form, bringing back where the person was going (`next`) and the email they typed."""
    token = secrets.token_urlsafe(32)
    form = form if form is not None else {"next": request.query_params.get("next", "")}
    wanted = form.get("next") or ""
    context = {
        "csrf": token,
        "error": error,
        "info": info,
        "next": _next_page(wanted) if wanted else "",
        "email": form.get("email", "")[:320],
    }
    # The answer to a sign-in sent (a wrong password, the store down): its language links keep
    # where the person was going, from the form (the email stays out of addresses and logs).
    kept = None
    if request.method == "POST":
        kept = [("next", context["next"])] if context["next"] else []
    response = _render(request, "signin.html", context, status_code, kept)
    response.set_cookie(
        SIGNIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/signin",
    )
    return response


def _unavailable_page(request: Request, form: dict[str, str] | None = None) -> Response:
    """The sign-in page saying the account store does not answer. It keeps what the person was
    doing: the email and `next` of the sign-in they sent, else the page they asked for (a
    review: both were dropped, so a retry landed on the console with an empty form)."""
    if form is None:
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        form = {"next": request.query_params.get("next", "") or asked}
    unavailable = _signin_form(request, "signin_unavailable", 503, form=form)
    unavailable.headers["Retry-After"] = "30"
    return unavailable


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await _form(request)
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(form.get("csrf", ""), expected):
        return _signin_form(request, "session_form_expired", 403, form=form)
    try:
        signed = _accounts(request).sign_in(form.get("email", ""), form.get("password", ""))
    except AccountLocked:
        return _signin_form(request, "locked", 429, form=form)
    except LogUnavailable:  # the account store (PostgreSQL) does not answer: a page, not JSON
        return _unavailable_page(request, form)
    if signed is None:
        return _signin_form(request, "wrong_credentials", 401, form=form)
    response = RedirectResponse(_next_page(form.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.session_secret,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(
        SIGNIN_CSRF_COOKIE,
        path="/signin",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    session, form = session_of(request), await _form(request)
    if session is None:
        return RedirectResponse("/signin", status_code=303)
    if not session.csrf_matches(form.get("csrf")):
        # A form from an earlier session (signed in again in another tab): not signed out by
        # another site's form, nor left wondering; asked again with this session's token.
        context = {**_page_context(session), "signout_again": True}
        return _render(request, "forbidden.html", context, 403)
    _accounts(request).sign_out(request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


def not_found_page(request: Request) -> HTMLResponse:
    """No page at this address: said in the reader's language, with the way back (signed in
    or not: the address says nothing of anyone's data)."""
    session = _signed_in(request)
    context = {**(_page_context(session) if session else {}), "missing": True}
    return _render(request, "forbidden.html", context, 404)


def _signed_in(request: Request) -> ActiveSession | None:
    """The live session, or None, also when the account store does not answer (a page that
    needs no one signed in still shows)."""
    try:
        return session_of(request)
    except Exception:  # noqa: BLE001 — the account store down: as if signed out
        return None


def _page_context(session: ActiveSession) -> dict[str, Any]:
    user = session.user
    return {
        "user": {"email": user.email, "tenant": user.tenant_id, "role": user.role},
        "csrf": session.csrf_token,
        "is_manager": user.role in MANAGERS,
        "is_admin": user.role == "admin",  # may erase a customer (`CAN_EXPORT_SUBJECT`)
    }


@router.get("/console")
def console(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return _to_signin(request)
    # The type filter offers each type the timeline words, named in the page's language (a
    # custom type can still be typed).
    types = type_titles(language_of(request))
    context = {**_page_context(session), "page": "console", "event_types": types}
    return _render(request, "console.html", context)


@router.get("/settings")
def settings_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return _to_signin(request)
    context = {**_page_context(session), "page": "settings", "detail": "forbidden_settings"}
    if session.user.role not in CAN_SET_SETTINGS:
        return _render(request, "forbidden.html", context, 403)
    zones = sorted(time_zones())
    return _render(request, "settings.html", {**context, "zones": zones, "weekdays": WEEKDAYS})


@router.get("/dashboard")
def dashboard(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return _to_signin(request)
    context = {**_page_context(session), "page": "dashboard"}
    if session.user.role not in MANAGERS:
        return _render(request, "forbidden.html", context, 403)
    return _render(request, "dashboard.html", context)

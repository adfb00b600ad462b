"""Authentication and role checks, shared by every HTTP service.

A caller is a machine with a Bearer key or a person with a session cookie (`kernel.accounts`): the
same roles and tenant rules apply to both. A cookie is sent by the browser on its own, so a request
that changes state on the cookie's strength must also carry the session's CSRF token in
`X-CSRF-Token`, which another site's page cannot read (synchronizer token pattern, S11).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBase, HTTPBearer
from fastapi.openapi.models import SecurityBase as SchemeModel
from fastapi.security.base import SecurityBase

from kernel.accounts import Accounts, ActiveSession
from kernel.api_errors import ApiError
from kernel.ports import ROLES, KeyStore, Principal

# The 401 every authenticated route of the query API documents (OpenAPI `responses`), said once.
UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, unknown or revoked credential"},
}
# Every route behind a credential, on its router: a route that says more overrides these.
AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    **UNAUTHENTICATED,
    403: {"description": "the credential's role may not use this route"},
}
# Which roles may do what. Ingest keys cannot read; admins can do everything.
CAN_INGEST = frozenset({"ingest", "admin"})
CAN_READ_CUSTOMERS = frozenset({"agent", "manager", "admin"})
CAN_READ_AGGREGATES = frozenset({"agent", "manager", "admin"})
# Raw survey answers (customer ids, verbatims) behind the dashboard: managers and admins (S02).
CAN_READ_ANSWERS = frozenset({"manager", "admin"})
# A customer's whole file at once (GDPR subject access export): admins only.
CAN_EXPORT_SUBJECT = frozenset({"admin"})
# Who read which customer's data (the access audit): admins only.
CAN_READ_AUDIT = frozenset({"admin"})
# The tenant's settings (its service calendar): admins only; every reader sees them.
CAN_SET_SETTINGS = frozenset({"admin"})
SESSION_COOKIE = "cem_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class DeclaredScheme(SecurityBase):
    """A credential as the OpenAPI document declares it (`components.securitySchemes`).

    A FastAPI security dependency that checks nothing: FastAPI lists the schemes a route depends
    on as that route's `security`, each an alternative. The checking stays with `require` and the
    Segment routes, so that every refusal keeps the one error shape (`kernel.api_errors`).
    """

    def __init__(self, scheme_name: str, model: SchemeModel) -> None:
        self.scheme_name = scheme_name
        self.model = model

    def __call__(self) -> None:
        return None


BEARER_KEY = DeclaredScheme(
    "bearerKey",
    HTTPBearer(
        description=(
            "An API key (`cem keys create --tenant T --role R`) as `Authorization: Bearer <key>`. "
            "Its tenant is the one whose data the request reads or writes; its role "
            f"({', '.join(ROLES)}) decides which routes it may use (403 otherwise)."
        )
    ),
)
SESSION = DeclaredScheme(
    "sessionCookie",
    APIKey.model_validate(
        {
            "in": APIKeyIn.cookie,
            "name": SESSION_COOKIE,
            "description": (
                "A person's console session, set when they sign in at `/signin`. A request that "
                "changes state on its strength must also send the session's CSRF token in "
                "`X-CSRF-Token` (403 `csrf_token_missing` otherwise). Served only by an app that "
                "signs people in; an `Authorization` header, when sent, is used instead."
            ),
        }
    ),
)
BASIC_KEY = DeclaredScheme(
    "basicKey",
    HTTPBase(
        scheme="basic",
        description=(
            "An ingest key as the user name (the password is not read; Segment's SDKs send "
            "their write key so, with an empty one). analytics.js may instead send it as the "
            "body's `writeKey` (an ingest key only)."
        ),
    ),
)


def without_sessions(app: FastAPI) -> None:
    """This app signs nobody in: its OpenAPI document offers no session cookie."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI keeps it (`app.openapi_schema`): trimmed once, in place
        for path in document.get("paths", {}).values():
            for operation in path.values():
                security = operation.get("security")
                if security:
                    operation["security"] = [s for s in security if SESSION.scheme_name not in s]
        document.get("components", {}).get("securitySchemes", {}).pop(SESSION.scheme_name, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        said = "missing bearer key" if not header.strip() else "not a Bearer key"
        raise ApiError(
            401,
            "unauthorized",
            f"{said}: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def require(allowed: frozenset[str]) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's principal, if its key is valid and its role allowed.

    The key store is the app's `state.keys`, set by the composition root.
    """

    def dependency(
        request: Request, _key: None = Depends(BEARER_KEY), _session: None = Depends(SESSION)
    ) -> Principal:
        principal = _principal(request)
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this")
        return principal

    return dependency


def _principal(request: Request) -> Principal:
    """The key's principal when an Authorization header is sent, else the session cookie's."""
    if "authorization" not in request.headers and SESSION_COOKIE in request.cookies:
        return _session_principal(request)
    keys: KeyStore = request.app.state.keys
    principal = keys.authenticate(_bearer(request))
    if principal is None:
        raise ApiError(
            401, "unauthorized", "unknown or revoked key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


# How long an answer of `still_authorised` is kept (as long as a valid key is, `ValidKeyCache`),
# and how long a store that failed is not asked again (its pool waits seconds per ask).
STILL_AUTHORISED_S = 1.0
STORE_BACK_OFF_S = 30.0


def still_authorised(request: Request) -> Callable[[], bool]:
    """Whether the request's credential still holds (its key not revoked, its session neither
    signed out nor expired), asked again later by what outlives the request: a live stream.
    An answer is kept `STILL_AUTHORISED_S`; a store that does not answer says nothing new
    (True, as the stream's other checks do) and is left alone `STORE_BACK_OFF_S`."""
    kept: list[tuple[float, bool]] = []

    def check() -> bool:
        now = time.monotonic()
        if kept and now < kept[0][0]:
            return kept[0][1]
        try:
            _principal(request)
            answer, until = True, now + STILL_AUTHORISED_S
        except ApiError:
            answer, until = False, float("inf")  # ended for good
        except Exception:  # noqa: BLE001 — the key or session store briefly unavailable
            answer, until = True, now + STORE_BACK_OFF_S
        kept[:] = [(until, answer)]
        return answer

    return check


def session_of(request: Request) -> ActiveSession | None:
    """The person signed in with this request's cookie, if the app has accounts and it is live."""
    accounts: Accounts | None = getattr(request.app.state, "accounts", None)
    secret = request.cookies.get(SESSION_COOKIE)
    if accounts is None or not secret:
        return None
    return accounts.session(secret)


def _session_principal(request: Request) -> Principal:
    session = session_of(request)
    if session is None:
        raise ApiError(
            401,
            "unauthorized",
            "session expired or signed out: sign in again",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method not in SAFE_METHODS and not session.csrf_matches(
        request.headers.get(CSRF_HEADER)
    ):
        raise ApiError(403, "csrf_token_missing", "send the session's X-CSRF-Token header")
    request.state.session = session  # who the person is, for the access audit (kernel.access_audit)
    return session.principal()

"""Authentication and role checks, shared by every HTTP service.

A caller is a machine with a Bearer key or a person with a session cookie (`kernel.accounts`): the
same roles and tenant rules apply to both. A cookie is sent by the browser on its own, so a request
that changes state on the cookie's strength must also carry the session's CSRF token in
`X-CSRF-Token`, which another site's page cannot read (synchronizer token pattern, S11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from kernel.accounts import Accounts, ActiveSession
from kernel.api_errors import ApiError
from kernel.ports import KeyStore, Principal

ROLES = ("ingest", "agent", "manager", "admin")
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


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "missing bearer key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def require(allowed: frozenset[str]) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's principal, if its key is valid and its role allowed.

    The key store is the app's `state.keys`, set by the composition root.
    """

    def dependency(request: Request) -> Principal:
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
        raise ApiError(401, "unauthorized", "session expired or signed out: sign in again")
    if request.method not in SAFE_METHODS and not session.csrf_matches(
        request.headers.get(CSRF_HEADER)
    ):
        raise ApiError(403, "csrf_token_missing", "send the session's X-CSRF-Token header")
    request.state.session = session  # who the person is, for the access audit (kernel.access_audit)
    return session.principal()

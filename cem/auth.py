"""Bearer-key authentication and role checks, shared by every HTTP service."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from cem.api_errors import ApiError
from cem.ports import KeyStore, Principal

ROLES = ("ingest", "agent", "manager", "admin")
# Which roles may do what. Ingest keys cannot read; admins can do everything.
CAN_INGEST = frozenset({"ingest", "admin"})
CAN_READ_CUSTOMERS = frozenset({"agent", "manager", "admin"})
CAN_READ_AGGREGATES = frozenset({"agent", "manager", "admin"})


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
        keys: KeyStore = request.app.state.keys
        principal = keys.authenticate(_bearer(request))
        if principal is None:
            raise ApiError(
                401,
                "unauthorized",
                "unknown or revoked key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this")
        return principal

    return dependency

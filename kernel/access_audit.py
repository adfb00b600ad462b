"""Recording every read of one customer's data: who, when, which customer, which resource.

A route that answers with one customer's data (timeline, live stream, profile, identity view,
alerts filtered to the customer, an export) calls `record_access` once it has resolved the
customer and read the data, before it answers. The store is the app's `state.access_audit`, set
by the composition root (SQLite beside the accounts when embedded, PostgreSQL when distributed).

Fail closed: when the store cannot take the entry, or the app has none, the read answers 503 in
the one error shape and returns nothing. An unaudited read of personal data must not happen; a
read that waits for the audit store to come back is the lesser harm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from kernel.accounts import ActiveSession
from kernel.api_errors import ApiError
from kernel.auth import UNAUTHENTICATED
from kernel.clock import SystemClock
from kernel.ports import AccessAudit, AccessEntry, Clock, Principal

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID = 200
# What every audited read can answer besides its own statuses, for its OpenAPI `responses`.
AUDITED_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    **UNAUTHENTICATED,
    403: {"description": "the credential's role may not read customer data"},
    503: {"description": "the access audit cannot record this read; retry later (Retry-After)"},
}


def audit_probe(app: FastAPI) -> dict[str, Callable[[], object]]:
    """The `/ready` probe of the app's store, that it could take an entry now (writing nothing):
    while it cannot, every read of a customer answers 503, so the replica is not ready. Without
    a store, a probe that says so."""

    def probe() -> object:
        audit: AccessAudit | None = getattr(app.state, "access_audit", None)
        if audit is None:
            raise LookupError("no access audit configured")
        audit.check_writable()
        return True

    return {"access_audit": probe}


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "audit_unavailable",
        "the access audit cannot record this read right now; retry later",
        headers={"Retry-After": "5"},
    )


def _actor(request: Request, principal: Principal) -> tuple[str, str, str]:
    """(kind, id, email): the person's user id and email for a session, else the key's id."""
    session: ActiveSession | None = getattr(request.state, "session", None)
    if session is not None:
        return "user", session.user.user_id, session.user.email
    return "key", principal.key_id, ""


def _clock(request: Request) -> Clock:
    clock: Clock | None = getattr(request.app.state, "clock", None)
    return clock or SystemClock()


def _request_id(request: Request) -> str:
    return request.headers.get(REQUEST_ID_HEADER, "").strip()[:MAX_REQUEST_ID]


def access_entry(
    request: Request, principal: Principal, customer_id: str, resource: str, requested_id: str
) -> AccessEntry:
    kind, actor_id, email = _actor(request, principal)
    return AccessEntry(
        entry_id=str(uuid.uuid4()),
        tenant_id=principal.tenant_id,
        at=_clock(request).now(),
        actor_kind=kind,
        actor_id=actor_id,
        actor_email=email,
        role=principal.role,
        customer_id=customer_id,
        requested_id=requested_id,
        resource=resource,
        request_id=_request_id(request),
    )


def record_access(
    request: Request,
    principal: Principal,
    customer_id: str,
    resource: str,
    requested_id: str | None = None,
) -> None:
    """Record that `principal` read `resource` of `customer_id` (the resolved id; `requested_id`
    is what was typed, the same by default); 503 ApiError when it cannot be recorded."""
    audit: AccessAudit | None = getattr(request.app.state, "access_audit", None)
    if audit is None:
        logger.error("no access audit configured: refusing a read of customer data")
        raise _unavailable()
    entry = access_entry(request, principal, customer_id, resource, requested_id or customer_id)
    try:
        audit.record(entry)
    except Exception as exc:  # any failure to record means the data must not go out (fail closed)
        logger.exception("access audit unavailable: refusing a read of customer data")
        raise _unavailable() from exc

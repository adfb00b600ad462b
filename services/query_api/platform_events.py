"""Events the query API itself puts on the log (a manager's alert action, an admin's erasure):
validated by the ingest's own `accept`, keyed and fingerprinted as ingest does, and published
through the app's publisher (sealing included when it is on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request

from kernel.api_errors import ApiError
from kernel.ports import Publisher, PublishStatus
from schemas.envelope import Event
from schemas.validate import InvalidEvent, accept
from services.ingest.batch import to_outgoing


def record_event(
    request: Request, raw: dict[str, Any], tenant_id: str, at: datetime, what: str
) -> Event:
    """Put `raw` on the log as the tenant's event; `what` names it in the errors. A value no
    event can carry is a 422; a server without a publisher, or a log that does not store the
    event, a 503 (a fresh event id is never a duplicate: only a log fault gets there)."""
    try:
        event, fingerprint = accept(raw, tenant_id, at)
    except InvalidEvent as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    publisher: Publisher | None = getattr(request.app.state, "publisher", None)
    if publisher is None:
        raise ApiError(503, "unavailable", f"this server cannot record {what}s")
    outgoing = to_outgoing(event, fingerprint, request.app.state.bucket_key)
    [published] = publisher.publish([outgoing])
    if published is not PublishStatus.accepted:
        raise ApiError(503, "unavailable", f"the {what} was not stored ({published.value})")
    return event

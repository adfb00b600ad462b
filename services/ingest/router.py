"""HTTP ingest: POST /v1/events, and the JSON Schemas of what it accepts.

The router relies only on `request.app.state`:
- `publisher` (kernel.ports.Publisher), `keys` (kernel.ports.KeyStore, read by kernel.auth),
  `ingest_settings` (kernel.settings.IngestSettings), `clock` (kernel.ports.Clock, `now()` in UTC),
  `bucket_key` (bytes: the key touchpoint record keys are bucketed with, `cem.platform_keys`);
- optionally `identity` (the resolver, whose rules say which identifiers are ignored) or
  `identity_rules` (services.identity.rules.IdentityRules, made from CEM_IDENTITY_RULES_FILE and
  CEM_DEFAULT_REGION on first use when neither is set), `telemetry` (kernel.telemetry.Telemetry) and `ingest_quota`
  (services.ingest.quota.QuotaLimiter), each created on first use when the composition root did not
  set it (the quota from CEM_INGEST_* settings).

Tenant comes only from the credential. A request answers 2xx only after the publisher returned,
i.e. after the log acknowledged its events; LogUnavailable propagates to the 503 handler.

A batch answers 200 with a result per item rather than 207: 207 is WebDAV's multistatus (an XML
body clients do not expect), the request itself was fully processed, and every item's outcome is
final and in the body. Only a batch with nothing but rejections answers 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kernel.api_errors import ApiError, error_body, naming_the_first
from kernel.auth import CAN_INGEST, require
from kernel.ports import LogUnavailable, Outgoing, Principal, Publisher, PublishStatus
from kernel.settings import IngestSettings
from kernel.telemetry import MeteredRoute, Telemetry, telemetry_of
from schemas.export import json_schemas
from services.identity.app_rules import identity_rules_of
from services.ingest.backlog import admitted
from services.ingest.batch import (
    BatchOutcome,
    ItemResult,
    ItemStatus,
    complete,
    prepare,
    safe_violation,
)
from services.ingest.body import JSON, NDJSON, read_submission
from services.ingest.quota import limiter_of

events_router = APIRouter(route_class=MeteredRoute, tags=["ingest"])
schemas_router = APIRouter(tags=["schemas"])


class Accepted(BaseModel):
    status: Literal["accepted", "duplicate"]
    event_id: str
    notes: list[dict[str, str]] | None = None


class ItemOut(BaseModel):
    index: int
    status: ItemStatus
    event_id: str | None = None
    errors: list[dict[str, str]] | None = None
    # Identifiers identity ignores (code identifier_ignored, path, why); the event is kept.
    notes: list[dict[str, str]] | None = None


class BatchOut(BaseModel):
    submitted: int
    accepted: int
    duplicates: int
    conflicts: int
    rejected: int
    results: list[ItemOut]


_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "description": 'One event, or a batch {"events": [...]}; see GET /v1/schemas',
                    "type": "object",
                }
            },
            NDJSON: {"schema": {"description": "One event per line", "type": "string"}},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": BatchOut, "description": "Batch or NDJSON: a result per item"},
    400: {"description": "Malformed JSON"},
    401: {"description": "Missing, unknown or revoked key"},
    403: {"description": "The key's role may not ingest"},
    409: {"description": "The event_id was already sent with a different payload"},
    413: {"description": "Body, event or batch over its limit"},
    415: {"description": "Unsupported content type"},
    422: {"description": "Invalid event, or a batch with every item rejected"},
    429: {
        "description": "Over the key's quota (`rate_limited`), or a bulk request that waited"
        " the longest it may for the pipeline to catch up (`pipeline_behind`); see Retry-After"
    },
    503: {"description": "The event log cannot acknowledge; see Retry-After"},
}


@events_router.post(
    "/v1/events",
    status_code=202,
    response_model=Accepted,
    responses=_ERRORS,
    openapi_extra=_REQUEST_BODY,
)
async def post_events(
    request: Request, principal: Principal = Depends(require(CAN_INGEST))
) -> JSONResponse:
    """Ingest one event, a batch, or NDJSON."""
    state = request.app.state
    settings: IngestSettings = state.ingest_settings
    submission = await read_submission(request, settings)
    # A bulk request waits here while the pipeline is behind (services/ingest/backlog.py).
    async with admitted(request.app, len(submission.items)):
        # Charged once let in: a request the gate refused (429) draws nothing.
        limiter_of(request.app).charge(principal.key_id, len(submission.items))
        # Validating 1,000 events takes a few hundred ms: off the event loop, so that other requests
        # (and the embedded app's live streams) keep being served meanwhile.
        prepared = await anyio.to_thread.run_sync(
            partial(
                prepare,
                submission.items,
                principal.tenant_id,
                state.clock.now(),
                settings.max_event_bytes,
                identity_rules_of(request.app).for_tenant(principal.tenant_id),
                bucket_key=state.bucket_key,
            )
        )
        statuses = await publish(state.publisher, prepared.outgoing, settings.publish_timeout_s)
    outcome = complete(prepared, statuses)
    count_outcome(telemetry_of(request.app), outcome)
    return single_response(outcome.results[0]) if submission.single else batch_response(outcome)


async def publish(
    publisher: Publisher, outgoing: Sequence[Outgoing], timeout_s: float
) -> list[PublishStatus]:
    """All of a request's valid events in one call, off the event loop, bounded in time.

    On timeout the publish may still complete later; the client's retry is then a duplicate, so the
    503 is safe (F01).
    """
    if not outgoing:
        return []
    try:
        with anyio.fail_after(timeout_s):
            return await anyio.to_thread.run_sync(
                publisher.publish, outgoing, abandon_on_cancel=True
            )
    except TimeoutError:
        # Say so: a client that gave up, or sent the events again under new ids, would find
        # them stored anyway (a review counted 196 of 200 stored after their 503).
        raise LogUnavailable(
            f"the event log did not acknowledge within {timeout_s:g} s; the events may still "
            "be stored: send the same request again (what was stored answers as a duplicate)"
        ) from None


def count_outcome(telemetry: Telemetry, outcome: BatchOutcome) -> None:
    telemetry.inc("cem_ingest_accepted_total", outcome.count(ItemStatus.accepted))
    telemetry.inc("cem_ingest_duplicates_total", outcome.count(ItemStatus.duplicate))
    telemetry.inc("cem_ingest_conflicts_total", outcome.count(ItemStatus.conflict))
    for result in outcome.results:
        # Counted once, when first stored: an SDK reads no note, so the operator counts them.
        if result.status is ItemStatus.accepted:
            for note in result.notes:
                telemetry.inc("cem_ingest_notes_total", code=note.code)
        if result.status is ItemStatus.rejected:
            telemetry.inc("cem_ingest_rejected_total", code=result.rejection_code)
            for violation in result.errors:
                telemetry.inc("cem_ingest_violations_total", code=violation.code)


def single_response(result: ItemResult) -> JSONResponse:
    """202 accepted/duplicate; 409 conflict; 413 too large; 422 with every violation."""
    details = [safe_violation(v) for v in result.errors]
    if result.status is ItemStatus.conflict:
        return _error(
            409, "conflict", f"event {result.event_id} conflicts with one sent before", details
        )
    if result.status is ItemStatus.rejected and result.rejection_code == "event_too_large":
        return _error(413, "payload_too_large", details[0]["message"], details)
    if result.status is ItemStatus.rejected:
        count = f"{len(details)} violation{'s' if len(details) != 1 else ''}"
        return _error(
            422, "invalid_event", naming_the_first(f"the event has {count}", details), details
        )
    body: dict[str, Any] = {"status": result.status.value, "event_id": result.event_id}
    if result.notes:
        body["notes"] = [safe_violation(v) for v in result.notes]
    return JSONResponse(body, 202)


def batch_response(outcome: BatchOutcome) -> JSONResponse:
    """200 with a result per item; 422 (same body, plus the error shape) if all were rejected."""
    body = outcome.as_dict()
    if not outcome.all_rejected:
        return JSONResponse(body, 200)
    details = [{**safe_violation(v), "index": r.index} for r in outcome.results for v in r.errors]
    error = error_body("all_rejected", "every event in the request was rejected", details)
    return JSONResponse({**error, **body}, 422)


def _error(status: int, code: str, message: str, details: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status)


@schemas_router.get("/v1/schemas")
def list_schemas() -> dict[str, list[dict[str, Any]]]:
    """The envelope and one schema per event type, each with its JSON Schema."""
    return {"schemas": [{"name": n, "schema": s} for n, s in json_schemas().items()]}


@schemas_router.get(
    "/v1/schemas/{name}",
    responses={404: {"description": "no schema of that name; GET /v1/schemas lists them"}},
)
def get_schema(name: str) -> dict[str, Any]:
    """One JSON Schema: `envelope` or an event type such as `survey.answered`."""
    schemas = json_schemas()
    if name not in schemas:
        raise ApiError(404, "not_found", f"no schema named {name!r}; GET /v1/schemas lists them")
    return schemas[name]


# What a composition root includes: both resources of the ingest service.
router = APIRouter()
router.include_router(events_router)
router.include_router(schemas_router)

"""A tenant's webhook dead letters, for its admins: what was kept and why, and a replay.

A verified delivery that does not map is kept and the provider gets its 200 (it would retry
otherwise), so nothing tells the integrator but this list. `GET /v1/channels/dead-letters`
answers each letter with its reason and every violated path and message, never the raw body
(it holds the provider's personal data; `cem dead-letters list` on the host reads the store).
`POST /v1/channels/dead-letters/replay` maps the tenant's pending letters again with the
channels' current settings and publishes them, as `cem dead-letters replay` does
(services/ingest/channels/replay.py): after a mapping is fixed over `PATCH /v1/channels/{id}`,
an admin finishes the job without a shell on the host. A letter that arrived before an erasure of
a subject it names is not published but settled `erased`, its body cleared (counted apart).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from kernel.auth import AUTHENTICATED, require
from kernel.channels import WebhookDeadLetter
from kernel.ports import Principal
from kernel.request_body import BODY_RESPONSES, parse_or_400, read_limited, validate_body
from kernel.settings import IngestSettings
from services.ingest.channels.access import CAN_CONFIGURE, channels_of, unknown_provider
from services.ingest.channels.registry import load_providers
from services.ingest.channels.replay import replay_webhooks

MAX_LISTED = 500
MAX_REPLAYED = 500  # letters one replay request re-runs, oldest first: ask again for the next
# No letter is started after this long in one request (each is a publish to the event log: a
# slow log must not hold the admin's request, or a proxy's, until it gives up on the answer).
REPLAY_SECONDS = 20.0
# Every answer a route here can give besides its 200 (the caller's key, the store, the input).
ANSWERS: dict[int | str, dict[str, Any]] = {
    **AUTHENTICATED,
    404: {"description": "this service has no channel store"},
    422: {"description": "an unknown provider or an invalid parameter, with every violated path"},
}
dead_letters_router = APIRouter(tags=["channels"], responses=ANSWERS)


def _known(name: str | None, path: str) -> None:
    if name is not None and name not in load_providers():
        raise unknown_provider(name, path)


def _described(letter: WebhookDeadLetter) -> dict[str, Any]:
    return {
        "dead_letter_id": letter.dead_letter_id,
        "channel_id": letter.channel_id,
        "provider": letter.provider,
        "received_at": letter.received_at.isoformat(),
        "status": letter.status,
        "attempts": letter.attempts,
        "reason": letter.reason,
        "violations": [
            {k: str(v.get(k, "")) for k in ("path", "code", "message")} for v in letter.violations
        ],
        "bytes": len(letter.body),
    }


@dead_letters_router.get("/v1/channels/dead-letters")
async def list_dead_letters(
    request: Request,
    principal: Principal = Depends(require(CAN_CONFIGURE)),
    provider: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[
        Literal["pending", "replayed", "erased", "all"],
        Query(
            description="pending (default): not replayed yet; replayed; erased: never "
            "replayed, a subject it names erased after it arrived (its body cleared); or all"
        ),
    ] = "pending",
    since: Annotated[AwareDatetime | None, Query(description="received at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> dict[str, Any]:
    """The tenant's webhook dead letters, oldest first: why each was kept (`reason`, and every
    violated `path` with its `message`), without the delivered body."""
    _known(provider, "query.provider")
    store = channels_of(request)
    letters = await anyio.to_thread.run_sync(
        lambda: store.dead_letters(
            provider=provider,
            tenant_id=principal.tenant_id,
            since=since,
            status=None if status == "all" else status,
            limit=limit + 1,  # one more than shown: whether there are more
        )
    )
    return {
        "dead_letters": [_described(letter) for letter in letters[:limit]],
        "more": len(letters) > limit,
    }


class ReplayIn(BaseModel):
    provider: str | None = Field(default=None, max_length=64)
    since: AwareDatetime | None = Field(default=None, description="received at or after")


class ReplayOut(BaseModel):
    """What became of the letters re-run (each counted once)."""

    restored: int = Field(description="letters whose events were stored now")
    duplicates: int = Field(description="letters whose events had all been stored before")
    still_failing: int = Field(
        description="letters that still do not (fully) map: pending, with their new reason"
    )
    erased: int = Field(
        description="letters not stored because a subject they name was erased after they "
        "arrived: settled `erased`, never replayed, their body cleared (with personal data "
        "sealed; without it there is no such check and this stays 0)"
    )
    unrecorded: int = Field(
        description="letters that now map, to nothing to store (a test order, a status the "
        "provider's module acknowledges without an event): settled as replayed"
    )
    next_since: AwareDatetime | None = Field(
        description="when letters were left (more than 500, or the request's time ran out): "
        "the first one's arrival; send it as `since` to go on (letters still failing are not "
        "re-run then); null: none left"
    )


@dead_letters_router.post(
    "/v1/channels/dead-letters/replay",
    responses={
        **BODY_RESPONSES,
        503: {"description": "the event log did not take the events; replay again (Retry-After)"},
    },
    response_model=ReplayOut,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ReplayIn.model_json_schema()}},
        }
    },
)
async def replay_dead_letters(
    request: Request, principal: Principal = Depends(require(CAN_CONFIGURE))
) -> ReplayOut:
    """Map the tenant's pending dead letters again (the oldest 500; a letter still failing stays
    pending, with its new reason) with the channels' current settings and store what now maps (a
    delivery stored before counts as a duplicate); answers how many were re-stored, were
    duplicates, still fail, or now map to nothing to store. A letter that maps but arrived
    before an erasure of a subject it names (a key destroyed since it arrived) is not stored: it
    is settled `erased`, its body cleared, and counted as `erased`. No letter is started after
    20 s; when letters were left, `next_since` says where to go on from."""
    raw = await read_limited(request, 4096)
    body = validate_body(ReplayIn, parse_or_400(raw)) if raw.strip() else ReplayIn()
    _known(body.provider, "body.provider")
    settings: IngestSettings = request.app.state.ingest_settings
    store = channels_of(request)
    report = await anyio.to_thread.run_sync(
        lambda: replay_webhooks(
            store,
            request.app.state.publisher,
            bucket_key=request.app.state.bucket_key,
            provider=body.provider,
            tenant_id=principal.tenant_id,
            since=body.since,
            max_event_bytes=settings.max_event_bytes,
            limit=MAX_REPLAYED,
            seconds=REPLAY_SECONDS,
        )
    )
    return ReplayOut(**asdict(report))  # the report's fields are the answer's

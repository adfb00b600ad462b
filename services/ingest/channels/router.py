"""Provider webhooks (`POST /v1/webhooks/{provider}/{channel_id}`) and channel admin (`/v1/channels`).

A webhook carries no API key: the channel in its URL names the tenant, and the provider's
signature under the channel's secret proves the sender. An unknown channel is 404, a bad signature
401 with nothing stored; a verified delivery is published, and whatever of it does not map is kept
as a dead letter *before* the provider gets the answer that stops its retries.

`request.app.state` needs `channels` (kernel.channels.ChannelStore) besides what the ingest router
needs (`publisher`, `keys`, `ingest_settings`, `clock`).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, require
from kernel.channels import ChannelConfig
from kernel.ports import Principal
from kernel.request_body import BODY_RESPONSES, parse_or_400, read_limited, validate_body
from kernel.secrets import SecretKeyError
from kernel.settings import IngestSettings
from kernel.telemetry import telemetry_of
from services.ingest.channels.access import CAN_CONFIGURE, channels_of, unknown_provider
from services.ingest.channels.base import Provider, WebhookRequest, refusal
from services.ingest.channels.dead_letters_api import dead_letters_router
from services.ingest.channels.intake import counts, dead_letter_of, map_delivery
from services.ingest.channels.registry import (
    BadSecret,
    BadSettings,
    check_secret,
    check_settings,
    load_providers,
    provider,
)
from services.ingest.router import publish

log = logging.getLogger(__name__)
ModelT = TypeVar("ModelT", bound=BaseModel)
webhooks_router = APIRouter(tags=["webhooks"])
channels_router = APIRouter(
    tags=["channels"],
    responses={
        **AUTHENTICATED,
        404: {"description": "no such channel (or this service has no channel store)"},
    },
)


def webhook_path(config: ChannelConfig) -> str:
    return f"/v1/webhooks/{config.provider}/{config.channel_id}"


def _not_found(name: str, channel_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no {name} channel {channel_id!r}")


async def _verified_channel(
    request: Request, name: str, channel_id: str
) -> tuple[ChannelConfig, str]:
    store = channels_of(request)
    config = await anyio.to_thread.run_sync(store.get, channel_id)
    if config is None or config.provider != name:
        raise _not_found(name, channel_id)
    try:
        secret = await anyio.to_thread.run_sync(store.secret, channel_id)
    except SecretKeyError as exc:
        # The platform key changed under the stored secrets: a server problem the provider's
        # retry may outlive once the key is restored, so 503 rather than a refusal.
        raise ApiError(503, "secret_unavailable", str(exc), headers={"Retry-After": "60"}) from None
    if secret is None:  # removed meanwhile
        raise _not_found(name, channel_id)
    return config, secret


def _delivery(request: Request, config: ChannelConfig, body: bytes) -> WebhookRequest:
    # Twilio signs the URL it called; behind a proxy that rewrites it, the channel says which.
    # The query is the one this request came with, whether or not the setting was written with
    # the callback's query (`…/{id}?queue=billing`, as copied from the console) or without.
    base = config.settings.get("public_url")
    url = (
        str(request.url)
        if not base
        else str(base).partition("?")[0] + (f"?{request.url.query}" if request.url.query else "")
    )
    headers = {k.lower(): v for k, v in request.headers.items()}
    return WebhookRequest(url, headers, body, request.app.state.clock.now())


WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "accepted: the provider's own acknowledgement (body and type per provider)"
    },
    400: {"description": "the client disconnected mid-body"},
    401: {
        "description": "the delivery is refused, the message saying why: a signature or signed "
        "timestamp header missing, the timestamp out of the allowed window, or the signature "
        "not verifying under the channel's secret"
    },
    404: {"description": "no such provider, or no channel of it with this id"},
    413: {"description": "the body is larger than the ingest accepts"},
    503: {"description": "the channel's secret or the log is unavailable; retry (Retry-After)"},
}


@webhooks_router.post(
    "/v1/webhooks/{name}/{channel_id}", status_code=200, responses=WEBHOOK_RESPONSES
)
async def receive_webhook(name: str, channel_id: str, request: Request) -> Response:
    """One provider delivery: verified, mapped, published; the unmappable kept as a dead letter."""
    adapter = provider(name)
    if adapter is None:
        raise ApiError(404, "not_found", f"no provider {name!r}; GET /v1/channels/providers")
    config, secret = await _verified_channel(request, name, channel_id)
    settings: IngestSettings = request.app.state.ingest_settings
    delivery = _delivery(request, config, await read_limited(request, settings.max_body_bytes))
    telemetry = telemetry_of(request.app)
    if not _verifies(adapter, delivery, secret):
        telemetry.inc("cem_ingest_rejected_total", code="bad_signature")
        why = refusal(adapter, delivery)
        raise ApiError(401, "bad_signature", why["message"], [why])
    # Validating a large batch (SendGrid posts hundreds of events) takes a while: off the loop.
    intake = await anyio.to_thread.run_sync(
        map_delivery,
        adapter,
        delivery,
        config,
        settings.max_event_bytes,
        request.app.state.bucket_key,
    )
    statuses = await publish(
        request.app.state.publisher, intake.outgoing, settings.publish_timeout_s
    )
    if not intake.complete:
        letter = dead_letter_of(adapter, delivery, config, intake)
        await anyio.to_thread.run_sync(channels_of(request).keep_dead_letter, letter)
        telemetry.inc("cem_ingest_rejected_total", code=f"webhook_{intake.reason}")
    if intake.complete and not intake.outgoing:
        # Verified and documented as no customer's activity (a Shopify test order, a SendGrid
        # `deferred`, a Chatwoot activity line): acknowledged, nothing to store, but counted.
        telemetry.inc("cem_webhook_unrecorded_total", provider=adapter.name)
    done = counts(statuses)
    telemetry.inc("cem_ingest_accepted_total", done["accepted"])
    telemetry.inc("cem_ingest_duplicates_total", done["duplicates"])
    ack = adapter.ack()
    return Response(ack.body, ack.status, media_type=ack.media_type)


def _verifies(adapter: Provider, delivery: WebhookRequest, secret: str) -> bool:
    """The provider's check; one that raises on what an unauthenticated sender chose to put in
    its headers (a stamp no clock can read) does not verify: 401, never a 500."""
    try:
        return adapter.verify(delivery, secret)
    except Exception as exc:  # noqa: BLE001 - the sender is not authenticated yet
        log.info("a %s signature check failed: %s: %s", adapter.name, type(exc).__name__, exc)
        return False


# A channel's configuration is small; the cap is checked after the key, before the body is read.
MAX_CONFIG_BYTES = 64 * 1024


async def _config_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request body as `model`, read only up to MAX_CONFIG_BYTES with the strict parser every
    route uses (duplicate keys refused); 422 with every violated path."""
    return validate_body(model, parse_or_400(await read_limited(request, MAX_CONFIG_BYTES)))


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}}
    return {"requestBody": {"required": True, **schema}}


class ChannelIn(BaseModel):
    provider: str = Field(min_length=1, max_length=64)
    secret: str = Field(min_length=1, max_length=10_000, description="never returned or logged")
    name: str = Field(default="", max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict)


def _described(config: ChannelConfig, request: Request) -> dict[str, Any]:
    path = webhook_path(config)
    return {
        **config.public(),
        "webhook_path": path,
        "webhook_url": str(request.base_url).rstrip("/") + path,
    }


# Public (the list holds no tenant's data), so on a router without the credential's answers.
@webhooks_router.get("/v1/channels/providers", tags=["channels"])
def list_providers() -> dict[str, list[dict[str, str]]]:
    """The providers a channel can be configured for, and what each one's secret is."""
    return {
        "providers": [{"provider": n, "secret": p.secret_help} for n, p in load_providers().items()]
    }


@channels_router.post(
    "/v1/channels",
    status_code=201,
    openapi_extra=_body_schema(ChannelIn),
    responses=BODY_RESPONSES,
)
async def add_channel(
    request: Request, principal: Principal = Depends(require(CAN_CONFIGURE))
) -> dict[str, Any]:
    """Configure a provider channel for the key's tenant; answers the webhook URL to give it."""
    body = await _config_body(request, ChannelIn)
    if provider(body.provider) is None:
        raise unknown_provider(body.provider, "body.provider")
    settings = _checked(provider(body.provider), body.settings)
    _check_secret(provider(body.provider), body.secret)
    store = channels_of(request)
    config = await anyio.to_thread.run_sync(
        lambda: store.add(
            principal.tenant_id, body.provider, body.secret, name=body.name, settings=settings
        )  # fmt: skip
    )
    return _described(config, request)


def _checked(adapter: Provider | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as the provider reads them; 422 naming the field it cannot use."""
    if adapter is None:
        return settings
    try:
        return check_settings(adapter, settings)
    except BadSettings as exc:
        detail = {"path": f"body.settings.{exc.path}".rstrip("."), "code": "invalid_settings",
                  "message": exc.message}  # fmt: skip
        raise ApiError(422, "invalid_settings", str(exc), [detail]) from None


def _check_secret(adapter: Provider | None, secret: str) -> None:
    """422 naming what makes the secret unusable (never the secret itself)."""
    try:
        if adapter is not None:
            check_secret(adapter, secret)
    except BadSecret as exc:
        detail = {"path": "body.secret", "code": "invalid_secret", "message": str(exc)}
        raise ApiError(422, "invalid_secret", str(exc), [detail]) from None


@channels_router.get("/v1/channels")
async def list_channels(
    request: Request, principal: Principal = Depends(require(CAN_CONFIGURE))
) -> dict[str, list[dict[str, Any]]]:
    """The tenant's channels, without their secrets."""
    found = await anyio.to_thread.run_sync(channels_of(request).list, principal.tenant_id)
    return {"channels": [_described(c, request) for c in found]}


class SettingsIn(BaseModel):
    settings: dict[str, Any]


@channels_router.patch(
    "/v1/channels/{channel_id}", openapi_extra=_body_schema(SettingsIn), responses=BODY_RESPONSES
)
async def update_channel(
    channel_id: str, request: Request, principal: Principal = Depends(require(CAN_CONFIGURE))
) -> dict[str, Any]:
    """Replace a channel's settings (e.g. Typeform's question mapping), then replay its dead
    letters with `cem dead-letters replay`."""
    body = await _config_body(request, SettingsIn)
    store = channels_of(request)
    found = await anyio.to_thread.run_sync(store.get, channel_id)
    if found is None or found.tenant_id != principal.tenant_id:
        raise ApiError(404, "not_found", f"no channel {channel_id!r} for this tenant")
    settings = _checked(provider(found.provider), body.settings)
    config = await anyio.to_thread.run_sync(
        store.update_settings, principal.tenant_id, channel_id, settings
    )
    if config is None:
        raise ApiError(404, "not_found", f"no channel {channel_id!r} for this tenant")
    return _described(config, request)


@channels_router.delete("/v1/channels/{channel_id}", status_code=204)
async def remove_channel(
    channel_id: str, request: Request, principal: Principal = Depends(require(CAN_CONFIGURE))
) -> Response:
    """Stop accepting a channel's webhooks (its dead letters stay)."""
    store = channels_of(request)
    if not await anyio.to_thread.run_sync(store.remove, principal.tenant_id, channel_id):
        raise ApiError(404, "not_found", f"no channel {channel_id!r} for this tenant")
    return Response(status_code=204)


router = APIRouter()
router.include_router(webhooks_router)
router.include_router(dead_letters_router)  # the tenant's letters, for its admin
router.include_router(channels_router)

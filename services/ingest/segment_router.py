"""The Segment-compatible HTTP Tracking API: POST /v1/batch, /v1/track, /v1/identify, /v1/page,
/v1/screen, /v1/group and /v1/alias, on the ingest's host and port (an SDK is configured with the
host alone).

Auth is an ingest key, as Segment's SDKs send a write key (HTTP Basic, the key as user name and an
empty password) or as a Bearer token; a request without an Authorization header may carry it as the
body's `writeKey`, as Segment's browser library (analytics.js) does: it posts `text/plain` to the
short paths `/v1/t`, `/v1/p`, `/v1/i`, `/v1/a`, `/v1/g` (and `/v1/b` when batching), which are the
same calls, from the shop's own origin (so these paths answer cross-origin requests, CORS). Segment's limits: 32 KB per call, 500 KB per batch (and per
message inside it), a 413 as soon as reading passes them, also after gunzipping. A call answers
Segment's `{"success": true}` with our status, event_id and notes beside it; a batch adds our
result per message, so the valid ones are stored and each invalid one is named (index and path)
in our error shape. Everything else — validation,
idempotency, the log's acknowledgement before a 2xx — is the native ingest's (router.py).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from functools import partial
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.api_errors import ApiError, error_body
from kernel.auth import BASIC_KEY, BEARER_KEY, CAN_INGEST
from kernel.ports import KeyStore, Principal
from kernel.request_body import parse_or_400
from kernel.settings import IngestSettings
from kernel.telemetry import MeteredRoute, telemetry_of
from services.identity.app_rules import identity_rules_of
from services.ingest.backlog import admitted
from services.ingest.batch import ItemResult, ItemStatus, complete
from services.ingest.body import MalformedJson, charset_of, parse_json, read_limited
from services.ingest.quota import limiter_of
from services.ingest.router import batch_response, count_outcome, publish, single_response
from services.ingest.segment_config import InvalidMappings, SegmentSettings, segment_settings_of
from services.ingest.segment_mapping import KINDS, BatchDefaults
from services.ingest.segment_prepare import prepare_messages

segment_router = APIRouter(route_class=MeteredRoute, tags=["segment"])
_CONTENT_TYPES = ("application/json", "text/plain", "")  # analytics.js beacons send text/plain
_UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="cem", Bearer'}


def install_segment(app: FastAPI, settings: SegmentSettings | None = None) -> None:
    """Mount the routes and load CEM_SEGMENT_* now: a bad setting or mappings file stops the
    start-up with one line naming it (SystemExit), not a traceback or a failing request later."""
    try:
        found = settings or SegmentSettings()
        found.mappings  # noqa: B018 - validates the file
    except (InvalidMappings, ValidationError) as exc:
        raise SystemExit(f"cem: {exc}") from None
    app.state.segment_settings = found
    app.include_router(segment_router)
    app.add_middleware(SegmentCors)


class SegmentCors:
    """CORS on the Segment paths alone (Starlette's middleware, scoped): a shop's pages post
    there from their own origin, with the key in a header or the body, never a cookie. The rest
    of the API (the console's session cookie) stays same-origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = _cors(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SEGMENT_PATHS:
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.cors(scope, receive, _with_segment_error(sending))
        except Exception:
            # A bug: the page (and the SDK) still read a JSON answer it may read; the server's
            # own handler then logs the traceback (it sees the answer sent, and sends nothing).
            if not started:
                body = error_body("internal_error", "the server failed; retry later", [])
                await _cors(_answer(500, body))(scope, receive, send)
            raise


def _cors(app: ASGIApp) -> CORSMiddleware:
    return CORSMiddleware(
        app,
        allow_origins=["*"],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
        max_age=600,
    )


def _answer(status: int, body: dict[str, Any]) -> ASGIApp:
    """An ASGI app answering `body` (with Segment's top-level code and message)."""
    content = _segment_error_body(orjson.dumps(body))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(content)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return app


def _with_segment_error(send: Send) -> Send:
    """An error answer of a Segment path carries `code` and `message` at the top too, beside our
    one error shape: Segment's SDKs read them there (the Python one, not finding them, logged
    "Unknown error" and the status, never the reason)."""
    start: dict[str, Any] = {}

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            start.update(message)  # held until the body is known
            return
        if message["type"] == "http.response.body" and start:
            body = message.get("body", b"")
            if message.get("more_body"):  # an error body comes whole; never more than one part
                await send(start)
                start.clear()
                await send(message)
                return
            plain = (b"content-type", b"text/plain; charset=utf-8") in start["headers"]
            body = _plain_error_body(body) if plain else _segment_error_body(body)
            dropped = (b"content-length", b"content-type") if plain else (b"content-length",)
            headers = [(k, v) for k, v in start["headers"] if k.lower() not in dropped]
            headers.append((b"content-length", str(len(body)).encode()))
            if plain:
                headers.append((b"content-type", b"application/json"))
            await send({**start, "headers": headers})
            start.clear()
            await send({**message, "body": body})
            return
        await send(message)

    return sending


def _plain_error_body(body: bytes) -> bytes:
    """A plain-text refusal (Starlette's CORS middleware refusing a preflight: "Disallowed CORS
    method") in the one error shape, Segment's `code` and `message` at the top too."""
    message = body.decode("utf-8", "replace").strip() or "the request was refused"
    return orjson.dumps({"code": "bad_request", "message": message,
                         **error_body("bad_request", message)})  # fmt: skip


def _segment_error_body(body: bytes) -> bytes:
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    error = found.get("error") if isinstance(found, dict) else None
    if not isinstance(error, dict):
        return body
    return orjson.dumps({"code": error.get("code"), "message": error.get("message"), **found})


def segment_principal(
    request: Request, _basic: None = Depends(BASIC_KEY), _key: None = Depends(BEARER_KEY)
) -> Principal | None:
    """The ingest key's principal, from Basic (key as user name) or Bearer, before any body; None
    when the request has no Authorization header (the key may be the body's `writeKey`:
    `body_principal`)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    return _principal(request, _presented_key(header))


def body_principal(request: Request, principal: Principal | None, data: bytes) -> Principal:
    """The principal of the header's key, else of the body's `writeKey` (analytics.js), read
    from the body's bytes with a plain fast parser before the strict one (which a request that
    names no key it may use never costs). A key in a shop's pages is anybody's to read: only an
    ingest key is taken there, never an admin's."""
    if principal is not None:
        return principal
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        # No key can be read from it: say what is wrong with the body (as with a key in the
        # header), not that the key is missing. The strict parser names where.
        body = parse_or_400(data)
    key = body.get("writeKey") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key.strip():
        message = (
            "missing key: send the ingest key as the Basic user name (empty password), Bearer, "
            "or the body's writeKey"
        )
        raise ApiError(401, "unauthorized", message, headers=_UNAUTHORIZED)
    found = _principal(request, key.strip())
    if found.role != "ingest":
        message = f"a writeKey in a page must be an ingest key, not an {found.role!r} one"
        raise ApiError(403, "forbidden", message)
    return found


def _principal(request: Request, key: str) -> Principal:
    keys: KeyStore = request.app.state.keys
    principal = keys.authenticate(key)
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked key", headers=_UNAUTHORIZED)
    if principal.role not in CAN_INGEST:
        raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this")
    return principal


def _presented_key(header: str) -> str:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            user, _, _ = (
                base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        if user:
            return user
    message = "missing key: send the ingest key as the Basic user name (empty password) or Bearer"
    raise ApiError(401, "unauthorized", message, headers=_UNAUTHORIZED)


async def read_segment_body(request: Request, limit: int) -> bytes:
    """The body's bytes within `limit`, before and after gunzipping; 413 or 415 else (and 400
    for a broken gzip). `segment_json` parses them."""
    media, _, params = (request.headers.get("content-type") or "").partition(";")
    media = media.strip().lower()
    if media not in _CONTENT_TYPES:
        raise ApiError(415, "unsupported_media_type", f"send application/json, not {media!r}")
    charset = charset_of(params)  # as /v1/events: a body said to be Latin-1 is not read as UTF-8
    if charset not in (None, "utf-8", "utf8"):
        message = f"charset {charset!r} is not supported: JSON bodies are UTF-8"
        raise ApiError(415, "unsupported_media_type", message)
    try:
        data = await read_limited(request, limit)
    except ApiError as exc:
        raise _too_large(limit) if exc.status == 413 else exc from None
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding == "gzip":
        data = gunzip_within(data, limit)
    elif encoding != "identity":
        raise ApiError(415, "unsupported_media_type", f"content encoding {encoding!r}: send gzip")
    return data


def segment_json(data: bytes) -> Any:
    """The body parsed by the ingest's strict parser (duplicate keys refused); 400 else."""
    try:
        return parse_json(data)
    except MalformedJson as exc:
        raise ApiError(400, "malformed_json", f"malformed JSON: {exc}") from None


def gunzip_within(data: bytes, limit: int) -> bytes:
    """The gunzipped body, refused as soon as it passes `limit` bytes (a gzip bomb stops there)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "malformed_gzip", f"the gzip body cannot be read: {exc}") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof or inflater.unused_data:
        # Bytes after the first gzip member would otherwise be dropped without a word.
        raise ApiError(400, "malformed_gzip", "the gzip body is truncated or has trailing data")
    return body


def _too_large(limit: int) -> ApiError:
    message = f"the body exceeds Segment's limit of {limit} bytes for this call"
    return ApiError(413, "payload_too_large", message)


# --- routes -----------------------------------------------------------------------------------
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": 'Stored (or a duplicate): {"success": true} with status, event_id and any'
        " notes; a batch adds a result each"
    },
    400: {"description": "Malformed JSON or gzip"},
    401: {"description": "Missing, unknown or revoked key (header, or the body's writeKey)"},
    403: {
        "description": "The key's role may not ingest, or a body's writeKey is not an ingest key"
    },
    409: {"description": "The messageId was already stored with a different message"},
    413: {"description": "Over Segment's limits: 32 KB per call, 500 KB per batch"},
    415: {"description": "Not JSON, or an encoding other than gzip"},
    422: {"description": "Invalid message, or a batch whose every message is invalid"},
    429: {
        "description": "Over the key's quota (`rate_limited`), or a bulk request that waited"
        " the longest it may for the pipeline to catch up (`pipeline_behind`); see Retry-After"
    },
    503: {"description": "The event log cannot acknowledge; see Retry-After"},
}


def _body(description: str) -> dict[str, Any]:
    # analytics.js sends the same JSON as text/plain (a request without a CORS preflight).
    schema = {"type": "object", "description": description}
    content = {media: {"schema": schema} for media in ("application/json", "text/plain")}
    return {"requestBody": {"required": True, "content": content}}


async def post_batch(
    request: Request, principal: Principal | None = Depends(segment_principal)
) -> JSONResponse:
    """Segment's batch: `{"batch": [messages], "sentAt", "context"}`, each message with a `type`."""
    settings = segment_settings_of(request.app)
    data = await read_segment_body(request, settings.max_batch_bytes)
    principal = body_principal(request, principal, data)
    body = segment_json(data)
    messages, defaults = batch_of(body)
    return await ingest_messages(request, principal, messages, None, defaults)


# `/v1/b`: analytics.js's batching path (`{"writeKey", "batch", "sentAt"}`).
for _path in ("/v1/batch", "/v1/b"):
    segment_router.add_api_route(
        _path,
        post_batch,
        methods=["POST"],
        responses=_RESPONSES,
        name="segment_batch" if _path == "/v1/batch" else "segment_batch_short",
        openapi_extra=_body('{"batch": [messages], "sentAt"?, "context"?}; gzip accepted'),
    )


def batch_of(body: Any) -> tuple[list[Any], BatchDefaults]:
    """The messages of a batch body and what its top level gives each of them."""
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        problem = {"code": "list_type", "message": "must be a list of messages", "path": "batch"}
        raise ApiError(422, "invalid_batch", 'the body is not {"batch": [...]}', [problem])
    if not body["batch"]:
        raise ApiError(422, "empty_batch", "the batch carries no messages")
    context = body.get("context")
    defaults = BatchDefaults(body.get("sentAt"), context if isinstance(context, dict) else {})
    return body["batch"], defaults


async def ingest_messages(
    request: Request,
    principal: Principal,
    messages: list[Any],
    kind: str | None,
    defaults: BatchDefaults = BatchDefaults(),
) -> JSONResponse:
    """Map, validate and publish, then answer as Segment does, with our per-message results."""
    state = request.app.state
    ingest: IngestSettings = state.ingest_settings
    segment = segment_settings_of(request.app)
    async with admitted(request.app, len(messages)):
        # Charged once let in: a request the gate refused (429) draws nothing.
        limiter_of(request.app).charge(principal.key_id, len(messages))
        prepared = await anyio.to_thread.run_sync(
            partial(
                prepare_messages,
                messages,
                kind,
                principal.tenant_id,
                state.clock.now(),
                segment.mappings.for_tenant(principal.tenant_id),
                (segment.max_call_bytes, ingest.max_event_bytes),
                defaults,
                identity_rules_of(request.app).for_tenant(principal.tenant_id),
                bucket_key=state.bucket_key,
            )
        )
        statuses = await publish(state.publisher, prepared.outgoing, ingest.publish_timeout_s)
    outcome = complete(prepared, statuses)
    count_outcome(telemetry_of(request.app), outcome)
    if kind is not None:
        return segment_single(outcome.results[0])
    answer = batch_response(outcome)
    if answer.status_code == 200:
        answer = JSONResponse({"success": True, **outcome.as_dict()}, 200)
    return answer


def segment_single(result: ItemResult) -> JSONResponse:
    """Segment's 200 `{"success": true}` for a stored (or duplicate) message, with our status,
    event_id and notes beside it (a batch item's), else the native answer to one event (409, 413,
    422 in our error shape)."""
    if result.status in (ItemStatus.accepted, ItemStatus.duplicate):
        found = result.as_dict()
        del found["index"]  # one message: there is no list to point into
        return JSONResponse({"success": True, **found}, 200)
    return single_response(result)


def _single_route(kind: str) -> None:
    async def post_one(
        request: Request, principal: Principal | None = Depends(segment_principal)
    ) -> JSONResponse:
        settings = segment_settings_of(request.app)
        data = await read_segment_body(request, settings.max_call_bytes)
        principal = body_principal(request, principal, data)
        message = segment_json(data)
        return await ingest_messages(request, principal, [message], kind)

    post_one.__doc__ = f"Segment's `{kind}` call: one message."
    post_one.__name__ = f"post_{kind}"
    # analytics.js posts each call to the kind's first letter (`/v1/t` for a track).
    for path in (f"/v1/{kind}", f"/v1/{kind[0]}"):
        segment_router.add_api_route(
            path,
            post_one,
            methods=["POST"],
            responses=_RESPONSES,
            name=f"segment_{kind}" if path.endswith(kind) else f"segment_{kind}_short",
            openapi_extra=_body(f"one Segment {kind} message (Segment's HTTP Tracking API)"),
        )


for _kind in KINDS:
    _single_route(_kind)

# analytics.js's own usage telemetry: small counters of the library's health, nothing of a
# customer's. Accepted and discarded, with CORS like the paths it sends beside: refused, it logged
# a CORS error in the shop's page and stopped its telemetry (found by running the library).
METRICS_LIMIT = 32 * 1024


@segment_router.post(
    "/v1/m",
    name="segment_library_metrics",
    responses={413: {"description": "over 32 KB"}},
    openapi_extra=_body("analytics.js's usage metrics; read and discarded, no key needed"),
)
async def post_library_metrics(request: Request) -> JSONResponse:
    """analytics.js's usage metrics (`/v1/m`): read within 32 KB, then discarded; nothing of
    a customer's is in them, and nothing is stored."""
    await read_limited(request, METRICS_LIMIT)
    return JSONResponse({"success": True})


# Every path above: what a shop's pages may post to from their own origin (CORS).
SEGMENT_PATHS = frozenset(
    route.path for route in segment_router.routes if isinstance(route, APIRoute)
)

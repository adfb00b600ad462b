"""Reading an ingest body: content type, size limits, strict JSON, and splitting into raw items.

The body is read incrementally and reading stops as soon as it passes `max_body_bytes` (B04), so
neither a lying Content-Length nor a chunked body makes the service buffer more than the limit.
A request that fails here fails as a whole, before anything is published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import Request
from starlette.requests import ClientDisconnect

from cem.api_errors import ApiError
from cem.settings import IngestSettings
from schemas.validate import Violation
from services.ingest.batch import Unparseable, printable

JSON = "application/json"
NDJSON = "application/x-ndjson"
SUPPORTED = (JSON, NDJSON)
# A longer integer literal cannot be a valid field value, and converting one costs quadratic time.
_MAX_INT_DIGITS = 40


class MalformedJson(ValueError):
    """The bytes are not one strict JSON value; the message says where and why."""


@dataclass(frozen=True)
class Submission:
    """The raw items of one request. `single` is a lone event (not a batch or NDJSON)."""

    single: bool
    items: list[Any]


async def read_submission(request: Request, settings: IngestSettings) -> Submission:
    """Check the content type, read the body within the limit, and split it into raw items."""
    media = media_type(request.headers.get("content-type"), request.headers.get("content-encoding"))
    data = await read_limited(request, settings.max_body_bytes)
    return parse_submission(media, data, settings.max_batch_events)


def media_type(content_type: str | None, content_encoding: str | None = None) -> str:
    """The supported media type of a request, else a 415 naming what is supported."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media not in SUPPORTED:
        _unsupported(f"content type {media or '(none)'!r} is not supported")
    charset = _param(params, "charset")
    if charset not in (None, "utf-8", "utf8"):
        _unsupported(f"charset {charset!r} is not supported: JSON bodies are UTF-8")
    if (content_encoding or "identity").strip().lower() != "identity":
        _unsupported("compressed bodies (Content-Encoding) are not supported")
    return media


def _param(params: str, name: str) -> str | None:
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"').lower()
    return None


def _unsupported(message: str) -> NoReturn:
    supported = ", ".join(SUPPORTED)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"{printable(message)}; send {supported}",
        headers={"Accept-Post": supported},
    )


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk; a 413 as soon as it passes `limit` bytes.

    A declared Content-Length over the limit is refused before reading. A smaller one is not
    trusted: the count of bytes actually received is what stops the read.
    """
    if _declared_length(request) > limit:
        _too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                _too_large(limit)
            body += chunk
    except ClientDisconnect:
        raise ApiError(400, "incomplete_body", "the client disconnected mid-body") from None
    return bytes(body)


def _declared_length(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else 0


def _too_large(limit: int) -> NoReturn:
    raise ApiError(
        413, "payload_too_large", f"the body exceeds the limit of {limit} bytes (max_body_bytes)"
    )


def parse_submission(media: str, data: bytes, max_events: int) -> Submission:
    """Split a body into raw items. A JSON body that is not JSON is a 400; an NDJSON line that is
    not JSON becomes an `Unparseable` item."""
    if media == NDJSON:
        submission = Submission(single=False, items=_ndjson_items(data, max_events))
    else:
        submission = _json_submission(_parse_or_400(data))
    _check_count(len(submission.items), max_events)
    return submission


def _parse_or_400(data: bytes) -> Any:
    try:
        return parse_json(data)
    except MalformedJson as exc:
        raise ApiError(400, "malformed_json", f"malformed JSON: {exc}") from None


def _json_submission(value: Any) -> Submission:
    # EventIn has no `events` field, so an object carrying one can only be a batch.
    if not (isinstance(value, dict) and "events" in value):
        return Submission(single=True, items=[value])
    problems = [
        {
            "code": "extra_forbidden",
            "message": "a batch has only the field 'events'",
            "path": printable(name),
        }
        for name in sorted(value)
        if name != "events"
    ]
    if not isinstance(value["events"], list):
        problems.append(
            {"code": "list_type", "message": "must be a list of events", "path": "events"}
        )
    if problems:
        raise ApiError(422, "invalid_batch", 'the batch is not {"events": [...]}', problems)
    return Submission(single=False, items=value["events"])


def _check_count(count: int, max_events: int) -> None:
    if count == 0:
        raise ApiError(422, "empty_batch", "the request carries no events")
    if count > max_events:
        raise ApiError(
            413,
            "too_many_events",
            f"a request may carry at most {max_events} events (max_batch_events), not {count}",
        )


def _ndjson_items(data: bytes, max_events: int) -> list[Any]:
    numbered = [(n, line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    # Count before parsing, so an over-long body is refused without parsing every line.
    _check_count(len(numbered), max_events)
    return [_ndjson_item(n, line) for n, line in numbered]


def _ndjson_item(line_number: int, line: bytes) -> Any:
    try:
        return parse_json(line)
    except MalformedJson as exc:
        message = f"line {line_number} is not JSON: {exc}"
        return Unparseable(Violation("malformed_json", message, "$"))


def parse_json(data: bytes) -> Any:
    """One strict JSON value: UTF-8, no NaN/Infinity, no duplicate keys, bounded integer literals.

    Lone surrogates written as `\\ud800` escapes are kept, so validation can name their path.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise MalformedJson("nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key are read differently by different parsers: refuse the ambiguity.
    found = dict(pairs)
    if len(found) != len(pairs):
        raise MalformedJson(f"duplicate key {_first_duplicate(pairs)!r} in an object")
    return found


def _first_duplicate(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("called only when a key repeats")


def _no_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not valid JSON")


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
        raise MalformedJson(f"integer literal longer than {_MAX_INT_DIGITS} digits")
    return int(literal)


# Built once: json.loads with hooks builds a decoder (and its scanner) for every call.
_STRICT = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_int=_bounded_int
)

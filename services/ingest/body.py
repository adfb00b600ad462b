"""Reading an ingest body: content type, size limits, strict JSON, and splitting into raw items.

The body is read incrementally and reading stops as soon as it passes `max_body_bytes` (B04), so
neither a lying Content-Length nor a chunked body makes the service buffer more than the limit.
A request that fails here fails as a whole, before anything is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import Request

from kernel.api_errors import ApiError
from kernel.request_body import MalformedJson, parse_json, parse_or_400, read_limited
from kernel.settings import IngestSettings
from schemas.validate import Violation
from services.ingest.batch import Unparseable, printable

JSON = "application/json"
NDJSON = "application/x-ndjson"
SUPPORTED = (JSON, NDJSON)


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
    charset = charset_of(params)
    if charset not in (None, "utf-8", "utf8"):
        _unsupported(f"charset {charset!r} is not supported: JSON bodies are UTF-8")
    if (content_encoding or "identity").strip().lower() != "identity":
        _unsupported("compressed bodies (Content-Encoding) are not supported")
    return media


def charset_of(params: str) -> str | None:
    """The `charset` of a Content-Type's parameters (after its `;`), lower case; None without."""
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
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


def parse_submission(media: str, data: bytes, max_events: int) -> Submission:
    """Split a body into raw items. A JSON body that is not JSON is a 400; an NDJSON line that is
    not JSON becomes an `Unparseable` item."""
    if media == NDJSON:
        submission = Submission(single=False, items=_ndjson_items(data, max_events))
    else:
        submission = _json_submission(parse_or_400(data))
    _check_count(len(submission.items), max_events)
    return submission


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

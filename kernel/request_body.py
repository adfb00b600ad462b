"""Reading a JSON request body safely, for every write route (RELIABILITY B04, S09).

- `read_limited` reads the body chunk by chunk and stops with a 413 as soon as it passes the limit,
  so neither a lying Content-Length nor a chunked body makes a service buffer more than that.
- `parse_json` is the one strict JSON parser: UTF-8, no NaN/Infinity, no duplicate keys, bounded
  integer literals.
- `json_body(Model, limit)` is a FastAPI dependency doing both, then validating the model. Declared
  after the route's credential dependency, it runs after the key is checked: FastAPI reads a plain
  pydantic body parameter before any dependency, so a keyless caller could make it read anything.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from kernel.api_errors import ApiError, naming_the_first

M = TypeVar("M", bound=BaseModel)
# A longer integer literal cannot be a valid field value, and converting one costs quadratic time.
_MAX_INT_DIGITS = 40


class MalformedJson(ValueError):
    """The bytes are not one strict JSON value; the message says where and why."""


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


# What a route that reads a JSON body can answer because of the body (OpenAPI `responses`).
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON (or duplicate keys), or the client left mid-body"},
    413: {"description": "the body is larger than the route accepts"},
    422: {"description": "the body or a parameter is invalid, with every violated path"},
}


def _declared_length(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else 0


def _too_large(limit: int) -> NoReturn:
    raise ApiError(
        413, "payload_too_large", f"the body exceeds the limit of {limit} bytes (max_body_bytes)"
    )


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


def json_body(
    model: type[M], limit: int, *, optional: bool = False
) -> Callable[[Request], Awaitable[M | None]]:
    """A dependency: the request's JSON body, read within `limit` bytes, parsed strictly and
    validated as `model`; 413, 400 or 422 (with every violated path, `body.…` as FastAPI names
    them for a plain body parameter) in the one error shape. With `optional`, an empty body is
    None."""

    async def dependency(request: Request) -> M | None:
        data = await read_limited(request, limit)
        if optional and not data.strip():
            return None
        return validate_body(model, parse_or_400(data))

    return dependency


def validate_body(model: type[M], value: Any) -> M:
    """`value` as `model`, else a 422 listing every violated path."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        details = [
            {"code": e["type"], "message": e["msg"], "path": _dotted(("body", *e["loc"]))}
            for e in exc.errors(include_url=False)
        ]
        # As for any other invalid request (kernel.api_errors).
        message = naming_the_first("the request has invalid parameters", details)
        raise ApiError(422, "invalid_request", message, details) from None


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route reading `json_body(model, ...)`, which FastAPI cannot
    see through a dependency."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def parse_or_400(data: bytes) -> Any:
    """One strict JSON value, else a 400 saying where it is malformed."""
    try:
        return parse_json(data)
    except MalformedJson as exc:
        raise ApiError(400, "malformed_json", f"malformed JSON: {exc}") from None


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "$"

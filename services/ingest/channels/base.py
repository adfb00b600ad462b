"""What every provider module builds on: the request it sees, what it returns, shared helpers.

A provider module (one file in `providers/`) verifies a delivery's signature as the provider
documents it, maps the delivery to v1 events (raw dicts, validated afterwards exactly like
`POST /v1/events`), and says what to answer so that the provider stops retrying.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from kernel.request_body import MalformedJson, parse_json
from schemas.envelope import Slug
from schemas.violations import Violation

# event_id = uuid5(namespace, "<provider>:<provider's own id>"): a provider's retry of the same
# delivery maps to the same event ids, so the publisher reports it as a duplicate.
EVENT_NAMESPACE = uuid.UUID("8a0c5d0e-2f43-5b7a-9c7e-3f1d2b6a4e10")
# How old a signed timestamp may be (providers that sign one): replayed captures are refused.
SIGNATURE_TOLERANCE_S = 300


@dataclass(frozen=True)
class WebhookRequest:
    """One delivery as received: the URL the provider called, its headers (names lower-case),
    the raw body, and when it arrived."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class Ack:
    """What the provider expects back once a delivery is safely kept."""

    status: int = 200
    body: bytes = b""
    media_type: str = "text/plain"


class Unmappable(ValueError):
    """A verified delivery that does not (fully) map to events: kept as a dead letter, never lost.

    `mapped` holds the events a batched delivery's other items did map to: they are published.
    """

    def __init__(
        self, violations: list[Violation], mapped: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__("; ".join(f"{v.path}: {v.message}" for v in violations))
        self.violations = violations
        self.mapped = mapped or []


class ChannelSettings(BaseModel):
    """The settings every provider that declares its own takes (`settings_model`, checked when a
    channel is added or changed: a mistyped one would otherwise turn every delivery into a dead
    letter); a provider's model adds its own fields."""

    model_config = ConfigDict(extra="forbid")
    touchpoint: Slug | None = Field(default=None, description="the events' touchpoint")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="the URL the provider calls, when a proxy rewrites it (what it signs)",
    )


class Provider(Protocol):
    """One provider's webhooks. `settings` are the channel's (e.g. Typeform's question refs)."""

    name: ClassVar[str]
    secret_help: ClassVar[str]  # what `--secret` is for this provider, shown by `cem channels`
    # The headers its signature (and signed timestamp, if any) come in, as the provider's
    # documentation spells them: a 401 names the one missing or out of time.
    signature_header: ClassVar[str]
    timestamp_header: ClassVar[str | None]

    def verify(self, request: WebhookRequest, secret: str) -> bool: ...

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]: ...

    def ack(self) -> Ack: ...


def event_id(provider: str, provider_key: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{provider}:{provider_key}"))


def same_digest(expected: bytes, given: str | None) -> bool:
    """Constant-time comparison of a computed signature with a header's base64 text."""
    if not given:
        return False
    return hmac.compare_digest(base64.b64encode(expected), given.strip().encode())


def hmac_b64(secret: str, message: bytes, digest: Callable[[], Any] = hashlib.sha256) -> bytes:
    return hmac.new(secret.encode(), message, digest).digest()


def fresh(timestamp: str | None, now: datetime, tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """A signed unix-seconds timestamp within the tolerance of our clock: ASCII digits, at most
    `_STAMP_DIGITS` of them (`²`, a 5,000-digit or a 400-digit stamp is no time, not an error)."""
    if timestamp is None or not _STAMP.fullmatch(timestamp.strip()):
        return False
    return abs(int(now.timestamp()) - int(timestamp)) <= tolerance_s


_STAMP_DIGITS = 12  # seconds up to the year 33658
_STAMP = re.compile(rf"[0-9]{{1,{_STAMP_DIGITS}}}")


def refusal(provider: Provider, request: WebhookRequest) -> dict[str, str]:
    """Why a delivery that does not verify is refused, as an error detail (`code`, `message`,
    `path`): a header missing, a signed timestamp unreadable or out of the tolerance (how far, and
    which way: a replay or a clock behind, or a clock ahead), else the signature itself. Said to a
    sender not yet authenticated, so it names only what the provider's documentation names: never
    the secret, nor what the signature should have been."""
    stamp_header = provider.timestamp_header
    for header in (provider.signature_header, stamp_header):
        if header and not request.headers.get(header.lower(), "").strip():
            return _detail("missing_header", f"missing header {header}", header)
    stamp = request.headers.get(stamp_header.lower(), "").strip() if stamp_header else ""
    if stamp_header and not _STAMP.fullmatch(stamp):
        return _detail(
            "bad_timestamp", f"{stamp_header} is not a time in unix seconds", stamp_header
        )
    if stamp_header and (late := _lateness(stamp, request.received_at)):
        return _detail(late[0], late[1], stamp_header)
    message = f"the {provider.name} signature does not verify under the channel's secret"
    if getattr(provider, "signs_url", False):
        # Twilio signs the URL it called: behind a proxy that changes it (TLS ended there, a
        # path prefix taken off), the right secret fails too (a review: the secret was blamed).
        message += (
            f" and the URL it reached ({request.url}): behind a proxy that changes the URL, "
            "set the channel's public_url"
        )
    return _detail("bad_signature", message, provider.signature_header)


def _lateness(stamp: str, now: datetime) -> tuple[str, str] | None:
    age, allowed = int(now.timestamp()) - int(stamp), SIGNATURE_TOLERANCE_S
    if age > allowed:
        return "stale_timestamp", (
            f"the signed timestamp is {age} s old, {allowed} s allowed: a delivery replayed "
            "or held up, or the sender's clock is behind"
        )
    if -age > allowed:
        return "future_timestamp", (
            f"the signed timestamp is {-age} s ahead of this server's clock, {allowed} s allowed: "
            "clock skew (is this host's clock synchronised?)"
        )
    return None


def _detail(code: str, message: str, header: str) -> dict[str, str]:
    return {"code": code, "message": message, "path": f"headers.{header}"}


def violation(path: str, message: str, code: str = "unmappable") -> Violation:
    return Violation(code, message, path)


def json_body(request: WebhookRequest) -> Any:
    """The body by the ingest's one strict parser (UTF-8, no duplicate keys, bounded depth and
    integers): a delivery it refuses is a dead letter naming why."""
    try:
        return parse_json(request.body)
    except MalformedJson as exc:
        raise Unmappable(
            [violation("$", f"the body is not JSON: {exc}", "malformed_json")]
        ) from None


def form_body(request: WebhookRequest) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; a repeated name keeps its first value."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unmappable([violation("$", "the form body is not UTF-8", "malformed_form")]) from None
    try:  # `%FF` decodes to no character: refused like raw bytes, not replaced by `\ufffd`
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        message = "a form value is not UTF-8 once percent-decoded"
        raise Unmappable([violation("$", message, "malformed_form")]) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def required(record: Mapping[str, Any], path: str, problems: list[Violation]) -> Any:
    """The value at a dotted path, or None after noting it missing."""
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None or value == "":
        problems.append(violation(path, f"{path} is required to map this delivery", "missing"))
    return value


def parse_iso(value: Any, path: str, problems: list[Violation]) -> str | None:
    """An ISO 8601 timestamp with an offset, passed on as RFC 3339 text."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        problems.append(violation(path, f"{path} is not an ISO 8601 timestamp", "bad_timestamp"))
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # documented as UTC where providers omit it
    return parsed.isoformat()


def raise_if(problems: list[Violation], mapped: list[dict[str, Any]] | None = None) -> None:
    if problems:
        raise Unmappable(problems, mapped)


def map_items(
    items: list[Any], map_one: Callable[[int, Any, list[Violation]], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Map every item of a batched delivery; an item's problems are prefixed by its index, and
    the other items' events are kept (`Unmappable.mapped`) so one bad item loses nothing else."""
    events, problems = [], list[Violation]()
    for index, item in enumerate(items):
        found = list[Violation]()
        mapped = map_one(index, item, found) if isinstance(item, Mapping) else []
        if not isinstance(item, Mapping):
            found.append(violation("$", "an item is not a JSON object", "not_an_object"))
        problems += [Violation(v.code, v.message, f"{index}.{v.path}") for v in found]
        events += [] if found else mapped
    raise_if(problems, events)
    return events


def epoch_or_text_time(value: Any, path: str, problems: list[Violation]) -> str | None:
    """Epoch seconds, or text such as `2020-03-03 13:05:57 UTC` or ISO 8601, as RFC 3339."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            message = f"{path} is not a time: {value!r} seconds since 1970"
            problems.append(violation(path, message, "bad_timestamp"))
            return None
    if isinstance(value, str) and value.endswith(" UTC"):
        value = value.removesuffix(" UTC").replace(" ", "T") + "+00:00"
    if value is None:
        problems.append(violation(path, f"{path} is required to map this delivery", "missing"))
        return None
    return parse_iso(value, path, problems)

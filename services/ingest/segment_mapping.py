"""Segment HTTP Tracking API messages → our event envelope (no I/O or clock; a message with neither
a messageId nor a time gets a random id, as Segment gives it one).

One message (`identify`, `track`, `page`, `screen`, `group`, `alias`) becomes one raw event that
the ingest then validates exactly like `POST /v1/events`:

- `messageId` → `event_id`: the UUID itself, else a UUID derived from tenant and messageId (so an
  SDK's retries are duplicates); without a messageId (or a blank one), one derived from the
  message's content when it carries its time, else a new one each time (Segment's rule).
- `userId` → `customer_id`, `anonymousId` → `anonymous_id`, traits `email` / `phone` → `email` /
  `phone` (`traits` of an identify, `context.traits` otherwise). An `alias` carries `userId` and
  `previousId` (read as the anonymous id it aliases) on one touchpoint: the identity service links
  identifiers seen together, so the visitor's earlier anonymous history joins the customer.
- `track` → the tenant's typed event where one is mapped (segment_config), else (or when the
  message cannot fill the typed event: segment_prepare) `custom.<slug of the name>`; `page` → `page.viewed` (web); `screen` → `page.viewed` (mobile_app)
  with the url `screen:<name>`; `identify`, `alias`, `group` → `custom.segment.<kind>` (the dot
  keeps them apart from any track name's slug).
- Time: the client's `originalTimestamp` (else `timestamp`) → `occurred_at`, `sentAt` (the message's
  or the batch's) → `sent_at`; the envelope then derives `received_at − (sent_at − occurred_at)`,
  Segment's own skew correction.
- `context`: whole in a custom event's payload; in a typed payload, whose fields are fixed, the
  fields of CONTEXT_ATTRIBUTES (and the track's unmapped properties) become flat `attributes`.
- The person's name, from the same traits (Segment's reserved `firstName` and `lastName`, or
  `name`; `first_name` / `last_name` too) → `attributes.first_name` / `last_name` (or `name`),
  where the v1 API carries it and identity reads it (services/identity/person_names.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import orjson

from schemas.validate import Violation
from services.ingest.segment_config import TrackMapping

KINDS = ("identify", "track", "page", "screen", "group", "alias")
SOURCE_ID = "segment"
# A fixed namespace: the same tenant and messageId give the same event_id in every process.
SEGMENT_NAMESPACE = UUID("5e0c1f7a-2f7e-4d0b-9a57-3c6f0b8d2a11")
# The context fields a typed payload keeps: an object's listed fields, or a top-level value.
CONTEXT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "page": ("url", "path", "referrer", "search", "title"),
    "campaign": ("name", "source", "medium", "term", "content"),
    "device": ("id", "type", "manufacturer", "model"),
    "os": ("name", "version"),
    "app": ("name", "version"),
    "library": ("name", "version"),
    "ip": (), "userAgent": (), "locale": (), "timezone": (),
}  # fmt: skip
_MOBILE_OS = frozenset({"ios", "ipados", "android"})
# Fields the client sets per delivery attempt, not per event: left out of the fingerprint.
_PER_ATTEMPT = frozenset({"sentAt", "writeKey", "receivedAt"})
# What a custom event's payload keeps of each kind of message, beside its context.
_CUSTOM_FIELDS = {
    "track": ("event", "properties"),
    "identify": ("traits",),
    "group": ("groupId", "traits"),
    "alias": ("previousId",),
}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class BatchDefaults:
    """What a batch's top level gives every message that does not say otherwise."""

    sent_at: Any = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapped:
    """A message as a raw event for the ingest, and the fingerprint that tells a retry (same
    message, another attempt) from a conflict (same messageId, another message)."""

    event: dict[str, Any]
    fingerprint: str


def map_message(
    message: Any,
    kind: str | None,
    tenant_id: str,
    received_at: datetime,
    tracks: Mapping[str, TrackMapping],
    defaults: BatchDefaults = BatchDefaults(),
) -> Mapped | list[Violation]:
    """One Segment message → a raw event, or what makes it unusable (paths in Segment's terms).

    `kind` is the endpoint's (`/v1/track`); None in a batch, where each message's `type` says.
    """
    if not isinstance(message, dict):
        return [Violation("type_error", "a message must be a JSON object", "$")]
    message = _with_defaults(message, defaults)
    kind = kind or message.get("type")
    problems = _message_problems(message, kind)
    if problems:
        return problems
    assert isinstance(kind, str)
    event = _envelope(message, kind, tenant_id, received_at, tracks)
    return Mapped(event, fingerprint(message, kind))


def _with_defaults(message: dict[str, Any], defaults: BatchDefaults) -> dict[str, Any]:
    merged = dict(message)
    if defaults.context:
        merged["context"] = {**defaults.context, **_dict(message.get("context"))}
    if defaults.sent_at is not None and "sentAt" not in message:
        merged["sentAt"] = defaults.sent_at
    return merged


def _message_problems(message: dict[str, Any], kind: Any) -> list[Violation]:
    if kind not in KINDS:
        return [Violation("unknown_type", f"type must be one of {', '.join(KINDS)}", "type")]
    if kind == "alias":
        return [
            Violation("missing", f"an alias needs {name}", name)
            for name in ("userId", "previousId")
            if _id(message.get(name)) is None
        ]
    problems = []
    if _id(message.get("userId")) is None and _id(message.get("anonymousId")) is None:
        problems.append(Violation("missing", "needs a userId or an anonymousId", "userId"))
    if kind == "track" and not _text(message.get("event")):
        problems.append(Violation("missing", "a track needs the event's name", "event"))
    return problems


def _envelope(
    message: dict[str, Any],
    kind: str,
    tenant_id: str,
    received_at: datetime,
    tracks: Mapping[str, TrackMapping],
) -> dict[str, Any]:
    event_type, payload, mapping = _type_and_payload(message, kind, tracks)
    if name := person_name(message, kind):
        payload["attributes"] = {**_dict(payload.get("attributes")), **name}
    event: dict[str, Any] = {
        "event_id": event_id(tenant_id, message, kind),
        "source_id": SOURCE_ID,
        "channel": (mapping and mapping.channel) or _channel(message, kind),
        "type": event_type,
        "customer": customer_of(message, kind),
        "occurred_at": _client_time(message) or received_at.isoformat(),
        "payload": payload,
    }
    if message.get("sentAt") is not None and _client_time(message) is not None:
        event["sent_at"] = message["sentAt"]
    if mapping and mapping.touchpoint:
        event["touchpoint"] = mapping.touchpoint
    return event


def _type_and_payload(
    message: dict[str, Any], kind: str, tracks: Mapping[str, TrackMapping]
) -> tuple[str, dict[str, Any], TrackMapping | None]:
    if kind in ("page", "screen"):
        return "page.viewed", _page_payload(message, kind), None
    if kind == "track":
        mapping = tracks.get(message["event"])
        if mapping is not None:
            return mapping.type, _typed_payload(message, mapping), mapping
        return f"custom.{slug(message['event'])}", _custom_payload(message, kind), None
    return f"custom.segment.{kind}", _custom_payload(message, kind), None


def event_id(tenant_id: str, message: Mapping[str, Any], kind: str) -> str:
    """The messageId when it is a UUID; else a UUID derived from it, or from the content when the
    message says when it happened (a retry of it is the same event). A message with neither is a
    new event each time it is sent, as Segment gives each a messageId of its own: two clicks a
    hand-written integration sends alike, with no id and no time, are two clicks."""
    given = message.get("messageId")
    if isinstance(given, int | float) and not isinstance(given, bool):
        given = str(given)  # a number sent as the id is still the id
    if isinstance(given, str) and given.strip():
        try:
            return str(UUID(given))
        except ValueError:
            return str(uuid5(SEGMENT_NAMESPACE, f"{tenant_id}/{given}"))
    if message.get("originalTimestamp") is None and message.get("timestamp") is None:
        return str(uuid4())
    return str(uuid5(SEGMENT_NAMESPACE, f"{tenant_id}/content/{fingerprint(message, kind)}"))


def fingerprint(message: Mapping[str, Any], kind: str) -> str:
    """A hash of the message without what changes between delivery attempts."""
    kept = [kind, {k: v for k, v in message.items() if k not in _PER_ATTEMPT}]
    try:
        data = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # lone surrogates, integers past 64 bits: slower, exact
        data = json.dumps(kept, sort_keys=True, ensure_ascii=True, default=str).encode("ascii")
    return hashlib.sha256(data).hexdigest()


def customer_of(message: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The identifiers a message names; empty ones are left out."""
    traits = _person_traits(message, kind)
    anonymous = message.get("previousId") if kind == "alias" else message.get("anonymousId")
    found = {
        "customer_id": _id(message.get("userId")),
        "anonymous_id": _id(anonymous),
        "email": _text(traits.get("email")),
        "phone": _id(traits.get("phone")),
    }
    return {name: value for name, value in found.items() if value is not None}


def person_name(message: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The person's name the message's traits give, as the v1 API's attributes carry it: a
    given name and a surname together, else the one field; empty when they give none."""
    traits = _person_traits(message, kind)
    for first, last in (("firstName", "lastName"), ("first_name", "last_name")):
        given, surname = _text(traits.get(first)), _text(traits.get(last))
        if given and surname:
            return {"first_name": given, "last_name": surname}
    whole = _text(traits.get("name"))
    return {"name": whole} if whole else {}


def _person_traits(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """An identify's traits over the context's; a group's traits describe the company, not the
    person, and are left out."""
    traits = _dict(message.get("traits")) if kind == "identify" else {}
    return {**_dict(_dict(message.get("context")).get("traits")), **traits}


def slug(name: str) -> str:
    """`Order Completed` → `order_completed`: the part of a custom type after `custom.`."""
    cleaned = _NOT_SLUG.sub("_", name.lower()).strip("_")[:60]
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"e_{cleaned}".rstrip("_")
    return cleaned


def _channel(message: Mapping[str, Any], kind: str) -> str:
    context = _dict(message.get("context"))
    os_name = str(_dict(context.get("os")).get("name", "")).lower()
    device_type = str(_dict(context.get("device")).get("type", "")).lower()
    mobile = kind == "screen" or os_name in _MOBILE_OS or device_type in _MOBILE_OS
    return "mobile_app" if mobile else "web"


def _client_time(message: Mapping[str, Any]) -> Any:
    """When the client says the event happened: Segment's originalTimestamp, else timestamp."""
    for name in ("originalTimestamp", "timestamp"):
        if message.get(name) is not None:
            return message[name]
    return None


def _page_url(message: Mapping[str, Any]) -> str | None:
    page = _dict(_dict(message.get("context")).get("page"))
    return _text(_dict(message.get("properties")).get("url")) or _text(page.get("url"))


def _page_payload(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    properties = _dict(message.get("properties"))
    page = _dict(_dict(message.get("context")).get("page"))
    name = _text(message.get("name"))
    # A page with no URL (Segment's server-side libraries send a name alone) is named, as a
    # screen is: `page:<name>`.
    if kind == "page":
        url = _page_url(message) or f"page:{name or 'unnamed'}"
    else:
        url = f"screen:{name or 'unnamed'}"
    payload: dict[str, Any] = {"url": url}
    title = _text(properties.get("title")) or (page.get("title") if kind == "page" else None)
    for key, value in (("title", title or name), ("referrer", properties.get("referrer"))):
        if _text(value):
            payload[key] = value
    leftover = {k: v for k, v in properties.items() if k not in ("url", "title", "referrer")}
    payload["attributes"] = attributes(message, leftover)
    return payload


def _typed_payload(message: Mapping[str, Any], mapping: TrackMapping) -> dict[str, Any]:
    payload = {
        target: found
        for target, source in mapping.payload.items()
        if (found := dotted(message, source)) is not None
    }
    used = {s.partition(".")[2] for s in mapping.payload.values() if s.startswith("properties.")}
    leftover = {k: v for k, v in _dict(message.get("properties")).items() if k not in used}
    payload["attributes"] = attributes(message, leftover)
    return payload


def _custom_payload(message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Everything the client said about the event, as it said it."""
    kept = {name: message[name] for name in _CUSTOM_FIELDS[kind] if name in message}
    return {**kept, "context": _dict(message.get("context"))}


def attributes(message: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Scalar]:
    """Flat `attributes` of a typed payload: the kept context fields, then the properties.

    A property that is not a scalar (a list of products) is kept as its JSON text.
    """
    found: dict[str, Scalar] = {}
    for name, value in _dict(message.get("context")).items():
        fields = CONTEXT_ATTRIBUTES.get(name)
        if fields is None or value is None:
            continue
        if not fields:
            found[f"context.{name}"] = _scalar(value)
            continue
        for part, inner in _dict(value).items():
            if part in fields and inner is not None:
                found[f"context.{name}.{part}"] = _scalar(inner)
    for name, value in properties.items():
        found[f"properties.{name}"[:100]] = _scalar(value)
    return found


def dotted(value: Any, path: str) -> Any:
    """`dotted(m, "properties.revenue")` = m["properties"]["revenue"], None when absent."""
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _scalar(value: Any) -> Scalar:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _id(value: Any) -> str | None:
    """Segment ids are strings; SDKs in typed languages sometimes send numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def segment_path(native: str, message: Any, kind: str | None) -> str:
    """A violated path of the mapped event (`occurred_at`, `customer.customer_id`) in the
    message's own terms (`originalTimestamp` or `timestamp`, `userId`), so a developer reading a
    422 finds the field they sent; a path with no one field behind it (the payload's) as it is."""
    message = message if isinstance(message, dict) else {}
    kind = kind or message.get("type")
    head, dot, rest = native.partition(".")
    if head == "occurred_at":
        return "originalTimestamp" if message.get("originalTimestamp") is not None else "timestamp"
    if head == "sent_at":
        return "sentAt"
    if head == "event_id":
        return "messageId"
    if head == "customer" and dot:
        field, _, _ = rest.partition(".")
        traits = (
            "traits"
            if kind == "identify" and field in _dict(message.get("traits"))
            else ("context.traits")
        )
        return {
            "customer_id": "userId",
            "anonymous_id": "previousId" if kind == "alias" else "anonymousId",
            "email": f"{traits}.email",
            "phone": f"{traits}.phone",
        }.get(field, native)
    return native

"""Turn raw input into a stored `Event`, or a list of every violation with its path."""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from schemas.compiled import (
    CUSTOMER_FIELDS,
    EVENT_FIELDS,
    STORED,
    CompiledType,
    compiled_type,
    construct,
)
from schemas.envelope import (
    EARLIEST,
    MAX_FUTURE,
    Channel,
    CustomerRef,
    Event,
    EventIn,
    derive_time,
)
from schemas.families import PLATFORM_TYPES, payload_model
from schemas.json_safety import json_violations
from schemas.violations import InvalidEvent, Violation

SERVER_FIELDS = frozenset({"tenant_id", "received_at", "derived_at", "clock_corrected"})
_CHANNELS = frozenset(c.value for c in Channel)


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(parts) or "$"


def violations_of(error: ValidationError, prefix: str = "") -> list[Violation]:
    return [
        Violation(code=e["type"], message=e["msg"], path=_path(prefix, tuple(e["loc"])))
        for e in error.errors(include_url=False)
    ]


def _server_field_violations(raw: dict[str, Any]) -> list[Violation]:
    return [
        Violation("server_owned", f"{name} is set by the server and must not be sent", name)
        for name in sorted(SERVER_FIELDS & raw.keys())
    ]


def _payload_violations(raw: dict[str, Any]) -> tuple[BaseModel | None, list[Violation]]:
    """Checks type, channel and payload from the raw input, so that they are reported even when
    the envelope itself has other violations."""
    event_type, channel, payload = raw.get("type"), raw.get("channel"), raw.get("payload", {})
    if not isinstance(event_type, str):
        return None, []
    found = payload_model(event_type)
    if found is None:
        msg = f"unknown event type {event_type!r}; custom types must start with 'custom.'"
        return None, [Violation("unknown_type", msg, "type")]
    model, channels = found
    problems: list[Violation] = []
    if isinstance(channel, str) and channel in _CHANNELS and channel not in channels:
        allowed = ", ".join(sorted(c.value for c in channels))
        msg = f"{event_type} cannot arrive on channel {channel}; allowed: {allowed}"
        problems.append(Violation("channel_mismatch", msg, "channel"))
    if not isinstance(payload, dict):
        return None, problems  # the envelope check reports payload's type
    try:
        return model.model_validate(payload), problems
    except ValidationError as exc:
        return None, problems + violations_of(exc, "payload")


def _time_violations(derived: datetime, received_at: datetime, corrected: bool) -> list[Violation]:
    """`corrected`: whether sent_at came, so that `derived` is the skew-corrected time."""
    if derived < EARLIEST:
        return [Violation("absurd_timestamp", "occurred_at is before 2000-01-01", "occurred_at")]
    if derived > received_at + MAX_FUTURE:
        return [Violation("absurd_timestamp", _future_message(corrected), "occurred_at")]
    return []


def _future_message(corrected: bool) -> str:
    # Worded by what was sent: a sender without sent_at looks for a correction that never ran.
    ahead = f"more than {MAX_FUTURE.total_seconds() / 3600:g} h after the event was received"
    if corrected:
        return (
            f"occurred_at is in the future ({ahead}) even after clock-skew correction via sent_at"
        )
    return f"occurred_at is in the future ({ahead}); no sent_at was sent to correct a skewed clock"


def fingerprint(event: EventIn) -> str:
    """A hash of what the producer sent, used to tell a duplicate from a conflict."""
    body = orjson.dumps(event.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def accept(raw: Any, tenant_id: str, received_at: datetime) -> tuple[Event, str]:
    """Validate one raw event and stamp the server-owned fields; returns the event and fingerprint.

    Raises InvalidEvent listing every violated path.
    """
    fast = accept_compiled(raw, tenant_id, received_at)
    if fast is not None:
        return fast
    structural = json_violations(raw) if isinstance(raw, dict) else []
    return accept_checked(raw, tenant_id, received_at, structural)


def reserved_type(event_type: str) -> Violation | None:
    """Why a producer may not send an event of this type: the platform records the alert
    actions itself (`PLATFORM_TYPES`, from the dashboard's alert queue), and such an event is
    filed as it names its customer, without identity (`schemas.families.filed_customer`). None
    for every other type. Checked at the producers' edges (HTTP ingest, Segment, webhooks, Kafka),
    not by `accept`, which also validates the platform's own."""
    if event_type not in PLATFORM_TYPES:
        return None
    message = (
        f"{event_type} is recorded by the platform itself (an action on an alert in the "
        "dashboard, an erasure); a channel system may not send it"
    )
    return Violation("reserved_type", message, "type")


def accept_checked(
    raw: Any, tenant_id: str, received_at: datetime, structural: list[Violation]
) -> tuple[Event, str]:
    """`accept` for a caller that has already found `structural = json_violations(raw)`."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Violation("type_error", "an event must be a JSON object", "$")])
    if any(v.code == "nested_too_deeply" for v in structural):
        raise InvalidEvent(structural)
    try:
        return _accept_checked(raw, tenant_id, received_at, structural)
    except InvalidEvent as exc:
        # A value no field may hold is reported once, under its structural code.
        paths = {v.path for v in structural}
        raise InvalidEvent(
            structural + [v for v in exc.violations if v.path not in paths]
        ) from None


def _accept_checked(
    raw: dict[str, Any], tenant_id: str, received_at: datetime, structural: list[Violation]
) -> tuple[Event, str]:
    problems = _server_field_violations(raw)
    payload, payload_problems = _payload_violations(raw)
    problems += payload_problems
    sent = (
        raw
        if SERVER_FIELDS.isdisjoint(raw)
        else {k: v for k, v in raw.items() if k not in SERVER_FIELDS}
    )
    try:
        incoming = EventIn.model_validate(sent)
    except ValidationError as exc:
        envelope = [v for v in violations_of(exc) if not v.path.startswith("payload.")]
        raise InvalidEvent(problems + envelope) from None
    try:
        derived = derive_time(incoming.occurred_at, incoming.sent_at, received_at)
    except OverflowError:
        message = "occurred_at and sent_at are too far apart to correct the clock"
        raise InvalidEvent(problems + [Violation("absurd_timestamp", message, "sent_at")]) from None
    problems += _time_violations(derived, received_at, incoming.sent_at is not None)
    if problems or structural or payload is None:
        raise InvalidEvent(problems)
    return _stored(incoming, payload, tenant_id, received_at, derived), fingerprint(incoming)


def _stored(
    incoming: EventIn, payload: BaseModel, tenant_id: str, received_at: datetime, derived: datetime
) -> Event:
    # Passing the validated objects (the customer as its model, not a dict) keeps this cheap:
    # Event still checks every field, tenant_id included, but has nothing left to parse.
    return Event(
        event_id=incoming.event_id,
        tenant_id=tenant_id,
        source_id=incoming.source_id,
        channel=incoming.channel,
        type=incoming.type,
        touchpoint=incoming.touchpoint or incoming.channel.value,
        customer=incoming.customer,
        occurred_at=incoming.occurred_at,
        sent_at=incoming.sent_at,
        received_at=received_at,
        derived_at=derived,
        clock_corrected=incoming.sent_at is not None and derived != incoming.occurred_at,
        correlation_id=incoming.correlation_id,
        payload=payload.model_dump(mode="json"),
        schema_version=incoming.schema_version,
    )


def accept_compiled(raw: Any, tenant_id: str, received_at: datetime) -> tuple[Event, str] | None:
    """`accept(raw, tenant_id, received_at)` when the compiled validator of its type is certain of
    it (`schemas.compiled`): the same event and fingerprint, in one pydantic-core call and a few
    comparisons. None when it is not: then only `accept_checked` can tell, and word why."""
    kind = raw.get("type") if type(raw) is dict else None
    compiled = compiled_type(kind) if type(kind) is str else None
    if (
        compiled is None
        or type(received_at) is not datetime
        or type(tenant_id) is not str
        or not _is_slug(tenant_id)
    ):
        return None
    try:
        sent = compiled.validator.validate_python(raw)
        occurred = sent["occurred_at"].astimezone(UTC)
        at = sent["sent_at"] and sent["sent_at"].astimezone(UTC)
        derived = derive_time(occurred, at, received_at)
    except (ValidationError, OverflowError):
        return None
    customer = construct(CustomerRef, sent["customer"], set(raw["customer"]))
    if (
        sent["channel"] not in compiled.channels
        or not _identified(customer)
        or not EARLIEST <= derived <= received_at + MAX_FUTURE
    ):
        return None
    sent.update(customer=customer, occurred_at=occurred, sent_at=at)
    return _compiled_event(sent, compiled, tenant_id, received_at, derived), _fingerprint(
        sent, raw.get("payload", {})
    )


def _compiled_event(
    sent: dict[str, Any],
    compiled: CompiledType,
    tenant_id: str,
    received_at: datetime,
    derived: datetime,
) -> Event:
    """What `_stored` makes of the same values (every field of an Event set, as there)."""
    occurred, at = sent["occurred_at"], sent["sent_at"]
    values = {
        "event_id": sent["event_id"],
        "tenant_id": tenant_id,
        "source_id": sent["source_id"],
        "channel": sent["channel"],
        "type": sent["type"],
        "touchpoint": sent["touchpoint"] or sent["channel"].value,
        "customer": sent["customer"],
        "occurred_at": occurred,
        "sent_at": at,
        "received_at": received_at,
        "derived_at": derived,
        "clock_corrected": at is not None and derived != occurred,
        "correlation_id": sent["correlation_id"],
        "payload": _payload_json(sent["payload"], compiled),
        "schema_version": sent["schema_version"],
    }
    return construct(Event, values, set(EVENT_FIELDS))


def _payload_json(payload: dict[str, Any], compiled: CompiledType) -> dict[str, Any]:
    serializer = compiled.payload
    return payload if serializer is None else serializer.to_python(payload, mode="json")


@functools.lru_cache(maxsize=1024)
def _is_slug(text: str) -> bool:
    return _SLUG.fullmatch(text) is not None


_SLUG = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")  # Slug's pattern (fullmatch: no "$\n" slip)


def _identified(customer: CustomerRef) -> bool:
    return bool(
        customer.customer_id
        or customer.email
        or customer.phone
        or customer.anonymous_id
        or customer.external_ids
    )


def _fingerprint(sent: dict[str, Any], payload: Any) -> str:
    """`fingerprint` of the same event: the same JSON, keys sorted, hashed. orjson writes UUIDs,
    enums and UTC times (with `Z`) exactly as pydantic's JSON mode does; the payload is the one
    sent, as EventIn keeps it."""
    incoming = sent.copy()
    incoming["customer"] = sent["customer"].__dict__
    incoming["payload"] = payload
    body = orjson.dumps(incoming, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)
    return hashlib.sha256(body).hexdigest()


def encode(event: Event) -> bytes:
    """The log's wire form of an event: compact UTF-8 JSON.

    Serialised by pydantic in one step, without building a dict first: byte for byte what
    orjson makes of `model_dump(mode="json")` (same escapes, same shortest floats). The one
    difference is a payload integer beyond 64 bits, which orjson refused and `accept` rejects.
    """
    return event.__pydantic_serializer__.to_json(event)


def decode(data: bytes) -> Event:
    """An event read from the log, which holds only events the platform validated and encoded:
    its types are checked (a ValueError, pydantic's ValidationError, on bytes that are not an
    event's JSON), its rules are not run again. A record anyone else may have written goes through
    `accept` (cem.direct_ingest)."""
    return stored_event(STORED.validate_json(data))


def stored_event(values: dict[str, Any]) -> Event:
    """The Event of values `STORED` validated."""
    values["customer"] = construct(CustomerRef, values["customer"], set(CUSTOMER_FIELDS))
    return construct(Event, values, set(EVENT_FIELDS))


def decode_parsed(raw: Any) -> Event:
    """`decode` of a stored event already parsed from JSON."""
    return stored_event(STORED.validate_python(raw))

"""Segment messages → the records to publish and a result for each refused one (no I/O or clock).

Each message is mapped (segment_mapping) and then validated exactly as `POST /v1/events`
validates an event (services/ingest/batch.py); a violation or note of the mapped event is told at
the path the message wrote (`timestamp`, `userId`), not the mapped event's (`occurred_at`). A
mapped track its typed event cannot take is kept as the unmapped `custom.<slug>`, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kernel.ports import Outgoing
from schemas.envelope import Event
from schemas.json_safety import safe_json
from schemas.validate import Violation
from services.identity.rules import TenantRules
from services.ingest.batch import (
    ItemResult,
    ItemStatus,
    Prepared,
    check_event,
    encoded_size,
    identifier_notes,
)
from services.ingest.segment_config import TrackMapping
from services.ingest.segment_mapping import BatchDefaults, Mapped, map_message, segment_path


def prepare_messages(
    messages: Sequence[Any],
    kind: str | None,
    tenant_id: str,
    received_at: datetime,
    tracks: Mapping[str, TrackMapping],
    limits: tuple[int, int],
    defaults: BatchDefaults = BatchDefaults(),
    rules: TenantRules | None = None,
    *,
    bucket_key: bytes,
) -> Prepared:
    """Map and validate every message; the valid ones become records, as in the native ingest,
    with a note for each identifier the tenant's identity `rules` will ignore, and for each
    mapped property that kept a track from its typed event (`_kept_unmapped`).

    `limits` is (max bytes of one message, max bytes of one mapped event).
    """
    prepared = Prepared()
    given = _Given(tenant_id, received_at, tracks, limits, defaults, bucket_key)
    for index, message in enumerate(messages):
        checked = _checked(index, message, kind, given)
        if isinstance(checked, ItemResult):
            prepared.rejected.append(checked)
            continue
        event, out, mapping_notes = checked
        prepared.outgoing.append(out)
        prepared.indexes.append(index)
        notes = identifier_notes(event, rules or TenantRules())
        prepared.notes.append(mapping_notes + _in_segment_terms(notes, message, kind))
    return prepared


@dataclass(frozen=True)
class _Given:
    """What every message of a request is prepared with."""

    tenant_id: str
    received_at: datetime
    tracks: Mapping[str, TrackMapping]
    limits: tuple[int, int]
    defaults: BatchDefaults
    bucket_key: bytes


_Checked = ItemResult | tuple[Event, Outgoing, tuple[Violation, ...]]


def _checked(index: int, message: Any, kind: str | None, given: _Given) -> _Checked:
    """One message: rejected in its own terms, or its event and record with the notes of a
    mapping it did not meet."""
    mapped = _map_within(message, kind, given)
    if isinstance(mapped, list):
        return ItemResult(index, ItemStatus.rejected, errors=tuple(mapped))
    checked = _check_mapped(index, mapped, given)
    if not isinstance(checked, ItemResult):
        return (*checked, ())
    mapping = _track_mapping(message, kind, given.tracks)
    if mapping is not None and any(_from_mapping(v) for v in checked.errors):
        return _kept_unmapped(index, message, kind, mapping, checked.errors, given)
    return replace(checked, errors=_in_segment_terms(checked.errors, message, kind))


def _check_mapped(index: int, mapped: Mapped, given: _Given) -> ItemResult | tuple[Event, Outgoing]:
    checked = check_event(
        index, mapped.event, given.tenant_id, given.received_at, given.limits[1], given.bucket_key
    )
    if isinstance(checked, ItemResult):
        return checked
    event, out = checked
    # The SDK sets sentAt anew on each attempt: a retry must fingerprint as a duplicate.
    return event, replace(out, fingerprint=mapped.fingerprint)


def _track_mapping(
    message: Any, kind: str | None, tracks: Mapping[str, TrackMapping]
) -> TrackMapping | None:
    if not tracks or (kind or message.get("type")) != "track":
        return None
    return tracks.get(message["event"])


def _from_mapping(violation: Violation) -> bool:
    """Whether a violation of a typed event comes of its mapping: a typed payload field the
    message gave no usable value for, or the mapping's channel."""
    return violation.path.startswith("payload.") or violation.code == "channel_mismatch"


def _kept_unmapped(
    index: int,
    message: dict[str, Any],
    kind: str | None,
    mapping: TrackMapping,
    typed_errors: Sequence[Violation],
    given: _Given,
) -> _Checked:
    """A mapped track its typed event cannot take (Segment's spec makes an order's revenue and
    currency optional): kept as the track would be were it not mapped, `custom.<slug>` with
    every property as sent, and noted, each in the client's field (`properties.revenue`).
    Refusing it lost it: an SDK answered 200 for its batch never looks at a message's result."""
    unmapped = map_message(message, kind, given.tenant_id, given.received_at, {}, given.defaults)
    assert isinstance(unmapped, Mapped)  # the same message mapped before
    checked = _check_mapped(index, unmapped, given)
    if isinstance(checked, ItemResult):  # refused for what no mapping changes: say that
        return replace(checked, errors=_in_segment_terms(checked.errors, message, kind))
    unmet = [v for v in typed_errors if _from_mapping(v)]
    notes = tuple(_unmet_note(v, message["event"], mapping, unmapped.event["type"]) for v in unmet)
    return (*checked, notes)


def _unmet_note(violation: Violation, name: str, mapping: TrackMapping, kept_as: str) -> Violation:
    """A note naming the field the client wrote (or the mapping, when it reads no field there)."""
    path = _client_path(violation, mapping)
    field = violation.path.removeprefix("payload.").partition(".")[0]
    under = f"the mapping of {name!r} reads {mapping.type}'s {field} there"
    if violation.code == "channel_mismatch":
        why = f"the mapping of {name!r}: {violation.message}"
    elif path == "event":
        why = f"the mapping of {name!r} gives no {field}, which {mapping.type} needs"
    elif violation.code == "missing":
        why = f"{path} is missing ({under})"
    else:
        why = f"{path}: {violation.message} ({under})"
    return Violation("mapping_not_applied", f"{why}; kept as {kept_as}, as an unmapped track", path)


def _client_path(violation: Violation, mapping: TrackMapping) -> str:
    """`payload.amount` → the path the mapping reads it from (`properties.revenue`); the typed
    attributes → `properties` (the unmapped ones they hold); else `event`, the name mapped."""
    if violation.code == "channel_mismatch":
        return "event"
    field, _, rest = violation.path.removeprefix("payload.").partition(".")
    if field == "attributes":
        return "properties"
    source = mapping.payload.get(field)
    if source is None:
        return "event"
    return f"{source}.{rest}" if rest else source


# The envelope's time fields, which a message's text may name beside its path ("timestamp is in
# the future ...; no sent_at was sent"): each said as the message's own field.
_TIME_FIELD = re.compile(r"\b(occurred_at|sent_at)\b")


def _client_time_field(message: Any, kind: str | None) -> Callable[[re.Match[str]], str]:
    return lambda found: segment_path(found[0], message, kind)


def _in_segment_terms(
    violations: Sequence[Violation], message: Any, kind: str | None
) -> tuple[Violation, ...]:
    """The mapped event's violations (or notes) at the paths the message wrote (`timestamp`,
    `userId`), and their messages naming those fields too."""
    found = []
    for v in violations:
        path = segment_path(v.path, message, kind)
        # A message that begins with the violated path (or its first part) names it.
        named = next((n for n in (v.path, v.path.partition(".")[0]) if v.message.startswith(n)), "")
        said = path + v.message.removeprefix(named) if named else v.message
        found.append(
            Violation(v.code, _TIME_FIELD.sub(_client_time_field(message, kind), said), path)
        )
    return tuple(found)


def _map_within(message: Any, kind: str | None, given: _Given) -> Mapped | list[Violation]:
    max_bytes = given.limits[0]
    try:
        size = message_size(message, max_bytes)
    except RecursionError:  # json.dumps recurses; the strict parser allowed deeper nesting
        return [Violation("nested_too_deeply", "the message is nested too deeply", "$")]
    if size > max_bytes:
        message_ = f"the message is {size} bytes; Segment's limit is {max_bytes}"
        return [Violation("event_too_large", message_, "$")]
    return map_message(
        message, kind, given.tenant_id, given.received_at, given.tracks, given.defaults
    )


def message_size(message: Any, limit: int) -> int:
    """The message's compact JSON size, measured exactly (json.dumps) only near the limit: orjson's
    output differs by a byte or two per float, so one that fits in half the limit fits."""
    compact = safe_json(message)
    if compact is not None and 2 * len(compact) <= limit:
        return len(compact)
    return encoded_size(message)

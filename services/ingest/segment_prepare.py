"""Segment messages → the records to publish and a result for each refused one (no I/O or clock).

Each message is mapped (segment_mapping) and then validated exactly as `POST /v1/events`
validates an event (services/ingest/batch.py); a violation or note of the mapped event is told at
the path the message wrote (`timestamp`, `userId`), not the mapped event's (`occurred_at`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

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
    with a note for each identifier the tenant's identity `rules` will ignore.

    `limits` is (max bytes of one message, max bytes of one mapped event).
    """
    prepared = Prepared()
    for index, message in enumerate(messages):
        mapped = _map_within(message, kind, tenant_id, received_at, tracks, limits[0], defaults)
        if isinstance(mapped, list):
            prepared.rejected.append(ItemResult(index, ItemStatus.rejected, errors=tuple(mapped)))
            continue
        checked = check_event(index, mapped.event, tenant_id, received_at, limits[1], bucket_key)
        if isinstance(checked, ItemResult):
            prepared.rejected.append(
                replace(checked, errors=_in_segment_terms(checked.errors, message, kind))
            )
        else:
            event, out = checked
            # The SDK sets sentAt anew on each attempt: a retry must fingerprint as a duplicate.
            prepared.outgoing.append(replace(out, fingerprint=mapped.fingerprint))
            prepared.indexes.append(index)
            notes = identifier_notes(event, rules or TenantRules())
            prepared.notes.append(_in_segment_terms(notes, message, kind))
    return prepared


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


def _map_within(
    message: Any,
    kind: str | None,
    tenant_id: str,
    received_at: datetime,
    tracks: Mapping[str, TrackMapping],
    max_bytes: int,
    defaults: BatchDefaults,
) -> Mapped | list[Violation]:
    try:
        size = message_size(message, max_bytes)
    except RecursionError:  # json.dumps recurses; the strict parser allowed deeper nesting
        return [Violation("nested_too_deeply", "the message is nested too deeply", "$")]
    if size > max_bytes:
        message_ = f"the message is {size} bytes; Segment's limit is {max_bytes}"
        return [Violation("event_too_large", message_, "$")]
    return map_message(message, kind, tenant_id, received_at, tracks, defaults)


def message_size(message: Any, limit: int) -> int:
    """The message's compact JSON size, measured exactly (json.dumps) only near the limit: orjson's
    output differs by a byte or two per float, so one that fits in half the limit fits."""
    compact = safe_json(message)
    if compact is not None and 2 * len(compact) <= limit:
        return len(compact)
    return encoded_size(message)

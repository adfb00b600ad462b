"""Pure ingest logic: raw items → per-item results and the records to publish.

No I/O, clock or randomness: the router passes `received_at` in, publishes `Prepared.outgoing` in
one call, and hands the statuses back to `complete`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson

from kernel.customer_key import customer_key
from kernel.partitioning import touchpoint_key
from kernel.ports import Outgoing, PublishStatus, Record
from schemas.envelope import Event
from schemas.json_safety import json_violations, safe_json
from schemas.validate import (
    InvalidEvent,
    Violation,
    accept_checked,
    accept_compiled,
    encode,
    reserved_type,
)
from services.identity.normalise import (
    Rejected,
    ambiguous_readings,
    comma_readings,
    normalise_ref,
)
from services.identity.rules import TenantRules

log = logging.getLogger(__name__)


def printable(text: str) -> str:
    """Text safe to put in a UTF-8 response: lone surrogates become `\\udXXX` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class Unparseable:
    """An NDJSON line that is not JSON: a rejected item, not a failed request."""

    violation: Violation


class ItemStatus(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    conflict = "conflict"
    rejected = "rejected"


@dataclass(frozen=True)
class ItemResult:
    """What happened to one submitted item."""

    index: int
    status: ItemStatus
    event_id: str | None = None
    errors: tuple[Violation, ...] = ()
    # Identifiers of an accepted event that identity ignores, and why (RELIABILITY D01).
    notes: tuple[Violation, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "status": self.status.value}
        if self.event_id is not None:
            body["event_id"] = self.event_id
        if self.errors:
            body["errors"] = [safe_violation(v) for v in self.errors]
        if self.notes:
            body["notes"] = [safe_violation(v) for v in self.notes]
        return body

    @property
    def rejection_code(self) -> str:
        """The code a rejected item is counted under: why it could not even be validated, or
        `invalid_event` when validation listed its violations."""
        codes = {v.code for v in self.errors}
        for code in ("malformed_json", "event_too_large", "nested_too_deeply"):
            if code in codes:
                return code
        return "invalid_event"


@dataclass
class Prepared:
    """Items checked but not yet published: the rejected results and, in submission order, the
    valid items' records with their item indexes."""

    rejected: list[ItemResult] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    notes: list[tuple[Violation, ...]] = field(default_factory=list)  # beside `outgoing`


@dataclass(frozen=True)
class BatchOutcome:
    """Every item's result, by index. accepted + duplicates + conflicts + rejected = submitted."""

    results: list[ItemResult]

    def count(self, status: ItemStatus) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def all_rejected(self) -> bool:
        return self.count(ItemStatus.rejected) == len(self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "submitted": len(self.results),
            "accepted": self.count(ItemStatus.accepted),
            "duplicates": self.count(ItemStatus.duplicate),
            "conflicts": self.count(ItemStatus.conflict),
            "rejected": self.count(ItemStatus.rejected),
            "results": [r.as_dict() for r in self.results],
        }


def safe_violation(violation: Violation) -> dict[str, str]:
    """A violation as JSON, with any lone surrogate echoed from the input escaped."""
    return {k: printable(v) for k, v in violation.as_dict().items()}


def prepare(
    items: Sequence[Any],
    tenant_id: str,
    received_at: datetime,
    max_event_bytes: int,
    rules: TenantRules | None = None,
    *,
    bucket_key: bytes,
) -> Prepared:
    """Validate every item; valid ones become records keyed by tenant and customer (bucketed
    under `bucket_key`, `kernel.partitioning.touchpoint_key`), with a note for each identifier
    the tenant's identity `rules` will ignore."""
    prepared = Prepared()
    rules = rules or TenantRules()
    for index, raw in enumerate(items):
        checked = check_event(index, raw, tenant_id, received_at, max_event_bytes, bucket_key)
        if isinstance(checked, ItemResult):
            prepared.rejected.append(checked)
        else:
            event, out = checked
            prepared.outgoing.append(out)
            prepared.indexes.append(index)
            prepared.notes.append(identifier_notes(event, rules))
    return prepared


def identifier_notes(event: Event, rules: TenantRules) -> tuple[Violation, ...]:
    """The identifiers of an accepted event that link nobody (invalid, placeholder, blocked):
    the event is kept, filed without them (an anonymous touchpoint when none is left). A national
    number valid in several other regions, or an email whose stray comma reads as several
    mailboxes, is noted as identity uses it (`normalise.with_known_reading`): ingest cannot tell
    yet whether a customer holds a reading."""
    return tuple(
        _identifier_note(rejected, rules)
        for rejected in normalise_ref(event.customer, rules).rejected
    )


def _identifier_note(rejected: Rejected, rules: TenantRules) -> Violation:
    if ambiguous_readings(rejected, rules):
        return Violation(
            "identifier_ambiguous",
            f"{rejected.path}: {AMBIGUOUS_NUMBER}",
            rejected.path,
        )
    if comma_readings(rejected, rules):
        return Violation(
            "identifier_ambiguous",
            f"{rejected.path}: {AMBIGUOUS_EMAIL}",
            rejected.path,
        )
    why = f"{rejected.path} ignored: {rejected.explanation}"
    return Violation("identifier_ignored", why, rejected.path)


AMBIGUOUS_NUMBER = (
    "a national number with several readings (valid in several regions, or Argentine without "
    "its mobile 9); read as the one of its readings a customer "
    "already holds when exactly one is held, else ignored until one of them is seen in full"
)

AMBIGUOUS_EMAIL = (
    "an email with a stray comma that reads as several mailboxes (guil,ermo@: guilermo@ or "
    "guillermo@); read as the one of them a customer already holds when exactly one is held and "
    "the event carries another identifier, else ignored"
)


def complete(prepared: Prepared, statuses: Sequence[PublishStatus]) -> BatchOutcome:
    """Merge the publisher's status per record into the results, ordered by index."""
    published = [
        _published_result(index, out, status, notes)
        for index, out, status, notes in zip(
            prepared.indexes, prepared.outgoing, statuses, prepared.notes, strict=True
        )
    ]
    return BatchOutcome(sorted(prepared.rejected + published, key=lambda r: r.index))


def _published_result(
    index: int, out: Outgoing, status: PublishStatus, notes: tuple[Violation, ...]
) -> ItemResult:
    errors: tuple[Violation, ...] = ()
    if status is PublishStatus.conflict:
        # Not "already accepted": the first payload's request may have been answered 503 and
        # not stored yet (its claim holds the id until a retry of that body completes it).
        message = (
            "event_id was already sent with a different payload (stored, or in a request "
            "answered 503 that sending the same body again completes); this one is not stored"
        )
        errors = (Violation("conflict", message, "event_id"),)
        notes = ()  # about the body that was not stored
    return ItemResult(index, ItemStatus(status.value), out.event_id, errors, notes)


def check_event(
    index: int,
    raw: Any,
    tenant_id: str,
    received_at: datetime,
    max_event_bytes: int,
    bucket_key: bytes,
) -> ItemResult | tuple[Event, Outgoing]:
    """One item: rejected with every violation found, or the event and its record to publish."""
    checked = validate_item(index, raw, tenant_id, received_at, max_event_bytes)
    if isinstance(checked, ItemResult):
        return checked
    event, fingerprint = checked
    return event, to_outgoing(event, fingerprint, bucket_key)


def validate_item(
    index: int, raw: Any, tenant_id: str, received_at: datetime, max_event_bytes: int
) -> ItemResult | tuple[Event, str]:
    """One item: rejected with every violation found, or the event and its fingerprint.

    A typical event that fits its limit is taken by the compiled validator; anything it is not
    certain of is checked the full way, which finds and words every violation.
    """
    checked = _validated(index, raw, tenant_id, received_at, max_event_bytes)
    if isinstance(checked, ItemResult):
        return checked
    reserved = reserved_type(checked[0].type)
    return checked if reserved is None else _rejected(index, raw, [reserved])


def _validated(
    index: int, raw: Any, tenant_id: str, received_at: datetime, max_event_bytes: int
) -> ItemResult | tuple[Event, str]:
    if isinstance(raw, Unparseable):
        return _rejected(index, raw, [raw.violation])
    if _surely_fits(raw, max_event_bytes):
        fast = accept_compiled(raw, tenant_id, received_at)
        if fast is not None:
            return fast
    compact = safe_json(raw)
    structural = [] if compact is not None else json_violations(raw)
    if any(v.code == "nested_too_deeply" for v in structural):
        return _rejected(index, raw, structural)  # before sizing: json.dumps recurses
    size = _size_over(raw, compact, max_event_bytes)
    if size is not None:
        message = f"the event is {size} bytes; the limit is {max_event_bytes} (max_event_bytes)"
        return _rejected(index, raw, [Violation("event_too_large", message, "$")])
    try:
        return accept_checked(raw, tenant_id, received_at, structural)
    except InvalidEvent as exc:
        return _rejected(index, raw, exc.violations)


def _surely_fits(raw: Any, limit: int) -> bool:
    """Whether the event is within `limit` by `_size_over`'s rule: its compact JSON (orjson's,
    which refuses what the encoder could not write) in half of it."""
    try:
        return 2 * len(orjson.dumps(raw)) <= limit
    except orjson.JSONEncodeError:
        return False


def _size_over(raw: Any, compact: bytes | None, limit: int) -> int | None:
    """The event's `encoded_size` when it is over the limit, else None.

    `compact` is `safe_json`'s output (or None). It differs from the encoded size only where
    orjson writes a float differently from `json.dumps` (`1e-7`, not `1e-07`), by a byte or two
    per float of at least 4 bytes: an event whose `compact` fits in half the limit fits.
    """
    if compact is not None and 2 * len(compact) <= limit:
        return None
    size = encoded_size(raw)
    return size if size > limit else None


def _rejected(index: int, raw: Any, errors: Sequence[Violation]) -> ItemResult:
    return ItemResult(index, ItemStatus.rejected, _event_id_of(raw), tuple(errors))


def _event_id_of(raw: Any) -> str | None:
    """The item's event_id when it is a valid UUID, so that a client can match rejections."""
    candidate = raw.get("event_id") if isinstance(raw, dict) else None
    if not isinstance(candidate, str) or len(candidate) > 64:
        return None
    try:
        return str(UUID(candidate))
    except ValueError:
        return None


def to_outgoing(event: Event, fingerprint: str, bucket_key: bytes) -> Outgoing:
    """The record of an accepted event, keyed so that one customer keeps one partition: a
    bucket of its customer key under the deployment's `bucket_key`, never the key itself."""
    headers = (
        ("tenant_id", event.tenant_id.encode()),
        ("source_id", event.source_id.encode()),
        ("schema_version", str(event.schema_version).encode()),
    )
    key = touchpoint_key(bucket_key, event.tenant_id, customer_key(event.customer))
    record = Record(key=key, value=encode(event), headers=headers)
    return Outgoing(event.tenant_id, str(event.event_id), fingerprint, record)


def encoded_size(raw: Any) -> int:
    """An event's size for the per-event limit: its compact UTF-8 JSON, so that whitespace a
    producer adds (pretty-printing, NDJSON padding) never changes whether it fits."""
    text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) or "$"

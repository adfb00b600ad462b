"""Records on the `touchpoints` topic, in either of the two forms producers write them. Pure.

- **stored**: what the HTTP ingest wrote — a full `Event` (it has `tenant_id` and `received_at`),
  already validated at the edge, and sealed (`cem.record_seal`): only a record whose seal verifies
  is taken in this form. Without a valid seal the body is validated as a producer's event, which
  may not set server-owned fields, so a forged internal form is a dead letter (RELIABILITY S08).
- **direct**: what a channel system's own Kafka producer wrote — the same JSON event it would POST
  (an `EventIn`), keyed `tenant/customer`, with the tenant in the `tenant_id` header and optionally
  its source in the `source_id` header. It is validated here exactly as the ingest validates a
  POST (`schemas.validate.accept`), with the record's broker timestamp as `received_at`: that
  timestamp is stored in the log, so a replay derives the same times and rows (F13).

A `RecordDecoder` raises on anything invalid, and `process_batch` turns that into a dead letter
whose error lists every violated path. A direct event comes back `Unadmitted`, with its
fingerprint: the HTTP ingest's idempotency rule is applied to it next (`kernel.processing.Admission`,
on the ingest's own claims), so it can neither overwrite an accepted event nor be stored twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from cem.record_seal import is_sealed
from kernel.ports import Consumed
from kernel.processing import Unadmitted
from kernel.sealing import EventOpener, readable
from schemas.envelope import Event
from schemas.validate import accept, decode_parsed, reserved_type, violations_of
from schemas.violations import InvalidEvent, Violation

TENANT_HEADER = "tenant_id"
SOURCE_HEADER = "source_id"
# A direct producer that names no source at all is still told apart from the HTTP ingest's default.
DIRECT_SOURCE = "kafka"


@dataclass(frozen=True)
class TimedConsumed(Consumed):
    """A consumed record with its broker timestamp (epoch ms; None when the record has none).

    `kernel.ports.Consumed` does not carry the timestamp yet; once it does, this class can go.
    """

    timestamp_ms: int | None = None


def headers_of(rec: Consumed) -> dict[str, str]:
    """The record's headers as text; a header that is not UTF-8 is invalid input, not ignored."""
    found: dict[str, str] = {}
    for name, value in rec.headers:
        try:
            found[name] = (value or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("header_encoding", f"header {name} is not UTF-8", name) from None
    return found


def is_stored_form(raw: Any) -> bool:
    """The ingest's records carry the server-owned fields; a producer's event never may."""
    return isinstance(raw, dict) and "tenant_id" in raw and "received_at" in raw


@dataclass(frozen=True)
class RecordDecoder:
    """Decodes records under the platform's seal key (`seal_key`: the ingest's, see record_seal)."""

    seal_key: bytes
    # With personal data sealed (docs/erasure.md), the opener puts it back once the record's
    # seal is verified (the seal covers the bytes as stored, sealed fields included).
    opener: EventOpener | None = None

    def __call__(self, rec: Consumed) -> Event | Unadmitted:
        """The event a record holds, in either form; raises (a ValueError) when it is not one."""
        raw = orjson.loads(rec.value)
        headers = headers_of(rec)
        if is_stored_form(raw) and is_sealed(rec, self.seal_key):
            # Sealed: the ingest validated it, so its types are read, its rules not run again.
            if self.opener is not None:
                raw = readable(self.opener.open_event(raw))
            return decode_stored(raw, headers, read=decode_parsed)
        return accept_direct(raw, headers, record_time(rec))


def decode_stored(
    raw: dict[str, Any],
    headers: Mapping[str, str],
    read: Callable[[dict[str, Any]], Event] = Event.model_validate,
) -> Event:
    """A record in the stored form, validated in full unless a `read` that trusts it is given."""
    try:
        event = read(raw)
    except ValidationError as exc:  # the path list, as for every other invalid record
        raise InvalidEvent(violations_of(exc)) from None
    claimed = headers.get(TENANT_HEADER)
    if claimed is not None and claimed != event.tenant_id:
        # The ingest writes both from the credential; a disagreement means a forged record.
        raise _invalid(
            "tenant_mismatch", "tenant_id differs from the tenant_id header", "tenant_id"
        )
    return event


def accept_direct(raw: Any, headers: Mapping[str, str], received_at: datetime) -> Unadmitted:
    """Validate a producer's event like the HTTP ingest: tenant from the header, never the body."""
    tenant = headers.get(TENANT_HEADER)
    if not tenant:
        message = "a record published straight to Kafka needs a tenant_id header"
        raise _invalid("missing_header", message, f"headers.{TENANT_HEADER}")
    source = headers.get(SOURCE_HEADER)
    event, fingerprint = accept(_with_source(raw, source), tenant, received_at)
    reserved = reserved_type(event.type)
    if reserved is not None:
        raise InvalidEvent([reserved])
    if source is None and isinstance(raw, dict) and "source_id" not in raw:
        # Fingerprinted as the same body POSTed (whose source defaults alike), so a producer that
        # falls back from HTTP to Kafka re-sends a duplicate, not a conflict; stored as from Kafka.
        event = event.model_copy(update={"source_id": DIRECT_SOURCE})
    return Unadmitted(event, fingerprint)


def _with_source(raw: Any, source: str | None) -> Any:
    if not isinstance(raw, dict):
        return raw  # accept() reports that an event must be an object
    if "source_id" not in raw:
        return raw if source is None else {**raw, "source_id": source}
    if source is not None and raw["source_id"] != source:
        raise _invalid(
            "source_mismatch", "source_id differs from the source_id header", "source_id"
        )
    return raw


def record_time(rec: Consumed) -> datetime:
    """The broker timestamp of a record (CreateTime, or LogAppendTime if the topic says so)."""
    # getattr: until the port's Consumed carries the timestamp, only TimedConsumed has one.
    millis = getattr(rec, "timestamp_ms", None)
    if millis is None or millis < 0:
        raise _invalid("no_timestamp", "the record has no broker timestamp", "timestamp")
    # Integer arithmetic: a float division could land a microsecond off, and replays must match.
    return datetime.fromtimestamp(millis // 1000, tz=UTC) + timedelta(milliseconds=millis % 1000)


def _invalid(code: str, message: str, path: str) -> InvalidEvent:
    return InvalidEvent([Violation(code, message, path)])

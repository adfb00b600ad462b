"""Idempotent publishing on any EventLog, with the idempotency claims kept beside it.

The embedded publisher makes the claim and the append one SQLite transaction. Kafka and the
claim store cannot share a transaction, so `IdempotentPublisher` orders the two steps instead:

1. **claim**: every (tenant_id, event_id) not seen before is recorded as `pending` with its
   fingerprint, durably, before anything is sent. The first claim fixes the fingerprint.
2. **lock** the batch's claims, then decide per event from what is stored:
   - another fingerprint → `conflict` (recorded; the original is untouched);
   - same fingerprint and `published` → `duplicate`;
   - same fingerprint and `pending` → publish (again): a pending claim means an earlier attempt
     crashed or the log failed before its acknowledgement, so the record may or may not be in
     the log. Publishing again is safe because the warehouse deduplicates by event_id.
3. **append** the accepted records and wait for the log's acknowledgement;
4. **mark** them `published` and release the lock (one commit); only then answer `accepted`.

Why this never loses an acknowledged event and never reports `duplicate` for an event that is
not in the log:
- `published` is written only after the log acknowledged the append, in the same transaction that
  holds the lock; if the append fails, that transaction rolls back and the claim stays `pending`.
  So `duplicate` (which needs `published`) implies the record is in the log.
- The caller answers 2xx only after step 4 returned, i.e. after the acknowledgement. A crash at
  any earlier point leaves `pending` (or nothing, before step 1): the client got no 2xx, and its
  retry publishes again. A crash between the acknowledgement and step 4 leaves `pending` too: the
  retry appends a second copy, which the warehouse's dedup by event_id absorbs (F09) — a copy,
  never a loss.
- Because the pending claim is durable before the append, a different payload under the same id
  is a conflict even while the first one's fate is unknown: two versions of one event never
  both reach the log.
- The lock (held across the append) serialises concurrent publishers of the same event: the
  second one waits, then finds `published` and reports `duplicate`, so concurrent submissions
  store the event once. Locks are taken in (tenant_id, event_id) order, so batches that overlap
  cannot deadlock, and waiting is bounded by `timeout_s` (then LogUnavailable → 503, retry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from cem.adapters.memory_log import Decision, accepted_events
from cem.record_seal import sealed
from kernel.ports import TOUCHPOINTS_TOPIC, EventLog, Outgoing, PublishStatus, Record

Identity = tuple[str, str]
"""(tenant_id, event_id): what makes an event the same event."""


@dataclass(frozen=True)
class Claim:
    """What the index knows of one identity: its first fingerprint, and whether it is in the log."""

    fingerprint: str
    published: bool


@dataclass(frozen=True)
class ConflictSeen:
    """A submission that reused an event id with another payload."""

    event: Outgoing
    original_fingerprint: str


class ClaimLock(Protocol):
    """Claims held exclusively until released; changes apply only if the holder finishes."""

    def claims(self) -> Mapping[Identity, Claim]:
        """The stored claims of the locked identities."""
        ...

    def mark_published(self, identities: Sequence[Identity]) -> None:
        """Record that the log acknowledged these identities' records."""
        ...

    def record_conflicts(self, conflicts: Sequence[ConflictSeen]) -> None: ...


class IdempotencyIndex(Protocol):
    """Durable (tenant_id, event_id) claims with a fingerprint and a pending/published state."""

    def claim(self, events: Sequence[Outgoing]) -> None:
        """Durably record `pending` claims for identities never seen; existing ones stay as they are."""
        ...

    def lock(
        self, identities: Sequence[Identity], timeout_s: float
    ) -> AbstractContextManager[ClaimLock]:
        """Hold these claims against other publishers; LogUnavailable after `timeout_s` waiting.

        Changes made through the lock take effect when the block ends normally, none if it raises.
        """
        ...

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's recorded conflicts, newest first (the shape of `conflict_row`)."""
        ...

    def close(self) -> None: ...


def first_sightings(events: Sequence[Outgoing]) -> list[Outgoing]:
    """The first event of each identity, in batch order."""
    firsts: dict[Identity, Outgoing] = {}
    for event in events:
        firsts.setdefault((event.tenant_id, event.event_id), event)
    return list(firsts.values())


def decide(events: Sequence[Outgoing], stored: Mapping[Identity, Claim]) -> list[Decision]:
    """Per event: conflict if the fingerprint differs from the claimed one; accepted for the first
    sighting of a claim that is not published yet; duplicate otherwise (published, or accepted
    earlier in this batch)."""
    accepted: set[Identity] = set()
    decisions = []
    for event in events:
        identity = (event.tenant_id, event.event_id)
        claim = stored.get(identity) or Claim(event.fingerprint, published=False)
        if claim.fingerprint != event.fingerprint:
            decisions.append(Decision(PublishStatus.conflict, claim.fingerprint))
        elif claim.published or identity in accepted:
            decisions.append(Decision(PublishStatus.duplicate, claim.fingerprint))
        else:
            accepted.add(identity)
            decisions.append(Decision(PublishStatus.accepted))
    return decisions


class IdempotentPublisher:
    """A Publisher on any EventLog, idempotent through an IdempotencyIndex (see the module doc)."""

    def __init__(
        self,
        log: EventLog,
        index: IdempotencyIndex,
        topic: str = TOUCHPOINTS_TOPIC,
        *,
        timeout_s: float = 5.0,
        seal_key: bytes | None = None,
    ) -> None:
        self.log, self.index, self.topic, self.timeout_s = log, index, topic, timeout_s
        # With a key, every record is sealed: consumers then trust its stored form (record_seal).
        self.seal_key = seal_key

    def _sealed(self, record: Record) -> Record:
        return record if self.seal_key is None else sealed(record, self.seal_key)

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        if not events:
            return []
        firsts = first_sightings(events)
        self.index.claim(firsts)
        identities = sorted((e.tenant_id, e.event_id) for e in firsts)
        with self.index.lock(identities, self.timeout_s) as held:
            decisions = decide(events, held.claims())
            accepted = accepted_events(events, decisions)
            if accepted:
                self.log.append(self.topic, [self._sealed(e.record) for e in accepted])
            held.mark_published([(e.tenant_id, e.event_id) for e in accepted])
            held.record_conflicts(
                [
                    ConflictSeen(e, d.original or "")
                    for e, d in zip(events, decisions, strict=True)
                    if d.status is PublishStatus.conflict
                ]
            )
        return [d.status for d in decisions]

    def conflicts(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's recorded conflicts, newest first."""
        return self.index.conflicts(tenant_id, limit)

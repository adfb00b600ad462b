"""What the identity service needs of the store its events live in.

The resolver is an eventsourcing application: the library builds its recorder from persistence
settings. What the library cannot do is read many aggregates' new events in one query, which every
batch of resolutions does; each store's adapter does it in its own SQL
(`cem.adapters.sqlite_identity_store`, `cem.adapters.postgres_identity_store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent

# What `select_since` reads: (aggregate id, version already known; 0 for none) for each aggregate.
Versions = Sequence[tuple[UUID, int]]


class IdentityStore(Protocol):
    """Where identity's events are kept: the library's persistence settings, and bulk reads of
    the events recorded since given versions on the recorder those settings build."""

    def persistence_env(self) -> dict[str, str]:
        """The eventsourcing persistence settings (`PERSISTENCE_MODULE` ...) of this store."""
        ...

    def select_since(
        self, recorder: AggregateRecorder, versions: Versions
    ) -> dict[int, list[StoredEvent]]:
        """The stored events of many aggregates after the version given for each, oldest first,
        by the aggregate id's `int`; aggregates without such events are absent."""
        ...


def group_by_aggregate(events: Sequence[StoredEvent]) -> dict[int, list[StoredEvent]]:
    """Stored events by their aggregate id's `int`, each aggregate's oldest first."""
    found: dict[int, list[StoredEvent]] = {}
    for event in events:
        key = event.originator_id.int if isinstance(event.originator_id, UUID) else None
        found.setdefault(key or UUID(str(event.originator_id)).int, []).append(event)
    for grouped in found.values():
        grouped.sort(key=lambda e: e.originator_version)
    return found

"""What the identity service needs of the store its events live in.

The resolver is an eventsourcing application: the library builds its recorder from persistence
settings. What the library cannot do is read many aggregates' new events in one query, which every
batch of resolutions does; each store's adapter does it in its own SQL
(`cem.adapters.sqlite_identity_store`, `cem.adapters.postgres_identity_store`).

Nor does the library keep the one record each resolution leaves: the touchpoint's `Filing`. Each
adapter's recorder (a subclass of the library's, named in its persistence settings) keeps them in a
table of its own, keyed by (tenant, event id), and inserts the `filings=` given to
`Application.save` in the transaction that records the aggregates' events: a filing exists exactly
when the resolution's changes do, and a second filing of one touchpoint conflicts like any
concurrent write (`IntegrityError`), so a redelivered touchpoint is filed once.

The same recorder keeps the `SlipKey` rows given as `slips=` (the email indexes under each slip
key, services/identity/slips.py) in a second table, inserted in the same transaction: a key is
filed exactly when the index it names is created, at the next place under its key, so two
replicas filing emails one slip apart at once conflict instead of missing each other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent

from services.identity.domain import Filing, SlipKey

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

    def select_filings(
        self, recorder: AggregateRecorder, tenant_id: str, event_ids: Sequence[str]
    ) -> dict[str, Filing]:
        """The tenant's filings of these touchpoints (in one query per few thousand), by event id;
        touchpoints never filed are absent."""
        ...

    def select_slips(
        self, recorder: AggregateRecorder, tenant_id: str, key_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """The tenant's email index ids filed under these slip key ids (`SlipKey`), by key id, in
        no particular order (in one query per few thousand); keys with none are absent."""
        ...


def slip_rows(slips: Sequence[SlipKey]) -> list[tuple[str, str, int, str]]:
    """(tenant, key id, place, index id) of each row, sorted (two replicas insert in one
    order). A row whose (tenant, key id, place) is taken fails as a concurrent write
    (`IntegrityError`), like a filing: the resolution runs again and reads the other's."""
    return sorted((s.tenant_id, s.key_id, s.seq, s.index_id) for s in slips)


def group_by_aggregate(events: Sequence[StoredEvent]) -> dict[int, list[StoredEvent]]:
    """Stored events by their aggregate id's `int`, each aggregate's oldest first."""
    found: dict[int, list[StoredEvent]] = {}
    for event in events:
        key = event.originator_id.int if isinstance(event.originator_id, UUID) else None
        found.setdefault(key or UUID(str(event.originator_id)).int, []).append(event)
    for grouped in found.values():
        grouped.sort(key=lambda e: e.originator_version)
    return found


def ignored_as_text(filing: Filing) -> str | None:
    """How both adapters store a filing's ignored notes: a JSON array, or NULL for none."""
    return json.dumps(list(filing.ignored)) if filing.ignored else None


def ignored_from_text(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text) or ()) if text else ()

"""The identity store of the embedded mode: eventsourcing's SQLite persistence, read in bulk.

The library reads its persistence settings from an environment mapping (`PERSISTENCE_MODULE`,
`SQLITE_DBNAME`); this adapter builds that mapping and the resolver passes it to the library
explicitly: `os.environ` is never read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder

from services.identity.ports import Versions, group_by_aggregate

# Seconds a writer waits for the SQLite write lock before a conflict is reported.
SQLITE_LOCK_TIMEOUT_S = 10
# Aggregates asked for in one query (SQLite allows 32,766 parameters; two per aggregate).
SELECT_CHUNK = 2_000


@dataclass(frozen=True)
class SqliteIdentityStore:
    """A file path, or an SQLite URI such as file:name?mode=memory&cache=shared for tests."""

    dbname: str | Path

    def persistence_env(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.dbname),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
        }

    def select_since(
        self, recorder: AggregateRecorder, versions: Versions
    ) -> dict[int, list[StoredEvent]]:
        assert isinstance(recorder, SQLiteAggregateRecorder), "built from persistence_env"
        events: list[StoredEvent] = []
        for start in range(0, len(versions), SELECT_CHUNK):
            events += _select(recorder, versions[start : start + SELECT_CHUNK])
        return group_by_aggregate(events)


def _select(recorder: SQLiteAggregateRecorder, chunk: Versions) -> list[StoredEvent]:
    # CROSS JOIN keeps the wanted rows outside: one primary-key range search per aggregate.
    statement = (
        f"WITH wanted(id, v) AS (VALUES {','.join(['(?,?)'] * len(chunk))}) "
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        f"FROM wanted CROSS JOIN {recorder.events_table_name} AS e "
        "ON e.originator_id = wanted.id AND e.originator_version > wanted.v"
    )
    hexes = [aggregate_id.hex for aggregate_id, _ in chunk]  # ids are stored as hex text
    ids: dict[str, UUID] = dict(
        zip(hexes, (aggregate_id for aggregate_id, _ in chunk), strict=True)
    )
    params = [
        p for hex_id, (_, version) in zip(hexes, chunk, strict=True) for p in (hex_id, version)
    ]
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [StoredEvent(ids[row[0]], row[1], row[2], row[3]) for row in rows]

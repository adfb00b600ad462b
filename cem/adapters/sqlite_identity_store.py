"""The identity store of the embedded mode: eventsourcing's SQLite persistence, read in bulk.

The library reads its persistence settings from an environment mapping (`PERSISTENCE_MODULE`,
`SQLITE_DBNAME`); this adapter builds that mapping and the resolver passes it to the library
explicitly: `os.environ` is never read or written. The mapping names this module's recorder, the
library's own with the filings and slip keys tables beside its events (see
`services.identity.ports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic

from services.identity.at_rest import cipher_env
from services.identity.domain import LEGACY_FILED_TOPIC, Filing, SlipKey
from services.identity.ports import (
    Versions,
    group_by_aggregate,
    ignored_as_text,
    ignored_from_text,
    slip_rows,
)

# Seconds a writer waits for the SQLite write lock before a conflict is reported.
SQLITE_LOCK_TIMEOUT_S = 10
# Aggregates asked for in one query (SQLite allows 32,766 parameters; two per aggregate).
SELECT_CHUNK = 2_000

FILINGS_TABLE = "identity_filings"
_CREATE_FILINGS = (
    f"CREATE TABLE IF NOT EXISTS {FILINGS_TABLE} ("
    "tenant_id TEXT NOT NULL, event_id TEXT NOT NULL, home_id TEXT NOT NULL, "
    "source TEXT NOT NULL, ignored TEXT, PRIMARY KEY (tenant_id, event_id)) WITHOUT ROWID"
)
_INSERT_FILING = f"INSERT INTO {FILINGS_TABLE} VALUES (?,?,?,?,?)"
SLIPS_TABLE = "identity_email_slips"
_CREATE_SLIPS = (
    f"CREATE TABLE IF NOT EXISTS {SLIPS_TABLE} ("
    "tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "index_id TEXT NOT NULL, PRIMARY KEY (tenant_id, key_id, seq)) WITHOUT ROWID"
)
# A place taken by another writer fails the transaction (see `ports.slip_rows`).
_INSERT_SLIP = f"INSERT INTO {SLIPS_TABLE} VALUES (?,?,?,?)"


def _copy_legacy_filings(events_table: str) -> str:
    """The filings an older store kept as aggregates' events (JSON states, the library's
    transcoder), into the filings table."""
    return (
        f"INSERT OR IGNORE INTO {FILINGS_TABLE} "
        "SELECT json_extract(j, '$.tenant_id'), json_extract(j, '$.evidence_event_id'), "
        "json_extract(j, '$.home_id'), json_extract(j, '$.source'), json_extract(j, '$.ignored') "
        f"FROM (SELECT CAST(state AS TEXT) AS j FROM {events_table} WHERE topic = ?)"
    )


class SqliteIdentityRecorder(SQLiteApplicationRecorder):
    """The library's recorder, also inserting the `filings` and `slips` it is given in the
    events' transaction."""

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute(_CREATE_SLIPS)
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (FILINGS_TABLE,))
            if c.fetchone() is not None:
                return
        # Created and filled from the older filings at once: a store whose table exists has them
        # all (two processes doing it together copy twice, the second copy ignored).
        with self.datastore.transaction(commit=True) as c:
            c.execute(_CREATE_FILINGS)
            c.execute(_copy_legacy_filings(self.events_table_name), (LEGACY_FILED_TOPIC,))

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        filings: Sequence[Filing] = kwargs.get("filings") or ()
        if filings:
            c.executemany(_INSERT_FILING, [_filing_row(f) for f in filings])
        slips: Sequence[SlipKey] = kwargs.get("slips") or ()
        if slips:
            c.executemany(_INSERT_SLIP, slip_rows(slips))
        return super()._insert_events(c, stored_events, **kwargs)


def _filing_row(filing: Filing) -> tuple[str, str, str, str, str | None]:
    return filing.tenant_id, filing.event_id, filing.home_id, filing.source, ignored_as_text(filing)


@dataclass(frozen=True)
class SqliteIdentityStore:
    """A file path, or an SQLite URI such as file:name?mode=memory&cache=shared for tests;
    `cipher_key`: events and snapshots sealed under it (`services.identity.at_rest`)."""

    dbname: str | Path
    cipher_key: bytes | None = field(default=None, repr=False)

    def persistence_env(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": get_topic(SqliteIdentityRecorder),
            "SQLITE_DBNAME": str(self.dbname),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
            **cipher_env(self.cipher_key),
        }

    def select_since(
        self, recorder: AggregateRecorder, versions: Versions
    ) -> dict[int, list[StoredEvent]]:
        assert isinstance(recorder, SqliteIdentityRecorder), "built from persistence_env"
        events: list[StoredEvent] = []
        for start in range(0, len(versions), SELECT_CHUNK):
            events += _select(recorder, versions[start : start + SELECT_CHUNK])
        return group_by_aggregate(events)

    def select_filings(
        self, recorder: AggregateRecorder, tenant_id: str, event_ids: Sequence[str]
    ) -> dict[str, Filing]:
        rows = _tenant_rows(
            recorder, FILINGS_TABLE, "event_id, home_id, source, ignored", tenant_id, event_ids
        )
        return {
            event_id: Filing(tenant_id, event_id, home_id, source, ignored_from_text(ignored))
            for event_id, home_id, source, ignored in rows
        }

    def select_slips(
        self, recorder: AggregateRecorder, tenant_id: str, key_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key_id, index_id in _tenant_rows(
            recorder, SLIPS_TABLE, "key_id, index_id", tenant_id, key_ids
        ):
            found.setdefault(key_id, []).append(index_id)
        return found


def _tenant_rows(
    recorder: AggregateRecorder, table: str, columns: str, tenant_id: str, keys: Sequence[str]
) -> list[Any]:
    """The tenant's rows of one of the adapter's tables whose first column (`columns`' first)
    is one of `keys`, a chunk of keys per query."""
    assert isinstance(recorder, SqliteIdentityRecorder), "built from persistence_env"
    key = columns.split(",")[0]
    rows: list[Any] = []
    for start in range(0, len(keys), SELECT_CHUNK):
        chunk = keys[start : start + SELECT_CHUNK]
        statement = (
            f"SELECT {columns} FROM {table} "
            f"WHERE tenant_id = ? AND {key} IN ({','.join('?' * len(chunk))})"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [tenant_id, *chunk])
            rows += cursor.fetchall()
    return rows


def _select(recorder: SQLiteApplicationRecorder, chunk: Versions) -> list[StoredEvent]:
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

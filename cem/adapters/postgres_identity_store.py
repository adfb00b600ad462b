"""The identity store of the distributed mode: eventsourcing's PostgreSQL persistence, read in
bulk. Every replica of every service shares it (the library's optimistic concurrency keeps them
consistent). psycopg is reached through `cem.adapters.postgres`, its one importer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from pydantic import SecretStr

from cem.adapters.postgres import compose_sql, conninfo_parts
from services.identity.ports import Versions, group_by_aggregate

# Aggregates asked for in one query (the ids travel as two array parameters).
SELECT_CHUNK = 2_000
# LATERAL: one primary-key range scan per aggregate, never a scan of the whole table (which a
# plain join gets as soon as the wanted list is long).
_SELECT_SINCE = (
    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
    "FROM unnest(%s::{id_type}[], %s::bigint[]) AS wanted(id, v) "
    "CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state "
    "FROM {schema}.{table} WHERE originator_id = wanted.id AND originator_version > wanted.v "
    "ORDER BY originator_version) AS e"
)


@dataclass(frozen=True)
class PostgresIdentityStore:
    """A libpq connection string or URL; tables in `schema` (default: the server's)."""

    dsn: str | SecretStr
    schema: str = ""
    pool_size: int = 5

    def persistence_env(self) -> dict[str, str]:
        """The DSN split into the keys the library expects."""
        secret = self.dsn.get_secret_value() if isinstance(self.dsn, SecretStr) else self.dsn
        parts = conninfo_parts(secret)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.get("dbname", "postgres"),
            "POSTGRES_HOST": parts.get("host", "localhost"),
            "POSTGRES_PORT": parts.get("port", "5432"),
            "POSTGRES_USER": parts.get("user", "postgres"),
            "POSTGRES_PASSWORD": parts.get("password", ""),
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_CONNECT_TIMEOUT": parts.get("connect_timeout", "10"),
        }
        if self.schema:
            env["POSTGRES_SCHEMA"] = self.schema
        return env

    def select_since(
        self, recorder: AggregateRecorder, versions: Versions
    ) -> dict[int, list[StoredEvent]]:
        assert type(recorder).__module__ == "eventsourcing.postgres", "built from persistence_env"
        events: list[StoredEvent] = []
        for start in range(0, len(versions), SELECT_CHUNK):
            events += _select(recorder, versions[start : start + SELECT_CHUNK])
        return group_by_aggregate(events)


def _select(recorder: Any, chunk: Versions) -> list[StoredEvent]:
    datastore = recorder.datastore
    statement = compose_sql(
        _SELECT_SINCE,
        fragments={"id_type": datastore.originator_id_type},
        names={"schema": datastore.schema, "table": recorder.events_table_name},
    )
    as_text = datastore.originator_id_type != "uuid"
    ids = [str(i) if as_text else i for i, _ in chunk]
    with datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, (ids, [v for _, v in chunk]), prepare=True)
        rows = cursor.fetchall()
    return [
        StoredEvent(
            row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
        )
        for row in rows
    ]

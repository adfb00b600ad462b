"""The identity store of the distributed mode: eventsourcing's PostgreSQL persistence, read in
bulk. Every replica of every service shares it (the library's optimistic concurrency keeps them
consistent). psycopg is reached through `cem.adapters.postgres` and the library; the settings name
this module's recorder, the library's own with the filings and slip keys tables beside its events
(see `services.identity.ports`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from pydantic import SecretStr

from cem.adapters.postgres import compose_sql, conninfo_parts
from services.identity.at_rest import cipher_env
from services.identity.domain import LEGACY_FILED_TOPIC, Filing
from services.identity.ports import (
    Versions,
    group_by_aggregate,
    ignored_as_text,
    ignored_from_text,
    slip_rows,
)

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
_CREATE_FILINGS = (
    "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
    "tenant_id text NOT NULL, event_id text NOT NULL, home_id text NOT NULL, "
    "source text NOT NULL, ignored text, PRIMARY KEY (tenant_id, event_id))"
)
# One statement for a whole transaction's filings (arrays travel as five parameters).
_INSERT_FILINGS = (
    "INSERT INTO {schema}.{table} "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
)
# The filings an older store kept as aggregates' events (JSON states, the library's transcoder).
_COPY_LEGACY_FILINGS = (
    "INSERT INTO {schema}.{table} "
    "SELECT j->>'tenant_id', j->>'evidence_event_id', j->>'home_id', j->>'source', "
    "CASE WHEN jsonb_typeof(j->'ignored') = 'array' THEN (j->'ignored')::text END "
    "FROM (SELECT convert_from(state, 'UTF8')::jsonb AS j FROM {schema}.{events} "
    "WHERE topic = %s) AS legacy ON CONFLICT DO NOTHING"
)
_CREATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"
_FILINGS_TABLES = "SELECT count(*) AS found FROM pg_tables WHERE schemaname = %s AND tablename = %s"
_CREATE_SLIPS = (
    "CREATE TABLE IF NOT EXISTS {schema}.{slips} ("
    "tenant_id text NOT NULL, key_id text NOT NULL, seq integer NOT NULL, "
    "index_id text NOT NULL, PRIMARY KEY (tenant_id, key_id, seq))"
)
# A place taken by another replica fails the transaction (see `ports.slip_rows`).
_INSERT_SLIPS = (
    "INSERT INTO {schema}.{slips} "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::integer[], %s::text[])"
)
_SELECT_SLIPS = "SELECT key_id, index_id FROM {schema}.{slips} WHERE tenant_id = %s AND key_id = ANY(%s::text[])"
_SELECT_FILINGS = (
    "SELECT event_id, home_id, source, ignored FROM {schema}.{table} "
    "WHERE tenant_id = %s AND event_id = ANY(%s::text[])"
)


class PostgresIdentityRecorder(PostgresApplicationRecorder):
    """The library's recorder, also inserting the `filings` and `slips` it is given in the
    events' transaction."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.filings_table_name = events_table_name.removesuffix("_events") + "_filings"
        self.slips_table_name = events_table_name.removesuffix("_events") + "_email_slips"

    def statement(self, template: str) -> Any:
        return compose_sql(
            template,
            fragments={},
            names={
                "schema": self.datastore.schema,
                "table": self.filings_table_name,
                "events": self.events_table_name,
                "slips": self.slips_table_name,
            },
        )

    def _create_table(self, curs: Any) -> None:
        # Replicas starting together take turns (the lock ends with the transaction), so only the
        # first sees the table absent and copies; the others find it made and filled.
        curs.execute(_CREATE_LOCK, (f"{self.datastore.schema}.{self.filings_table_name}",))
        curs.execute(_FILINGS_TABLES, (self.datastore.schema, self.filings_table_name))
        absent = curs.fetchone()["found"] == 0
        super()._create_table(curs)
        curs.execute(self.statement(_CREATE_SLIPS))
        if absent:  # created and filled from the older filings in one transaction
            curs.execute(self.statement(_CREATE_FILINGS))
            curs.execute(self.statement(_COPY_LEGACY_FILINGS), (LEGACY_FILED_TOPIC,))

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Sorted, so two replicas filing some of the same touchpoints wait on each other in the
        # same order (a conflict, not a deadlock).
        filings = sorted(kwargs.get("filings") or (), key=lambda f: (f.tenant_id, f.event_id))
        if filings:
            columns = [
                [f.tenant_id for f in filings],
                [f.event_id for f in filings],
                [f.home_id for f in filings],
                [f.source for f in filings],
                [ignored_as_text(f) for f in filings],
            ]
            # A nested pipeline syncs as it ends: a filing another replica wrote first fails here
            # as an IntegrityError (a concurrent write, resolved again by the caller), not later
            # as an aborted pipeline, which the library would retry as if the server were down.
            with curs.connection.pipeline():
                curs.execute(self.statement(_INSERT_FILINGS), columns, prepare=True)
        slips = slip_rows(kwargs.get("slips") or ())
        if slips:
            columns = [list(column) for column in zip(*slips, strict=True)]
            with curs.connection.pipeline():
                curs.execute(self.statement(_INSERT_SLIPS), columns, prepare=True)
        super()._insert_events(curs, stored_events, **kwargs)


@dataclass(frozen=True)
class PostgresIdentityStore:
    """A libpq connection string or URL; tables in `schema` (default: the server's);
    `cipher_key`: events and snapshots sealed under it (`services.identity.at_rest`)."""

    dsn: str | SecretStr
    schema: str = ""
    pool_size: int = 5
    cipher_key: bytes | None = field(default=None, repr=False)

    def persistence_env(self) -> dict[str, str]:
        """The DSN split into the keys the library expects."""
        secret = self.dsn.get_secret_value() if isinstance(self.dsn, SecretStr) else self.dsn
        parts = conninfo_parts(secret)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": get_topic(PostgresIdentityRecorder),
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
        return env | cipher_env(self.cipher_key)

    def select_since(
        self, recorder: AggregateRecorder, versions: Versions
    ) -> dict[int, list[StoredEvent]]:
        assert isinstance(recorder, PostgresIdentityRecorder), "built from persistence_env"
        events: list[StoredEvent] = []
        for start in range(0, len(versions), SELECT_CHUNK):
            events += _select(recorder, versions[start : start + SELECT_CHUNK])
        return group_by_aggregate(events)

    def select_filings(
        self, recorder: AggregateRecorder, tenant_id: str, event_ids: Sequence[str]
    ) -> dict[str, Filing]:
        return {
            row["event_id"]: Filing(
                tenant_id,
                row["event_id"],
                row["home_id"],
                row["source"],
                ignored_from_text(row["ignored"]),
            )
            for row in _tenant_rows(recorder, _SELECT_FILINGS, tenant_id, event_ids)
        }

    def select_slips(
        self, recorder: AggregateRecorder, tenant_id: str, key_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for row in _tenant_rows(recorder, _SELECT_SLIPS, tenant_id, key_ids):
            found.setdefault(row["key_id"], []).append(row["index_id"])
        return found


def _tenant_rows(
    recorder: AggregateRecorder, template: str, tenant_id: str, keys: Sequence[str]
) -> list[Any]:
    """The rows one of the adapter's statements (tenant, then an array of keys) reads."""
    assert isinstance(recorder, PostgresIdentityRecorder), "built from persistence_env"
    if not keys:
        return []
    statement = recorder.statement(template)
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, (tenant_id, list(keys)), prepare=True)
        return list(cursor.fetchall())


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

"""How the identity store is built: eventsourcing on SQLite (embedded) or PostgreSQL (distributed).

The eventsourcing library reads its persistence settings from an environment mapping
(`PERSISTENCE_MODULE`, `SQLITE_DBNAME`, `POSTGRES_*`). We build that mapping from the validated
settings and pass it to the application explicitly; `os.environ` is never read or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import phonenumbers
from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder
from pydantic import Field, SecretStr, field_validator, model_validator

from kernel.private_files import private_file
from kernel.settings import CoreSettings
from services.identity.rules import DEFAULT_PHONE_REGION, IdentityRules

if TYPE_CHECKING:  # the resolver builds on this module's readers: imported when building it
    from services.identity.resolver import IdentityResolver

# Seconds a writer waits for the SQLite write lock before a conflict is reported.
SQLITE_LOCK_TIMEOUT_S = 10
# Aggregates an identity resolver keeps in memory between commands (see state.AggregateCache).
DEFAULT_CACHE_SIZE = 50_000
# The key of the resolver's cache size in its persistence settings (absent: DEFAULT_CACHE_SIZE).
CACHE_SIZE_KEY = "IDENTITY_CACHE_SIZE"
# Aggregates asked for in one query (SQLite allows 32,766 parameters; two per aggregate).
SELECT_CHUNK = 2_000


class IdentitySettings(CoreSettings):
    """Where identity lives and which rules resolve it. Env prefix CEM_."""

    identity_rules_file: Path | None = None
    # Where national phone numbers (`612 345 678`) are read when a tenant's rules name no region
    # (ISO 3166 alpha-2). Spain by default: the product's market. CEM_DEFAULT_REGION.
    default_region: str = DEFAULT_PHONE_REGION
    identity_sqlite_path: Path | None = None  # default: <data_dir>/identity.sqlite
    identity_postgres_schema: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]*$|^$")
    identity_postgres_pool_size: int = Field(default=5, ge=1, le=100)
    # Aggregates kept in memory between commands, brought up to date from the store on every read
    # (one query per batch), so replicas stay exact; 0 = none (every read replays from the store).
    identity_cache_size: int = Field(default=DEFAULT_CACHE_SIZE, ge=0)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"CEM_DEFAULT_REGION: unknown phone region {value!r}; use an ISO 3166 code such as ES"
            )
        return value.upper()

    @model_validator(mode="after")
    def _rules_file_exists(self) -> IdentitySettings:
        if self.identity_rules_file and not self.identity_rules_file.is_file():
            raise ValueError(f"CEM_IDENTITY_RULES_FILE: no such file {self.identity_rules_file}")
        return self


def sqlite_env(dbname: str | Path) -> dict[str, str]:
    """A file path, or an SQLite URI such as file:name?mode=memory&cache=shared for tests."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(dbname),
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
    }


def postgres_env(dsn: str | SecretStr, schema: str = "", pool_size: int = 5) -> dict[str, str]:
    """A libpq connection string or URL, split into the keys the library expects."""
    from psycopg.conninfo import conninfo_to_dict  # the PostgreSQL client is imported only here

    secret = dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn
    parts = {k: str(v) for k, v in conninfo_to_dict(secret).items() if v is not None}
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.get("dbname", "postgres"),
        "POSTGRES_HOST": parts.get("host", "localhost"),
        "POSTGRES_PORT": parts.get("port", "5432"),
        "POSTGRES_USER": parts.get("user", "postgres"),
        "POSTGRES_PASSWORD": parts.get("password", ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": parts.get("connect_timeout", "10"),
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


def persistence_env(settings: IdentitySettings) -> dict[str, str]:
    if settings.mode == "distributed":
        env = postgres_env(
            settings.postgres_dsn,
            settings.identity_postgres_schema,
            settings.identity_postgres_pool_size,
        )
    else:
        path = settings.identity_sqlite_path or settings.data_dir / "identity.sqlite"
        private_file(path)  # personal data: the owner's alone
        env = sqlite_env(path)
    # The resolver keeps its own cache (state.AggregateCache: many aggregates per query, brought up
    # to date on every read); the library's (one query and a deep copy per read) is not used.
    env[CACHE_SIZE_KEY] = str(settings.identity_cache_size)
    return env


def select_since(
    recorder: AggregateRecorder, versions: Sequence[tuple[UUID, int]]
) -> dict[int, list[StoredEvent]]:
    """The stored events of many aggregates after the version given for each (0: all), oldest
    first, by the aggregate id's `int`, in one query per SELECT_CHUNK aggregates. Aggregates
    without such events are absent."""
    found: dict[int, list[StoredEvent]] = {}
    for start in range(0, len(versions), SELECT_CHUNK):
        for event in _select_chunk(recorder, versions[start : start + SELECT_CHUNK]):
            key = event.originator_id.int if isinstance(event.originator_id, UUID) else None
            found.setdefault(key or UUID(str(event.originator_id)).int, []).append(event)
    for events in found.values():
        events.sort(key=lambda e: e.originator_version)
    return found


def _select_chunk(
    recorder: AggregateRecorder, chunk: Sequence[tuple[UUID, int]]
) -> list[StoredEvent]:
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _select_sqlite(recorder, chunk)
    if type(recorder).__module__ == "eventsourcing.postgres":
        return _select_postgres(recorder, chunk)
    # Any other persistence (e.g. the library's in-memory one): one query per aggregate.
    return [e for i, v in chunk for e in recorder.select_events(i, gt=v or None)]


def _select_sqlite(
    recorder: SQLiteAggregateRecorder, chunk: Sequence[tuple[UUID, int]]
) -> list[StoredEvent]:
    # CROSS JOIN keeps the wanted rows outside: one primary-key range search per aggregate.
    statement = (
        f"WITH wanted(id, v) AS (VALUES {','.join(['(?,?)'] * len(chunk))}) "
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        f"FROM wanted CROSS JOIN {recorder.events_table_name} AS e "
        "ON e.originator_id = wanted.id AND e.originator_version > wanted.v"
    )
    hexes = [aggregate_id.hex for aggregate_id, _ in chunk]  # ids are stored as hex text
    ids = dict(zip(hexes, (aggregate_id for aggregate_id, _ in chunk), strict=True))
    params = [
        p for hex_id, (_, version) in zip(hexes, chunk, strict=True) for p in (hex_id, version)
    ]
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [StoredEvent(ids[row[0]], row[1], row[2], row[3]) for row in rows]


def _select_postgres(recorder: Any, chunk: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
    from psycopg.sql import SQL, Identifier  # the PostgreSQL client is imported only here

    datastore = recorder.datastore
    # LATERAL: one primary-key range scan per aggregate, never a scan of the whole table (which a
    # plain join gets as soon as the wanted list is long).
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic, e.state "
        "FROM unnest(%s::{id_type}[], %s::bigint[]) AS wanted(id, v) "
        "CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state "
        "FROM {schema}.{table} WHERE originator_id = wanted.id AND originator_version > wanted.v "
        "ORDER BY originator_version) AS e"
    ).format(
        id_type=SQL(datastore.originator_id_type),
        schema=Identifier(datastore.schema),
        table=Identifier(recorder.events_table_name),
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


def load_rules(settings: IdentitySettings) -> IdentityRules:
    """The rules file's rules (or the defaults), reading phones in `default_region` wherever the
    rules do not name a region."""
    path = settings.identity_rules_file
    rules = IdentityRules() if path is None else IdentityRules.from_file(path)
    return rules.with_default_region(settings.default_region)


def build_identity(
    settings: IdentitySettings, *, rules: IdentityRules | None = None
) -> IdentityResolver:
    """The identity resolver for the configured mode. Call from the composition root."""
    from services.identity.resolver import IdentityResolver

    return IdentityResolver(persistence_env(settings), rules or load_rules(settings))

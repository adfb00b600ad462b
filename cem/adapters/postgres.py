"""PostgreSQL connections for the distributed mode's adapters: the only module importing psycopg.

The key store (`postgres_keys.py`) and the idempotency index (`postgres_idempotency.py`) share this
helper rather than each importing psycopg: one place owns the pool, the timeouts, the schema
bootstrap and the mapping of driver errors to the port's `LogUnavailable`, and both adapters stay
plain SQL. A `Cursor` is what they receive; they never see a connection.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import ConnectionPool

from kernel.ports import LogUnavailable

Cursor = psycopg.Cursor[tuple[Any, ...]]


class PostgresUnavailable(LogUnavailable):
    """PostgreSQL cannot answer in time (down, restarting, pool exhausted, lock wait too long).

    A LogUnavailable, so the HTTP services answer 503 with Retry-After: nothing was acknowledged.
    Its code is its own: keys, accounts and the identity store live there too, and a query API
    whose PostgreSQL is down is not told "the event log does not answer" (found by a review).
    """

    code = "store_unavailable"


def describe(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages: never the password a DSN may carry."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "PostgreSQL (unparsable DSN)"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def conninfo_parts(dsn: str) -> dict[str, str]:
    """A libpq connection string or URL as its keys (dbname, host, port, user, password ...)."""
    return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}


def compose_sql(template: str, *, fragments: dict[str, str], names: dict[str, str]) -> Composed:
    """A statement with `{key}` placeholders filled: `fragments` as SQL the code chose (a type
    name), `names` quoted as identifiers (schemas, tables); values stay `%s` parameters."""
    parts = {k: SQL(v) for k, v in fragments.items()} | {k: Identifier(v) for k, v in names.items()}
    return SQL(template).format(**parts)  # type: ignore[arg-type]


class PostgresPool:
    """A small pool of autocommit connections; work happens in explicit transactions.

    Nothing connects at construction: connections open in the background and on demand, so a
    service starts while PostgreSQL is still coming up and answers 503 until it is there.
    """

    def __init__(
        self, dsn: str, *, max_size: int = 8, timeout_s: float = 5.0, name: str = "cem"
    ) -> None:
        self.where, self.timeout_s = describe(dsn), timeout_s
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout_s,
            name=name,
            open=False,
            # A connection that died with a server restart is replaced before it is handed out,
            # instead of failing the first request after every restart.
            check=ConnectionPool.check_connection,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, math.ceil(timeout_s)),
                "application_name": name,
            },
        )
        self._pool.open(wait=False)

    @classmethod
    def with_schema(
        cls,
        dsn: str,
        lock_name: str,
        ddl: str,
        *,
        max_size: int = 8,
        timeout_s: float = 5.0,
        name: str = "cem",
    ) -> PostgresPool:
        """A pool whose store's tables exist (`create_schema`); closed again if they cannot be
        made, so a store that fails to start leaves no connections behind."""
        pool = cls(dsn, max_size=max_size, timeout_s=timeout_s, name=name)
        try:
            pool.create_schema(lock_name, ddl)
        except BaseException:
            pool.close()
            raise
        return pool

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            with (
                self._pool.connection(timeout=self.timeout_s) as conn,
                conn.transaction(),
                conn.cursor() as cursor,
            ):
                yield cursor
        except psycopg.OperationalError as exc:
            # The setting is named: a DSN left unset (localhost:5432) reads as a mistake of ours.
            raise PostgresUnavailable(
                f"PostgreSQL at {self.where} (CEM_POSTGRES_DSN): {exc}"
            ) from exc

    def create_schema(self, lock_name: str, ddl: str) -> None:
        """Run `CREATE ... IF NOT EXISTS` statements once, even when replicas start together.

        Concurrent `CREATE TABLE IF NOT EXISTS` can still fail on PostgreSQL's catalog unique
        index; an advisory lock held for the transaction serialises the starters.
        """
        with self.transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_name,))
            cursor.execute(ddl)

    def close(self) -> None:
        self._pool.close(timeout=self.timeout_s)

"""`platform_secrets` on a real PostgreSQL server: processes starting together make the table and
each key once, and all read the first one's key (cem/adapters/postgres_secrets.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from cem.adapters.postgres_channels import SHARED_KEY_NAME, PostgresChannelStore
from cem.adapters.postgres_idempotency import SEAL_KEY_NAME, PostgresIdempotencyIndex
from cem.adapters.postgres_secrets import INSERT_SECRET, LOCK, LOCK_NAME, TABLE_DDL

pytestmark = pytest.mark.postgres

CREATORS = 4  # of each kind: channel stores starting, idempotency indexes asking for the seal key


@pytest.fixture
def fresh_dsn(postgres_dsn: str) -> Iterator[str]:
    """A new, empty database: no process has made `platform_secrets` there yet."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    yield urlunsplit(urlsplit(postgres_dsn)._replace(path=f"/{database}"))
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def channel_key(dsn: str) -> bytes:
    store = PostgresChannelStore(dsn)
    try:
        return store.shared_key()
    finally:
        store.close()


def seal_key(dsn: str) -> bytes:
    index = PostgresIdempotencyIndex(dsn)
    try:
        return index.seal_key()
    finally:
        index.db.close()


def waiting_on_locks(dsn: str, at_least: int, timeout_s: float = 60.0) -> None:
    """Returns once `at_least` of the database's other sessions wait on a lock."""
    deadline = time.monotonic() + timeout_s
    query = """SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'"""
    with psycopg.connect(dsn, autocommit=True) as watcher:
        while True:
            row = watcher.execute(query).fetchone()
            if row is not None and row[0] >= at_least:
                return
            assert time.monotonic() < deadline, f"only {row} sessions wait on a lock"
            time.sleep(0.02)


def test_processes_starting_together_make_the_table_once_and_share_the_first_key(
    fresh_dsn: str,
) -> None:
    first_channel_key, first_seal_key = b"c" * 32, b"s" * 32
    # The first process is caught creating the table and its keys, not yet committed: everyone
    # starting meanwhile must wait for it, then read its keys. (Before, each store created the
    # table under its own lock: the others' CREATE TABLE IF NOT EXISTS waited on the catalog and
    # then failed with a UniqueViolation once the first committed.)
    with psycopg.connect(fresh_dsn) as first, ThreadPoolExecutor(2 * CREATORS) as pool:
        first.execute(LOCK, (LOCK_NAME,))
        first.execute(TABLE_DDL)
        first.execute(INSERT_SECRET, (SHARED_KEY_NAME, first_channel_key))
        first.execute(INSERT_SECRET, (SEAL_KEY_NAME, first_seal_key))
        starts: list[tuple[bytes, Future[bytes]]] = []
        asks: list[tuple[bytes, Callable[[str], bytes]]] = [
            (first_channel_key, channel_key),
            (first_seal_key, seal_key),
        ]
        for expected, ask in asks * CREATORS:
            starts.append((expected, pool.submit(ask, fresh_dsn)))
        waiting_on_locks(fresh_dsn, at_least=2 * CREATORS)
        first.commit()
        for expected, started in starts:
            assert started.result(timeout=60) == expected


def test_the_first_to_ask_sets_the_key_and_later_ones_read_it(fresh_dsn: str) -> None:
    with ThreadPoolExecutor(2 * CREATORS) as pool:
        channel_keys = list(pool.map(channel_key, [fresh_dsn] * CREATORS))
        seal_keys = list(pool.map(seal_key, [fresh_dsn] * CREATORS))
    assert len(set(channel_keys)) == 1 and len(set(seal_keys)) == 1
    assert channel_keys[0] != seal_keys[0]
    assert channel_key(fresh_dsn) == channel_keys[0] and seal_key(fresh_dsn) == seal_keys[0]

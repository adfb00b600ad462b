"""The identity store contract on PostgreSQL, the customer store of the distributed mode.

Each run works in its own schema (dropped afterwards), so it never touches another run's tables.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cem.adapters.postgres_identity_store import PostgresIdentityStore
from services.identity import IdentityResolver
from services.identity.changes import SYSTEM_ACTOR
from services.identity.domain import Customer
from services.identity.ports import IdentityStore
from tests.conftest import missing_service
from tests.contract.test_identity_lifecycle import IdentityLifecycleContract
from tests.contract.test_identity_store import RULES, SEALING_KEY, IdentityStoreContract
from tests.contract.test_identity_store_filings import (
    FilingsContract,
    OlderFiling,
    write_older_store,
)
from tests.contract.test_identity_store_sealed import OpenStore, SealingContract

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def identity_schema(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(dsn, schema) of a fresh schema on the session's PostgreSQL server."""
    yield from _fresh_schema(request)


@pytest.fixture
def empty_schema(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(dsn, schema) of a schema of the test's own (the filings contract reads a store as it was
    before the resolver first opened it)."""
    yield from _fresh_schema(request)


def _fresh_schema(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    try:
        dsn = str(request.getfixturevalue("postgres_dsn"))
    except pytest.FixtureLookupError:
        missing_service("no postgres_dsn fixture: tests/integration/conftest.py provides it")
    schema = f"identity_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL at the postgres_dsn fixture does not answer: {exc}")
    yield dsn, schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class TestPostgresIdentityLifecycle(IdentityLifecycleContract):
    @pytest.fixture
    def store(self, identity_schema: tuple[str, str], tmp_path: Path) -> IdentityStore:
        dsn, schema = identity_schema
        return PostgresIdentityStore(dsn, schema, pool_size=10)


class TestPostgresIdentityStore(IdentityStoreContract):
    @pytest.fixture
    def store(self, identity_schema: tuple[str, str], tmp_path: Path) -> IdentityStore:
        dsn, schema = identity_schema
        # One schema per module: every test still sees only its own (random) tenant.
        return PostgresIdentityStore(dsn, schema, pool_size=10)


@pytest.fixture(scope="module")
def sealed_schema(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(dsn, schema) of a fresh schema for the sealed contract: a store is sealed or clear from
    its first event, so it cannot share the clear contract's."""
    yield from _fresh_schema(request)


class TestSealedPostgresIdentityStore(IdentityStoreContract):
    @pytest.fixture
    def store(self, sealed_schema: tuple[str, str], tmp_path: Path) -> IdentityStore:
        dsn, schema = sealed_schema
        return PostgresIdentityStore(dsn, schema, pool_size=10, cipher_key=SEALING_KEY)


class TestSealedPostgres(SealingContract):
    @pytest.fixture
    def open_store(self, empty_schema: tuple[str, str]) -> OpenStore:
        dsn, schema = empty_schema
        return lambda key: PostgresIdentityStore(dsn, schema, pool_size=2, cipher_key=key)

    @pytest.fixture
    def stored_states(self, empty_schema: tuple[str, str]) -> Callable[[], list[bytes]]:
        dsn, schema = empty_schema

        def states() -> list[bytes]:
            query = sql.SQL("SELECT state FROM {}.identity_events").format(sql.Identifier(schema))
            with psycopg.connect(dsn) as conn:
                return [bytes(row[0]) for row in conn.execute(query)]

        return states


class TestPostgresFilings(FilingsContract):
    @pytest.fixture
    def store(self, empty_schema: tuple[str, str], tmp_path: Path) -> IdentityStore:
        dsn, schema = empty_schema
        return PostgresIdentityStore(dsn, schema, pool_size=4)


def test_replicas_opening_an_older_store_together_all_start_and_find_its_filings(
    empty_schema: tuple[str, str],
) -> None:
    """Replicas of a new release starting at once on a store of an older one: each opens it (no
    error from two creating the filings table at once) and each answers the older filings."""
    dsn, schema = empty_schema
    store = PostgresIdentityStore(dsn, schema, pool_size=4)
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    ana = Customer(tenant, "seed", "first seen", SYSTEM_ACTOR, "http", "e-1", name="ana-lopez")
    write_older_store(store, [ana], [OlderFiling(tenant, "e-1", "ana-lopez", "http", None)])
    start = threading.Barrier(4)

    def open_and_ask(_: int) -> str | None:
        start.wait()
        identity = IdentityResolver(store, RULES)
        try:
            filing = identity.filing_of(tenant, "e-1")
            return None if filing is None else filing.home_id
        finally:
            identity.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_ask, range(4))) == ["ana-lopez"] * 4

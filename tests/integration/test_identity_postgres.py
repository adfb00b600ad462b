"""The identity store contract on PostgreSQL, the customer store of the distributed mode.

Each run works in its own schema (dropped afterwards), so it never touches another run's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cem.adapters.postgres_identity_store import PostgresIdentityStore
from services.identity.ports import IdentityStore
from tests.conftest import missing_service
from tests.contract.test_identity_lifecycle import IdentityLifecycleContract
from tests.contract.test_identity_store import IdentityStoreContract
from tests.contract.test_identity_store_filings import FilingsContract

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


class TestPostgresFilings(FilingsContract):
    @pytest.fixture
    def store(self, empty_schema: tuple[str, str], tmp_path: Path) -> IdentityStore:
        dsn, schema = empty_schema
        return PostgresIdentityStore(dsn, schema, pool_size=4)

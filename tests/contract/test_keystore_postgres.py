"""The KeyStore contract on a real PostgreSQL server, plus what only a shared server shows:
keys survive a new store, revocations through another replica apply within the cache TTL, and
an unreachable server is a 503-style LogUnavailable, never a silent rejection."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cem.adapters.postgres_keys import PostgresKeyStore
from kernel.ports import KeyStore, LogUnavailable
from tests.contract.test_keystore import KeyStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresKeyStore(KeyStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> KeyStore:
        return PostgresKeyStore(self.dsn)

    def stored_bytes(self, store: KeyStore) -> bytes:
        """Every row of the table, every column as text: all the store persists."""
        assert isinstance(store, PostgresKeyStore)
        with store.db.transaction() as cursor:
            rows = cursor.execute("SELECT row_to_json(k)::text FROM api_keys AS k").fetchall()
        return "\n".join(row[0] for row in rows).encode()


@pytest.fixture
def tenant() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stores(postgres_dsn: str) -> Iterator[tuple[PostgresKeyStore, PostgresKeyStore]]:
    """Two stores on one server, as two replicas (or a replica and `cem keys`) see it."""
    serving, admin = PostgresKeyStore(postgres_dsn), PostgresKeyStore(postgres_dsn)
    yield serving, admin
    serving.close()
    admin.close()


def test_keys_and_revocations_are_shared_by_every_store(
    stores: tuple[PostgresKeyStore, PostgresKeyStore], tenant: str
) -> None:
    serving, admin = stores
    kept_id, kept = admin.create(tenant, "manager")
    gone_id, gone = admin.create(tenant, "ingest")
    admin.revoke(gone_id)
    principal = serving.authenticate(kept)
    assert principal is not None and principal.key_id == kept_id
    assert serving.authenticate(gone) is None
    assert [k["key_id"] for k in serving.list(tenant)] == [kept_id, gone_id]


def test_a_revocation_by_another_store_applies_within_a_second(
    stores: tuple[PostgresKeyStore, PostgresKeyStore], tenant: str
) -> None:
    serving, admin = stores
    key_id, secret = admin.create(tenant, "agent")
    assert serving.authenticate(secret) is not None  # cached now
    admin.revoke(key_id)
    for _ in range(30):  # the cache TTL is 1 s; allow a generous margin on a busy machine
        if serving.authenticate(secret) is None:
            break
        time.sleep(0.1)
    assert serving.authenticate(secret) is None


def test_an_unreachable_server_is_unavailable_not_a_rejection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(LogUnavailable, match=f"127.0.0.1:{port}/cem") as raised:
        PostgresKeyStore(f"postgresql://cem:s3cret@127.0.0.1:{port}/cem", timeout_s=1.0)
    assert "s3cret" not in str(raised.value)  # the DSN's password never reaches a message
    assert time.monotonic() - started < 1.0 + 8.0  # slack for a machine stalled for seconds

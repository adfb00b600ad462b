"""The KeyStore contract, run on every adapter.

Another adapter joins by subclassing `KeyStoreContract` and implementing `make_store` and
`stored_bytes` (everything the store persisted, to prove the secret is not among it).
"""

from __future__ import annotations

import pickle
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.sqlite_keys import SqliteKeyStore
from kernel.auth import ROLES
from kernel.ports import KeyStore


class KeyStoreContract:
    """Behaviour every KeyStore must show."""

    def make_store(self, tmp_path: Path) -> KeyStore:
        raise NotImplementedError

    def stored_bytes(self, store: KeyStore) -> bytes:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[KeyStore]:
        store = self.make_store(tmp_path)
        yield store
        close = getattr(store, "close", None)
        if close:
            close()

    @pytest.fixture
    def tenant(self) -> str:
        return f"acme-{uuid.uuid4().hex[:8]}"

    @pytest.mark.parametrize("role", ROLES)
    def test_a_created_key_authenticates_as_its_tenant_and_role(
        self, store: KeyStore, tenant: str, role: str
    ) -> None:
        key_id, secret = store.create(tenant, role, "checkout web")
        principal = store.authenticate(secret)
        assert principal is not None
        assert (principal.key_id, principal.tenant_id, principal.role) == (key_id, tenant, role)

    def test_the_secret_carries_its_key_id_and_enough_randomness(
        self, store: KeyStore, tenant: str
    ) -> None:
        key_id, secret = store.create(tenant, "ingest")
        match = re.fullmatch(r"cem_([^_]+)_([A-Za-z0-9_\-]+)", secret)
        assert match is not None and match.group(1) == key_id
        assert len(match.group(2)) >= 32
        assert len({store.create(tenant, "ingest")[1] for _ in range(20)}) == 20

    @pytest.mark.parametrize(
        "garbage",
        [
            "",
            "cem_",
            "Bearer x",
            "cem_0123456789abcdef_",
            "x" * 10_000,
            "cem_ünïcode_" + "a" * 40,
            "cem_0123456789abcdef_" + "a" * 43 + "\x00",
            "' OR 1=1 --",
        ],
    )
    def test_malformed_secrets_are_rejected(self, store: KeyStore, garbage: str) -> None:
        assert store.authenticate(garbage) is None

    def test_a_guess_with_a_real_key_id_is_rejected(self, store: KeyStore, tenant: str) -> None:
        key_id, secret = store.create(tenant, "admin")
        forged = f"cem_{key_id}_{'A' * 43}"
        assert store.authenticate(forged) is None
        assert store.authenticate(secret[:-1] + ("B" if secret[-1] != "B" else "C")) is None
        assert store.authenticate(secret) is not None  # the real one still works afterwards

    def test_an_unknown_key_is_rejected(self, store: KeyStore) -> None:
        assert store.authenticate(f"cem_{'0' * 16}_{'a' * 43}") is None

    def test_a_revoked_key_stops_working_at_once(self, store: KeyStore, tenant: str) -> None:
        key_id, secret = store.create(tenant, "agent")
        assert store.authenticate(secret) is not None  # now it may be cached
        store.revoke(key_id)
        assert store.authenticate(secret) is None
        store.revoke(key_id)  # revoking twice is harmless
        assert store.authenticate(secret) is None

    def test_revoking_an_unknown_key_says_so(self, store: KeyStore) -> None:
        with pytest.raises(KeyError):
            store.revoke("0" * 16)

    def test_rotation_keeps_both_keys_working_until_the_old_one_is_revoked(
        self, store: KeyStore, tenant: str
    ) -> None:
        old_id, old = store.create(tenant, "ingest", "pos v1")
        new_id, new = store.create(tenant, "ingest", "pos v2")
        assert store.authenticate(old) is not None and store.authenticate(new) is not None
        store.revoke(old_id)
        assert store.authenticate(old) is None
        principal = store.authenticate(new)
        assert principal is not None and principal.key_id == new_id

    def test_list_shows_the_tenants_keys_without_secrets(
        self, store: KeyStore, tenant: str
    ) -> None:
        first_id, first = store.create(tenant, "ingest", "web")
        second_id, second = store.create(tenant, "manager", "reports")
        other_id, _ = store.create(f"{tenant}-other", "agent")
        store.revoke(first_id)
        listed = store.list(tenant)
        assert [(k["key_id"], k["role"], k["name"], k["active"]) for k in listed] == [
            (first_id, "ingest", "web", False),
            (second_id, "manager", "reports", True),
        ]
        assert listed[0]["revoked_at"] is not None and listed[1]["revoked_at"] is None
        text = repr(listed)
        assert first not in text and second not in text and other_id not in text
        assert not any("sha" in field or "secret" in field for k in listed for field in k)

    def test_a_key_only_ever_speaks_for_its_own_tenant(self, store: KeyStore, tenant: str) -> None:
        _, secret = store.create(tenant, "agent")
        store.create(f"{tenant}-b", "agent")
        principal = store.authenticate(secret)
        assert principal is not None and principal.tenant_id == tenant
        assert store.list(f"{tenant}-nobody") == []

    @pytest.mark.parametrize("role", ["root", "", "Admin", "ingest "])
    def test_unknown_roles_are_refused(self, store: KeyStore, tenant: str, role: str) -> None:
        with pytest.raises(ValueError, match="role"):
            store.create(tenant, role)

    @pytest.mark.parametrize("bad", ["", "Acme", "-acme", "a/b", "x" * 65, "acme tenant", "é"])
    def test_invalid_tenant_ids_are_refused(self, store: KeyStore, bad: str) -> None:
        with pytest.raises(ValueError, match="tenant"):
            store.create(bad, "ingest")
        assert store.list(bad) == []

    def test_the_secret_itself_is_never_stored(self, store: KeyStore, tenant: str) -> None:
        _, secret = store.create(tenant, "admin", "ops")
        persisted = self.stored_bytes(store)
        assert tenant.encode() in persisted  # sanity: we are looking at the right data
        assert secret.encode() not in persisted
        assert secret.split("_", 2)[2].encode() not in persisted

    def test_concurrent_authentication_during_creation(self, store: KeyStore, tenant: str) -> None:
        keys = [store.create(tenant, "ingest") for _ in range(5)]
        failures: list[str] = []

        def check() -> None:
            for _ in range(50):
                failures.extend(s for _, s in keys if store.authenticate(s) is None)

        threads = [threading.Thread(target=check) for _ in range(3)]
        threads.append(
            threading.Thread(target=lambda: [store.create(tenant, "agent") for _ in range(20)])
        )
        for t in threads:
            t.start()
        for t in threads:
            t.join(30.0)
        assert failures == []
        assert len(store.list(tenant)) == 25


class TestMemoryKeyStore(KeyStoreContract):
    def make_store(self, tmp_path: Path) -> KeyStore:
        return MemoryKeyStore()

    def stored_bytes(self, store: KeyStore) -> bytes:
        assert isinstance(store, MemoryKeyStore)
        return pickle.dumps(store._keys) + repr(store._keys).encode()


class TestSqliteKeyStore(KeyStoreContract):
    def make_store(self, tmp_path: Path) -> KeyStore:
        return SqliteKeyStore(tmp_path / "keys.db")

    def stored_bytes(self, store: KeyStore) -> bytes:
        assert isinstance(store, SqliteKeyStore)
        files = store.path.parent.glob(f"{store.path.name}*")  # the database, its WAL and shm
        return b"".join(f.read_bytes() for f in files)

    def test_keys_and_revocations_survive_a_restart(self, tmp_path: Path, tenant: str) -> None:
        store = SqliteKeyStore(tmp_path / "keys.db")
        kept_id, kept = store.create(tenant, "manager")
        gone_id, gone = store.create(tenant, "ingest")
        store.revoke(gone_id)
        store.close()
        reopened = SqliteKeyStore(tmp_path / "keys.db")
        try:
            principal = reopened.authenticate(kept)
            assert principal is not None and principal.key_id == kept_id
            assert reopened.authenticate(gone) is None
        finally:
            reopened.close()

    def test_a_revocation_by_another_process_applies_within_a_second(
        self, tmp_path: Path, tenant: str
    ) -> None:
        serving, admin = SqliteKeyStore(tmp_path / "keys.db"), SqliteKeyStore(tmp_path / "keys.db")
        try:
            key_id, secret = admin.create(tenant, "agent")
            assert serving.authenticate(secret) is not None
            admin.revoke(key_id)
            for _ in range(30):  # the cache TTL is 1 s; allow a generous margin on a busy machine
                if serving.authenticate(secret) is None:
                    break
                time.sleep(0.1)
            assert serving.authenticate(secret) is None
        finally:
            serving.close()
            admin.close()

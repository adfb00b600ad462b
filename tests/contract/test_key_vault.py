"""The KeyVault contract (crypto-shredding's data keys), run on every adapter.

Another adapter joins by subclassing `KeyVaultContract` and implementing `make_vault`; one shared
by processes also subclasses `SharedVaultContract` (its `where`: what a second process opens).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cem.adapters.memory_vault import MemoryKeyVault
from cem.adapters.sqlite_vault import SqliteKeyVault
from kernel.ports import DESTROYED_AT_UNKNOWN, KeyVault
from kernel.shredding import ShreddingError, key_fingerprint, subject_key_id, tenant_keys

REPO = Path(__file__).resolve().parents[2]
PLATFORM_KEY = secrets.token_bytes(32)
# How far a vault's clock (PostgreSQL's, distributed) may be from this process's in these tests.
CLOCKS_APART = timedelta(seconds=30)


def key_id(tenant: str, subject: str) -> str:
    return subject_key_id(tenant_keys(PLATFORM_KEY, tenant), subject)


class KeyVaultContract:
    """Behaviour every KeyVault must show."""

    def make_vault(self, tmp_path: Path, platform_key: bytes = PLATFORM_KEY) -> KeyVault:
        raise NotImplementedError

    @pytest.fixture
    def vault(self, tmp_path: Path) -> Iterator[KeyVault]:
        vault = self.make_vault(tmp_path)
        yield vault
        vault.close()

    @pytest.fixture
    def tenant(self) -> str:
        return f"acme-{uuid.uuid4().hex[:8]}"

    def test_a_key_is_made_once_and_found_again(self, vault: KeyVault, tenant: str) -> None:
        kid = key_id(tenant, "email:ana@x.io")
        made = vault.get_or_create(tenant, kid)
        assert len(made) == 32
        assert vault.get_or_create(tenant, kid) == made
        assert vault.find(tenant, kid) == made

    def test_a_batch_makes_the_new_keys_and_keeps_the_known_ones(
        self, vault: KeyVault, tenant: str
    ) -> None:
        known, new = key_id(tenant, "email:ana@x.io"), key_id(tenant, "phone:+34617345678")
        before = vault.get_or_create(tenant, known)
        got = vault.get_or_create_many(tenant, [known, new, new])
        assert set(got) == {known, new}
        assert got[known] == before and len(got[new]) == 32 and got[new] != before
        assert vault.find(tenant, new) == got[new]
        assert vault.get_or_create_many(tenant, []) == {}

    def test_threads_making_overlapping_batches_agree(self, vault: KeyVault, tenant: str) -> None:
        kids = [key_id(tenant, f"anonymous_id:dev-{i}") for i in range(20)]
        got: list[dict[str, bytes]] = []
        start = threading.Barrier(3)

        def ask(ids: list[str]) -> None:
            start.wait()
            got.append(vault.get_or_create_many(tenant, ids))

        threads = [
            threading.Thread(target=ask, args=(ids,))
            for ids in (kids, list(reversed(kids)), kids[5:15])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30.0)
        assert len(got) == 3
        for kid in kids:
            assert len({batch[kid] for batch in got if kid in batch}) == 1, kid

    def test_finding_an_unknown_key_creates_nothing(self, vault: KeyVault, tenant: str) -> None:
        kid = key_id(tenant, "email:nobody@x.io")
        assert vault.find(tenant, kid) is None
        assert vault.find(tenant, kid) is None

    def test_subjects_and_tenants_have_their_own_keys(self, vault: KeyVault, tenant: str) -> None:
        kid = key_id(tenant, "email:ana@x.io")
        keys = {
            vault.get_or_create(tenant, kid),
            vault.get_or_create(tenant, key_id(tenant, "phone:+34617345678")),
            vault.get_or_create(f"{tenant}-b", kid),  # the same id in another tenant
        }
        assert len(keys) == 3

    def test_a_destroyed_key_is_gone_for_good(self, vault: KeyVault, tenant: str) -> None:
        kid, kept = key_id(tenant, "email:ana@x.io"), key_id(tenant, "email:luis@x.io")
        old = vault.get_or_create(tenant, kid)
        kept_key = vault.get_or_create(tenant, kept)
        other_tenant = vault.get_or_create(f"{tenant}-b", kid)
        assert vault.destroy(tenant, [kid, kid, key_id(tenant, "email:never@x.io")]) == 1
        assert vault.find(tenant, kid) is None
        assert vault.destroy(tenant, [kid]) == 0
        assert vault.destroy(tenant, []) == 0
        assert vault.find(tenant, kept) == kept_key
        assert vault.find(f"{tenant}-b", kid) == other_tenant
        assert vault.get_or_create(tenant, kid) != old  # a new subject's key, not the old one

    def test_a_destroyed_id_keeps_its_tombstone_when_its_subject_returns(
        self, vault: KeyVault, tenant: str
    ) -> None:
        kid, other = key_id(tenant, "email:ana@x.io"), key_id(tenant, "email:luis@x.io")
        old = vault.get_or_create(tenant, kid)
        vault.get_or_create(tenant, other)
        assert not vault.destroyed(tenant, kid)
        assert vault.destroy(tenant, [kid]) == 1
        assert vault.destroyed(tenant, kid)
        assert not vault.destroyed(tenant, other) and not vault.destroyed(f"{tenant}-b", kid)
        returned = vault.get_or_create(tenant, kid)  # the same email, after the erasure
        assert returned != old and vault.find(tenant, kid) == returned
        assert vault.destroyed(tenant, kid)  # the events sealed under `old` still open erased
        assert vault.destroy(tenant, [kid]) == 1 and vault.destroyed(tenant, kid)

    def test_a_tombstone_knows_the_keys_it_destroyed_by_their_fingerprints(
        self, vault: KeyVault, tenant: str
    ) -> None:
        kid, never = key_id(tenant, "email:ana@x.io"), key_id(tenant, "email:luis@x.io")
        first = vault.get_or_create(tenant, kid)
        vault.destroy(tenant, [kid, never])  # `never` had no key: a tombstone without one
        second = vault.get_or_create(tenant, kid)  # the subject came back
        vault.destroy(tenant, [kid])
        vault.get_or_create(tenant, kid)  # and came back again
        assert vault.destroyed(tenant, kid, key_fingerprint(first))
        assert vault.destroyed(tenant, kid, key_fingerprint(second))
        assert not vault.destroyed(tenant, kid, key_fingerprint(vault.find(tenant, kid) or b""))
        assert not vault.destroyed(tenant, kid, "0" * 16)  # no key of this id had it
        assert vault.destroyed(tenant, kid)  # a blob sealed before fingerprints: the tombstone
        assert not vault.destroyed(tenant, never, key_fingerprint(first))
        assert not vault.destroyed(f"{tenant}-b", kid, key_fingerprint(first))

    def test_a_tombstone_keeps_when_its_id_was_last_destroyed(
        self, vault: KeyVault, tenant: str
    ) -> None:
        kid, never = key_id(tenant, "email:ana@x.io"), key_id(tenant, "email:luis@x.io")
        vault.get_or_create_many(tenant, [kid, never])
        assert vault.last_destroyed_at(tenant, kid) is None
        before = datetime.now(UTC)
        vault.destroy(tenant, [kid])
        first = vault.last_destroyed_at(tenant, kid)
        assert first is not None and first.tzinfo is not None
        assert before - CLOCKS_APART <= first <= datetime.now(UTC) + CLOCKS_APART
        assert vault.last_destroyed_at(tenant, never) is None  # held, never destroyed
        assert vault.last_destroyed_at(f"{tenant}-b", kid) is None
        vault.get_or_create(tenant, kid)  # the subject came back: the time stays
        assert vault.last_destroyed_at(tenant, kid) == first
        time.sleep(0.01)
        vault.destroy(tenant, [kid])  # and was erased again: the latest time
        second = vault.last_destroyed_at(tenant, kid)
        assert second is not None and second > first
        gone = key_id(tenant, "email:never-held@x.io")  # a tombstone without a key: timed too
        vault.destroy(tenant, [gone])
        assert vault.last_destroyed_at(tenant, gone) not in (None, DESTROYED_AT_UNKNOWN)

    @pytest.mark.parametrize("bad", ["email:ana@x.io", "", "F" * 32])
    def test_a_subject_is_never_a_key_id(self, vault: KeyVault, tenant: str, bad: str) -> None:
        for call in (vault.get_or_create, vault.find):
            with pytest.raises(ValueError, match="never a subject"):
                call(tenant, bad)
        with pytest.raises(ValueError, match="never a subject"):
            vault.destroy(tenant, [bad])
        with pytest.raises(ValueError, match="never a subject"):
            vault.destroyed(tenant, bad)
        with pytest.raises(ValueError, match="never a subject"):
            vault.last_destroyed_at(tenant, bad)

    def test_another_platform_key_does_not_open_the_keys(
        self, vault: KeyVault, tenant: str, tmp_path: Path
    ) -> None:
        kid = key_id(tenant, "email:ana@x.io")
        vault.get_or_create(tenant, kid)
        other = self.make_vault(tmp_path, secrets.token_bytes(32))
        try:
            with pytest.raises(ShreddingError):
                other.find(tenant, kid)
            with pytest.raises(ShreddingError):  # never a fresh key in place of the stored one
                other.get_or_create(tenant, kid)
        finally:
            other.close()

    def test_threads_meeting_a_new_subject_get_one_key(self, vault: KeyVault, tenant: str) -> None:
        kid, got = key_id(tenant, "email:ana@x.io"), []
        start = threading.Barrier(4)

        def ask() -> None:
            start.wait()
            got.append(vault.get_or_create(tenant, kid))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30.0)
        assert len(got) == 4 and len(set(got)) == 1

    def test_the_destruction_feed_lists_each_key_destroyed_after_a_position(
        self, tmp_path: Path, vault: KeyVault, tenant: str
    ) -> None:
        ana, eva, luis = (key_id(tenant, f"email:{n}@x.io") for n in ("ana", "eva", "luis"))
        vault.get_or_create_many(tenant, [ana, eva, luis])
        start, listed = vault.destructions_after(None)  # its end: nothing listed
        assert listed == []
        vault.destroy(tenant, [eva])
        vault.destroy(tenant, [ana])
        other = self.make_vault(tmp_path)  # another process on the same store
        try:
            end, listed = other.destructions_after(start)
        finally:
            other.close()
        assert [k for t, k in listed if t == tenant] == [eva, ana]  # in the order destroyed
        assert end > start
        later, after_end = vault.destructions_after(end)
        assert later >= end and [k for t, k in after_end if t == tenant] == []
        assert vault.destructions_after(None)[0] >= end

    def test_destroyers_in_threads_leave_no_gap_a_follower_skips(
        self, vault: KeyVault, tenant: str
    ) -> None:
        """A reader following the feed while threads destroy keys sees every one of them:
        numbers are read in the order their destructions commit."""
        ids = [key_id(tenant, f"email:n{i}@x.io") for i in range(40)]
        vault.get_or_create_many(tenant, ids)
        position, _ = vault.destructions_after(None)
        seen: list[str] = []

        def destroy(part: list[str]) -> None:
            for kid in part:
                vault.destroy(tenant, [kid])

        threads = [threading.Thread(target=destroy, args=(ids[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            position, listed = vault.destructions_after(position)
            seen.extend(k for t, k in listed if t == tenant)
        for t in threads:
            t.join(30.0)
        position, listed = vault.destructions_after(position)
        seen.extend(k for t, k in listed if t == tenant)
        assert sorted(seen) == sorted(ids)


class SharedVaultContract(KeyVaultContract):
    """A vault several processes share (the filing stage, `cem` commands, replicas)."""

    kind = ""

    def where(self, vault: KeyVault) -> str:
        raise NotImplementedError

    def _child(self, vault: KeyVault, tenant: str, kid: str) -> subprocess.Popen[str]:
        args = [self.kind, self.where(vault), PLATFORM_KEY.hex(), tenant, kid]
        command = [sys.executable, "-m", "tests.contract.vault_child", *args]
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)

    def _key_of(self, child: subprocess.Popen[str]) -> bytes:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        return bytes.fromhex(out.strip())

    def test_a_second_process_gets_the_same_key(self, vault: KeyVault, tenant: str) -> None:
        kid = key_id(tenant, "email:ana@x.io")
        made = vault.get_or_create(tenant, kid)
        assert self._key_of(self._child(vault, tenant, kid)) == made

    def test_processes_meeting_a_new_subject_together_agree(
        self, vault: KeyVault, tenant: str
    ) -> None:
        kid = key_id(tenant, "email:new@x.io")
        children = [self._child(vault, tenant, kid) for _ in range(3)]
        keys = {self._key_of(child) for child in children}
        assert keys == {vault.find(tenant, kid)}


class TestMemoryKeyVault(KeyVaultContract):
    def make_vault(self, tmp_path: Path, platform_key: bytes = PLATFORM_KEY) -> KeyVault:
        shared = getattr(self, "_shared", None)
        if shared is None:  # a second vault "on the same store" shares the dict, as a file would
            self._shared = shared = MemoryKeyVault(platform_key)
            return shared
        other = MemoryKeyVault(platform_key)
        other.wrapped, other.tombstones = shared.wrapped, shared.tombstones
        other.fingerprints, other.destructions = shared.fingerprints, shared.destructions
        other.destroyed_at = shared.destroyed_at
        return other

    @pytest.fixture(autouse=True)
    def _fresh(self) -> None:
        self._shared = None

    def test_a_tombstone_kept_before_times_were_was_destroyed_at_an_unknown_time(
        self, vault: KeyVault, tenant: str
    ) -> None:
        assert isinstance(vault, MemoryKeyVault)
        kid = key_id(tenant, "email:ana@x.io")
        vault.tombstones.add((tenant, kid))  # as a vault of an earlier release kept it
        assert vault.destroyed(tenant, kid)
        assert vault.last_destroyed_at(tenant, kid) is DESTROYED_AT_UNKNOWN
        vault.destroy(tenant, [kid])  # destroyed again: this time is the latest
        assert vault.last_destroyed_at(tenant, kid) not in (None, DESTROYED_AT_UNKNOWN)


# `key_vault.sqlite`'s tables before the tombstones kept a time.
OLD_SCHEMA = """
CREATE TABLE data_keys (tenant_id TEXT NOT NULL, key_id TEXT NOT NULL, wrapped BLOB NOT NULL,
  PRIMARY KEY (tenant_id, key_id)) WITHOUT ROWID;
CREATE TABLE destroyed_keys (tenant_id TEXT NOT NULL, key_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, key_id)) WITHOUT ROWID;
"""


class TestSqliteKeyVault(SharedVaultContract):
    kind = "sqlite"

    def make_vault(self, tmp_path: Path, platform_key: bytes = PLATFORM_KEY) -> KeyVault:
        return SqliteKeyVault(tmp_path / "key_vault.sqlite", platform_key)

    def where(self, vault: KeyVault) -> str:
        assert isinstance(vault, SqliteKeyVault)
        return str(vault.path)

    def test_the_file_is_the_owners_alone(self, vault: KeyVault) -> None:
        assert isinstance(vault, SqliteKeyVault)
        assert stat.S_IMODE(os.stat(vault.path).st_mode) == 0o600

    def test_a_destroyed_key_leaves_no_byte_in_the_files(
        self, vault: KeyVault, tenant: str
    ) -> None:
        assert isinstance(vault, SqliteKeyVault)
        ids = [key_id(tenant, f"email:c{n}@x.io") for n in range(60)]
        data_keys = [vault.get_or_create(tenant, kid) for kid in ids]
        gone = ids[30]
        wrapped = self._wrapped(vault, tenant, gone)
        before = self._file_bytes(vault)
        assert wrapped in before and gone.encode() in before  # sanity: looking at the right bytes
        assert not any(k in before for k in data_keys)  # data keys are only stored wrapped
        assert vault.destroy(tenant, [gone]) == 1
        after = self._file_bytes(vault)
        assert wrapped not in after
        # The id stays once, as its tombstone (`destroyed`); its row of `data_keys` is zeroed.
        assert self._rows_naming(vault, gone) == ["destroyed_keys"]
        assert ids[29].encode() in after and ids[31].encode() in after  # its neighbours stay

    def test_a_file_of_an_earlier_release_keeps_destruction_times_and_its_writers(
        self, tmp_path: Path, tenant: str
    ) -> None:
        """Its tombstones have no time (unknown: after every time); destructions from now on
        have one; a process of that release still writing the file destroys as it did (a
        review: a column added to `destroyed_keys` made its tombstone's insert fail)."""
        kid, later = key_id(tenant, "email:ana@x.io"), key_id(tenant, "email:luis@x.io")
        path = tmp_path / "old" / "key_vault.sqlite"
        path.parent.mkdir()
        with sqlite3.connect(path) as conn:  # the tables as the release before made them
            conn.executescript(OLD_SCHEMA)
            conn.execute("INSERT INTO destroyed_keys VALUES (?, ?)", (tenant, kid))
        conn.close()
        opened = [SqliteKeyVault(path, PLATFORM_KEY) for _ in range(2)]
        try:
            first, second = opened
            assert first.destroyed(tenant, kid)
            assert first.last_destroyed_at(tenant, kid) is DESTROYED_AT_UNKNOWN
            assert second.last_destroyed_at(tenant, later) is None
            second.get_or_create(tenant, later)
            second.destroy(tenant, [later])
            assert first.last_destroyed_at(tenant, later) not in (None, DESTROYED_AT_UNKNOWN)
            first.destroy(tenant, [kid])  # the old tombstone destroyed again: now it has one
            assert second.last_destroyed_at(tenant, kid) not in (None, DESTROYED_AT_UNKNOWN)
            old_writer = key_id(tenant, "email:eva@x.io")
            with sqlite3.connect(path) as conn:  # the earlier release's own tombstone
                conn.execute("INSERT INTO destroyed_keys VALUES (?, ?)", (tenant, old_writer))
            conn.close()
            assert first.last_destroyed_at(tenant, old_writer) is DESTROYED_AT_UNKNOWN
        finally:
            for vault in opened:
                vault.close()

    def test_keys_survive_a_restart(self, tmp_path: Path, tenant: str) -> None:
        kid = key_id(tenant, "email:ana@x.io")
        first = self.make_vault(tmp_path)
        made = first.get_or_create(tenant, kid)
        first.close()
        again = self.make_vault(tmp_path)
        try:
            assert again.find(tenant, kid) == made
        finally:
            again.close()

    @staticmethod
    def _wrapped(vault: SqliteKeyVault, tenant: str, kid: str) -> bytes:
        with sqlite3.connect(vault.path) as conn:
            row = conn.execute(
                "SELECT wrapped FROM data_keys WHERE tenant_id = ? AND key_id = ?", (tenant, kid)
            ).fetchone()
        conn.close()
        return bytes(row[0])

    @staticmethod
    def _rows_naming(vault: SqliteKeyVault, kid: str) -> list[str]:
        with sqlite3.connect(vault.path) as conn:
            tables = [
                table
                for table in ("data_keys", "destroyed_keys")
                if conn.execute(f"SELECT 1 FROM {table} WHERE key_id = ?", (kid,)).fetchone()
            ]
        conn.close()
        return tables

    @staticmethod
    def _file_bytes(vault: SqliteKeyVault) -> bytes:
        """The database and any journal or WAL beside it: every byte SQLite keeps."""
        files = sorted(vault.path.parent.glob(f"{vault.path.name}*"))
        return b"".join(f.read_bytes() for f in files)

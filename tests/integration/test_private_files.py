"""The embedded data directory is the owner's alone: directories 0700, files 0600 (personal data
and key hashes), whatever the process umask, SQLite's -wal and -shm files included."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cem.adapters.sqlite_keys import SqliteKeyStore
from cem.adapters.sqlite_log import SqliteLog
from cem.identity import build_identity
from kernel.ports import Record
from kernel.private_files import private_dir
from schemas.envelope import CustomerRef
from services.identity.settings import IdentitySettings


@pytest.fixture
def lax_umask() -> Iterator[None]:
    before = os.umask(0o022)  # the usual default, under which files come out 0644
    yield
    os.umask(before)


def modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.usefixtures("lax_umask")
def test_logs_key_stores_and_the_identity_store_are_created_for_the_owner_only(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data" / "dir"
    log = SqliteLog(data / "log.sqlite")
    log.append("touchpoints", [Record(b"acme/c", b"{}")])
    keys = SqliteKeyStore(data / "keys.sqlite")
    keys.create("acme", "agent")
    identity = build_identity(IdentitySettings(mode="embedded", data_dir=data))
    identity.resolve("acme", CustomerRef(email="ana@shop.es"), str(uuid.uuid4()), "http")
    try:
        found = modes(tmp_path / "data")
        assert {"log.sqlite-wal", "keys.sqlite", "identity.sqlite"} <= {
            Path(name).name for name in found
        }
        loose = {
            name: oct(mode)
            for name, mode in found.items()
            if mode != (0o700 if Path(tmp_path / "data", name).is_dir() else 0o600)
        }
        assert loose == {}
    finally:
        log.close()
        identity.close()


@pytest.mark.usefixtures("lax_umask")
def test_a_warehouse_directory_is_private_and_an_existing_directory_is_left_alone(
    tmp_path: Path,
) -> None:
    # The chdb adapter makes its directory with private_dir: one chdb path per process, so the
    # engine itself is not opened on a second one here.
    made = private_dir(tmp_path / "new" / "warehouse")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755

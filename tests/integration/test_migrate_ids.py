"""`cem migrate-ids` reads the old data directory only, copies SQLite stores with their recent
commits, counts only what people did by hand, and leaves no partial new directory."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cem import migrate_ids
from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher
from cem.adapters.sqlite_snapshot import log_records
from cem.migrate_ids import migrate
from cem.platform_keys import local_platform_key
from cem.sealing import close_sealing, default_rules, opener_for, sealing_publisher
from kernel.customer_key import customer_key
from kernel.partitioning import touchpoint_bucket_key, touchpoint_key
from kernel.ports import PublishStatus, Record
from kernel.sealing import decode_opened
from kernel.settings import CoreSettings
from services.identity.changes import SYSTEM_ACTOR
from services.ingest.batch import prepare
from tests.events import event

DOMAIN = "services.identity.domain"
TENANT = "acme"


def old_directory(path: Path) -> Path:
    """An old data directory: a log with one touchpoint and an identity store of an older
    version (no filings table), with one customer, five filings and hand-made changes."""
    path.mkdir()
    log = SqliteLog(path / "log.sqlite")
    log.append("touchpoints", [Record(b"acme/email:ana@shop.es", b"\x00not an event", ())])
    log.close()
    resolver = {"actor": SYSTEM_ACTOR}
    by_hand = {"actor": "user:ops", "reason": "same person"}
    stored = [
        ("Customer.Registered", resolver),
        *[("IdentityFiling.Filed", {"tenant_id": "acme"})] * 5,
        ("Customer.IdentifierLinked", resolver),
        ("Customer.IdentifierUnlinked", resolver),  # a hub unlinked by the resolver
        ("Customer.IdentifierUnlinked", by_hand),
        ("Customer.CustomersMerged", by_hand),
        ("Customer.MergedIntoSurvivor", by_hand),  # the same merge, on the other customer
        ("MergeCandidate.Rejected", by_hand),
    ]
    with closing(sqlite3.connect(path / "identity.sqlite")) as db:
        db.execute(
            "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB)"
        )
        db.executemany(
            "INSERT INTO stored_events VALUES (?, ?, ?, ?)",
            [
                (str(n), n, f"{DOMAIN}:{topic}", json.dumps(state).encode())
                for n, (topic, state) in enumerate(stored)
            ],
        )
        db.commit()
    return path


def contents(directory: Path) -> dict[str, bytes]:
    """Every file's bytes; not SQLite's shared-memory index (-shm) nor an empty -wal file, which
    a reader of a WAL database creates when they are missing (they hold nothing)."""
    return {
        p.name: data
        for p in directory.iterdir()
        if p.is_file() and not p.name.endswith("-shm")
        if (data := p.read_bytes()) or not p.name.endswith("-wal")
    }


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_old_directory_is_only_read_and_only_hand_made_changes_are_counted(
    tmp_path: Path,
) -> None:
    old = old_directory(tmp_path / "old")
    before, identity_tables = contents(old), tables(old / "identity.sqlite")
    done = migrate(old, tmp_path / "new")
    assert contents(old) == before
    assert tables(old / "identity.sqlite") == identity_tables  # no filings table created
    with closing(sqlite3.connect(old / "log.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM group_offsets").fetchone() == (0,)
    assert (done.touchpoints, done.undecodable) == (1, 1)
    assert done.hand_made == {"merges": 1, "unlinks": 1, "candidate decisions": 1}


def test_recent_commits_in_a_wal_file_are_copied(tmp_path: Path) -> None:
    old = old_directory(tmp_path / "old")
    users = sqlite3.connect(old / "users.sqlite", isolation_level=None)
    users.execute("PRAGMA journal_mode = WAL")
    users.execute("CREATE TABLE users (name TEXT)")
    users.execute("INSERT INTO users VALUES ('maria')")
    try:  # still open, as after an unclean shutdown: the commits are in users.sqlite-wal
        assert (old / "users.sqlite-wal").stat().st_size > 0
        migrate(old, tmp_path / "new")
    finally:
        users.close()
    with closing(sqlite3.connect(tmp_path / "new" / "users.sqlite")) as db:
        assert db.execute("SELECT name FROM users").fetchall() == [("maria",)]


def test_a_migration_that_fails_midway_leaves_no_new_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = old_directory(tmp_path / "old"), tmp_path / "new"

    def crash(path: Path) -> dict[str, int]:
        raise OSError("disk gone")

    with monkeypatch.context() as patched:
        patched.setattr(migrate_ids, "_hand_made", crash)
        with pytest.raises(OSError):
            migrate(old, new)
    assert not new.exists()  # `cem up --data-dir new` finds nothing to file
    assert migrate(old, new).touchpoints == 1  # and a second run starts over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "old"]


def test_sealed_touchpoints_are_rekeyed_by_their_customer_and_open_in_the_new_directory(
    tmp_path: Path,
) -> None:
    # A directory that ran with CEM_SEAL_PERSONAL_DATA: its touchpoints name nobody in clear.
    old = tmp_path / "old"
    old.mkdir()
    settings = CoreSettings(data_dir=old, seal_personal_data=True)
    log = SqliteLog(old / "log.sqlite")
    publisher = sealing_publisher(SqlitePublisher(log), settings, default_rules)
    try:
        at = datetime.now(UTC)
        body = event("message.received", "chat", {"email": "ana@shop.es"}, at, {"text": "hola"})
        outgoing = prepare([body], TENANT, at, 64 * 1024, bucket_key=b"b" * 32)
        assert publisher.publish(outgoing.outgoing) == [PublishStatus.accepted]
    finally:
        close_sealing(publisher)
        log.close()
    before = contents(old)

    done = migrate(old, tmp_path / "new")
    assert (done.touchpoints, done.undecodable) == (1, 0)
    assert contents(old) == before
    new = CoreSettings(data_dir=tmp_path / "new")
    chunks = log_records(tmp_path / "new" / "log.sqlite", "touchpoints", 10)
    [record] = [record for chunk in chunks for record in chunk]
    assert b"ana@shop.es" not in record.value  # still sealed
    opener = opener_for(new)
    try:
        opened = decode_opened(record.value, opener)
    finally:
        opener.close()
    assert (opened.customer.email, opened.payload["text"]) == ("ana@shop.es", "hola")
    bucket_key = touchpoint_bucket_key(local_platform_key(new))
    assert record.key == touchpoint_key(bucket_key, TENANT, customer_key(opened.customer))


def test_clear_touchpoints_are_sealed_on_the_way_and_the_copy_holds_no_personal_data(
    tmp_path: Path,
) -> None:
    """A directory written in clear (before sealing was the default): the copy seals what the
    old log held in clear, so an erasure there holds through a replay (a review found the copy
    clear while its erasures answered `log_sealed: true`). With sealing off, copied as it was."""
    old = tmp_path / "old"
    old.mkdir()
    log = SqliteLog(old / "log.sqlite")
    publisher = SqlitePublisher(log)
    try:
        at = datetime.now(UTC)
        bodies = [
            event("message.received", "chat", {"email": "ana@shop.es"}, at, {"text": "hola"}),
            event("page.viewed", "web", {"anonymous_id": "d-1"}, at, {"url": "https://s.es/a"}),
        ]
        outgoing = prepare(bodies, TENANT, at, 64 * 1024, bucket_key=b"b" * 32)
        assert publisher.publish(outgoing.outgoing) == [PublishStatus.accepted] * 2
    finally:
        log.close()
    assert b"ana@shop.es" in (old / "log.sqlite").read_bytes()

    done = migrate(old, tmp_path / "new")
    assert (done.touchpoints, done.undecodable, done.sealed) == (2, 0, 2)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "new").glob("log.sqlite*"))
    assert b"ana@shop.es" not in stored and b"hola" not in stored and b"s.es/a" not in stored
    records = [r for chunk in log_records(tmp_path / "new" / "log.sqlite", "touchpoints", 10)
               for r in chunk]  # fmt: skip
    opener = opener_for(CoreSettings(data_dir=tmp_path / "new"))
    try:
        opened = [decode_opened(r.value, opener) for r in records]
    finally:
        opener.close()
    assert {(e.customer.email, e.customer.anonymous_id) for e in opened} == {
        ("ana@shop.es", None),
        (None, "d-1"),
    }

    kept = migrate(old, tmp_path / "kept", seal=False)
    assert (kept.touchpoints, kept.sealed) == (2, 0)
    assert b"ana@shop.es" in (tmp_path / "kept" / "log.sqlite").read_bytes()

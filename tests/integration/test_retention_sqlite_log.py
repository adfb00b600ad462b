"""Retention on the embedded SQLite log: a tenant's records (and refused conflicting bodies)
appended before the cutoff go, newer ones and other tenants' stay, and consumers whose unread
records were all deleted move past them instead of waiting for them for ever."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cem import retention_schedule
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher
from cem.adapters.sqlite_retention import RETENTION_FILE, SqliteRetentionStore
from cem.replay import caught_up
from cem.retention import Policy
from kernel.partitioning import partition_key
from kernel.ports import DEAD_LETTER_TOPIC, TOUCHPOINTS_TOPIC, Outgoing, Record


def record(tenant: str, customer: str, body: bytes = b"{}") -> Record:
    return Record(partition_key(tenant, customer), body, (("tenant_id", tenant.encode()),))


def keys(log: SqliteLog, topic: str) -> list[bytes]:
    found = log.poll(topic, f"reader-{datetime.now(UTC).timestamp()}", 1000, 0.0)
    return sorted(c.key for c in found)


def test_deletes_only_the_tenants_records_appended_before_the_cutoff(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite", partitions=3)
    old = [record("acme", f"c{i}") for i in range(5)] + [record("acme.eu", "c1")]
    log.append(TOUCHPOINTS_TOPIC, [*old, record("other", "c1")])
    log.append(DEAD_LETTER_TOPIC, [record("acme", "c9")])
    cutoff = datetime.now(UTC) + timedelta(microseconds=1)
    log.append(TOUCHPOINTS_TOPIC, [record("acme", "new")])

    assert log.tenant_records("acme", cutoff, delete=False) == 6
    assert log.tenant_records("acme", cutoff, delete=True) == 6
    assert keys(log, TOUCHPOINTS_TOPIC) == [b"acme.eu/c1", b"acme/new", b"other/c1"]
    assert keys(log, DEAD_LETTER_TOPIC) == []
    assert log.tenant_records("acme", cutoff, delete=False) == 0
    log.close()


def test_refused_conflicting_bodies_of_the_tenant_go_too(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite")
    publisher = SqlitePublisher(log)
    original = Outgoing("acme", "e1", "f1", record("acme", "c1", b'{"n":1}'))
    publisher.publish([original, Outgoing("other", "e1", "f1", record("other", "c1"))])
    publisher.publish([Outgoing("acme", "e1", "f2", record("acme", "c1", b'{"n":2}'))])
    publisher.publish([Outgoing("other", "e1", "f2", record("other", "c1", b'{"n":2}'))])
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert log.tenant_conflicts("acme", later, delete=True) == 1
    assert publisher.conflicts("acme") == [] and len(publisher.conflicts("other")) == 1
    log.close()


def test_a_consumer_moves_past_a_deleted_tail(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite", partitions=1)
    log.append(
        TOUCHPOINTS_TOPIC, [record("other", "c1"), record("acme", "c1"), record("acme", "c2")]
    )
    [first, *_] = log.poll(TOUCHPOINTS_TOPIC, "live", 1, 0.0)
    log.commit(TOUCHPOINTS_TOPIC, "live", {0: first.offset + 1})
    log.tenant_records("acme", datetime.now(UTC) + timedelta(seconds=1), delete=True)

    assert log.poll(TOUCHPOINTS_TOPIC, "live", 10, 0.0) == []
    assert caught_up(log, TOUCHPOINTS_TOPIC, "live", log.end_offsets(TOUCHPOINTS_TOPIC))
    log.append(TOUCHPOINTS_TOPIC, [record("acme", "c3")])
    [fresh] = log.poll(TOUCHPOINTS_TOPIC, "live", 10, 0.0)
    assert (fresh.key, fresh.offset) == (b"acme/c3", 3)
    log.close()


def test_cem_ups_daily_apply_runs_every_stored_policy(
    tmp_path: Path, warehouse: ChdbWarehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    log = SqliteLog(tmp_path / "log.sqlite")
    log.append(TOUCHPOINTS_TOPIC, [record("acme", "c1"), record("zeta", "c1")])
    with sqlite3.connect(tmp_path / "log.sqlite") as conn:  # as if appended three days ago
        conn.execute("UPDATE records SET appended_at = appended_at - ?", (3 * 86_400_000_000,))
    conn.close()
    store = SqliteRetentionStore(tmp_path / RETENTION_FILE)
    store.set(Policy("acme", events_days=2, projections_days=2))
    store.close()

    retention_schedule.apply_once(tmp_path, warehouse, log)

    assert [c.key for c in log.poll(TOUCHPOINTS_TOPIC, "check", 10, 0.0)] == [b"zeta/c1"]
    assert "retention for tenant acme: deleted 1 rows" in capsys.readouterr().err
    store = SqliteRetentionStore(tmp_path / RETENTION_FILE)
    [run] = store.runs("acme")
    assert run.counts["log:records"] == 1 and not run.dry_run
    store.close()
    log.close()


def test_a_deleted_conflicting_body_leaves_no_copy_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    log = SqliteLog(path)
    publisher = SqlitePublisher(log)
    publisher.publish([Outgoing("acme", "e1", "f1", record("acme", "c1", b'{"n":1}'))])
    refused = b'{"note":"refused-body-marker"}'
    publisher.publish([Outgoing("acme", "e1", "f2", record("acme", "c1", refused))])
    log.close()  # the body is checkpointed into the file, as after any restart
    log = SqliteLog(path)
    # Many SQLite builds zero freed cells by default; this one must not rely on it.
    log._writer.execute("PRAGMA secure_delete = OFF")

    assert log.tenant_conflicts("acme", datetime.now(UTC) + timedelta(seconds=1), delete=True) == 1
    log.close()
    assert b"refused-body-marker" not in path.read_bytes()

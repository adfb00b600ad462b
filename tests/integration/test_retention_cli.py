"""`cem retention set|show|apply` as an operator runs it: policies per tenant, a dry run that
counts, an apply that deletes the tenant's old log records and says where it worked, and every
mistake one line on stderr with a non-zero exit."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from cem.adapters.sqlite_log import SqliteLog
from cem.adapters.sqlite_retention import RETENTION_FILE, SqliteRetentionStore
from cem.cli import main
from cem.projection_set import default_projections
from cem.retention import WAREHOUSE_TABLES, Policy
from cem.runner import ensure_tables
from kernel.partitioning import partition_key
from kernel.ports import TOUCHPOINTS_TOPIC, Record
from tests.integration.test_cli_mistakes import assert_one_line_mistake, cem
from tests.integration.test_retention_warehouse import ages, row


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEM_MODE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_set_keeps_the_value_not_given_and_show_lists_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ("--data-dir", str(tmp_path))
    code, _, err = run(
        capsys, "retention", "set", *where, "--tenant", "acme", "--events-days", "30"
    )
    assert code == 0 and "tenant acme: raw events 30 days, projections unlimited" in err
    assert str(tmp_path.resolve()) in err  # the data directory is said aloud
    run(capsys, "retention", "set", *where, "--tenant", "acme", "--projections-days", "400")
    run(capsys, "retention", "set", *where, "--tenant", "zeta", "--projections-days", "9")
    run(capsys, "retention", "set", *where, "--tenant", "zeta", "--projections-days", "unlimited")
    store = SqliteRetentionStore(tmp_path / RETENTION_FILE)
    assert store.policies() == [Policy("acme", 30, 400), Policy("zeta", None, None)]
    store.close()

    code, out, _ = run(capsys, "retention", "show", *where)
    header, acme, zeta = out.splitlines()
    assert acme.split()[:5] == ["acme", "30", "days", "400", "days"]
    assert zeta.split()[:3] == ["zeta", "unlimited", "unlimited"] and "never" in zeta


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--tenant", "Bad Tenant!", "--events-days", "3"), ("invalid tenant id", "Bad Tenant!")),
        (("--tenant", "acme", "--events-days", "-5"), ("--events-days", "from 1", "-5")),
        (("--tenant", "acme", "--projections-days", "0"), ("--projections-days", "got 0")),
        (("--tenant", "acme", "--events-days", "a month"), ("--events-days", "a month")),
        (("--tenant", "acme"), ("--events-days", "--projections-days")),
    ],
)
def test_set_mistakes_are_one_line(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    done = cem("retention", "set", "--data-dir", str(tmp_path), *args, cwd=tmp_path)
    assert_one_line_mistake(done, *words)
    assert not (tmp_path / RETENTION_FILE).exists()  # nothing stored


def test_apply_with_a_bad_tenant_is_one_line(tmp_path: Path) -> None:
    done = cem("retention", "apply", "--data-dir", str(tmp_path), "--tenant", "A/B", cwd=tmp_path)
    assert_one_line_mistake(done, "invalid tenant id", "A/B")


def age_records(path: Path, by: timedelta) -> None:
    """Make every record look appended `by` earlier (the log stamps appends with the clock)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE records SET appended_at = appended_at - ?", (by // timedelta(microseconds=1),)
        )
    conn.close()


def test_dry_run_counts_then_apply_deletes_the_tenants_old_log_records(tmp_path: Path) -> None:
    # And its webhook dead letters: raw bodies too (found by a review: never aged).
    from cem.bootstrap import embedded_channels
    from kernel.settings import CoreSettings
    from tests.contract.test_channel_store import letter

    channels = embedded_channels(CoreSettings(mode="embedded", data_dir=tmp_path))
    now = datetime.now(UTC)
    channels.keep_dead_letter(letter("acme", at=now - timedelta(days=2)))
    channels.keep_dead_letter(letter("acme", at=now, delivery=2))
    channels.close()
    log = SqliteLog(tmp_path / "log.sqlite")
    log.append(TOUCHPOINTS_TOPIC, [Record(partition_key(t, "c1"), b"{}") for t in ("acme", "zeta")])
    log.close()
    age_records(tmp_path / "log.sqlite", timedelta(days=2))
    store = SqliteRetentionStore(tmp_path / RETENTION_FILE)
    store.set(Policy("acme", events_days=1))
    store.set(Policy("zeta", events_days=1))
    store.close()
    where = ("--data-dir", str(tmp_path), "--tenant", "acme")

    dry = cem("retention", "apply", *where, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "acme · log:records: would delete 1 rows" in dry.stderr
    assert "acme · channels:dead letters: would delete 1 rows" in dry.stderr
    header, records, conflicts, letters, _ = dry.stdout.splitlines()
    assert letters.split()[:2] == ["acme", "channels:dead"] and letters.split()[-1] == "1"
    assert header.split() == ["tenant", "data", "kind", "before", "rows", "past", "retention"]
    assert records.split()[:3] + records.split()[-1:] == ["acme", "log:records", "events", "1"]
    assert f"tenant acme: would delete 2 rows (embedded: {tmp_path.resolve()})" in dry.stdout

    done = cem("retention", "apply", *where, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tenant acme: deleted 2 rows" in done.stdout
    channels = embedded_channels(CoreSettings(mode="embedded", data_dir=tmp_path))
    [kept] = channels.dead_letters(tenant_id="acme", status=None)
    assert kept.received_at > now - timedelta(days=1)  # the recent one stays
    channels.close()
    log = SqliteLog(tmp_path / "log.sqlite")
    assert [c.key for c in log.poll(TOUCHPOINTS_TOPIC, "check", 10, 0.0)] == [b"zeta/c1"]
    log.close()
    store = SqliteRetentionStore(tmp_path / RETENTION_FILE)
    [applied, dry_run] = store.runs("acme")
    assert (applied.dry_run, dry_run.dry_run) == (False, True)
    assert applied.counts["log:records"] == 1 and applied.events_cutoff is not None
    assert store.runs("zeta") == []
    store.close()


@pytest.mark.clickhouse
@pytest.mark.postgres
def test_distributed_apply_deletes_on_the_clickhouse_server(
    tmp_path: Path,
    clickhouse_warehouse: ClickHouseWarehouse,
    clickhouse_url: str,
    postgres_dsn: str,
) -> None:
    wh = clickhouse_warehouse
    ensure_tables(wh, default_projections())
    tenant, other = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    table = next(t for t in WAREHOUSE_TABLES if t.name == "survey_responses")
    old = datetime.now(UTC) - timedelta(days=10)
    wh.insert(table.name, [row(wh, table, t, old) for t in (tenant, other)])
    env = {
        "CEM_MODE": "distributed",
        "CEM_POSTGRES_DSN": postgres_dsn,
        "CEM_CLICKHOUSE_URL": urlunsplit(urlsplit(clickhouse_url)._replace(path=f"/{wh.database}")),
    }
    for t in (tenant, other):
        days = "5" if t == tenant else "30"
        done = cem(
            "retention", "set", "--tenant", t, "--projections-days", days, cwd=tmp_path, env=env
        )
        assert done.returncode == 0 and "PostgreSQL" in done.stderr, done.stderr

    done = cem("retention", "apply", "--tenant", tenant, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert f"{tenant} · survey_responses: deleting 1 rows" in done.stderr
    assert "Kafka topic keeps raw events" in done.stderr
    assert ages(wh, table, tenant, tenant) == []
    assert len(ages(wh, table, other, other)) == 1

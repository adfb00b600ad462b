"""Tenants' retention policies and the record of every apply, in a SQLite file in the data
directory (embedded mode), beside the keys and accounts."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import orjson

from cem.adapters.sqlite_store import PrivateDbStore
from cem.adapters.sqlite_users import from_micros, to_micros
from cem.retention import ApplyRun, Policy

RETENTION_FILE = "retention.sqlite"  # in the data directory
SCHEMA = """
CREATE TABLE IF NOT EXISTS retention_policies (
  tenant_id TEXT PRIMARY KEY, events_days INTEGER, projections_days INTEGER);
CREATE TABLE IF NOT EXISTS retention_runs (
  tenant_id TEXT NOT NULL, at INTEGER NOT NULL, dry_run INTEGER NOT NULL, ran_on TEXT NOT NULL,
  events_cutoff INTEGER, projections_cutoff INTEGER, counts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS retention_runs_by_tenant ON retention_runs (tenant_id, at);
"""
UPSERT = """INSERT INTO retention_policies VALUES (?, ?, ?) ON CONFLICT (tenant_id)
DO UPDATE SET events_days = excluded.events_days, projections_days = excluded.projections_days"""
SELECT = "SELECT tenant_id, events_days, projections_days FROM retention_policies"
INSERT_RUN = "INSERT INTO retention_runs VALUES (?, ?, ?, ?, ?, ?, ?)"
SELECT_RUNS = """SELECT tenant_id, at, dry_run, ran_on, events_cutoff, projections_cutoff, counts
FROM retention_runs WHERE tenant_id = ? ORDER BY at DESC, rowid DESC LIMIT ?"""


def _micros(at: Any) -> int | None:
    return None if at is None else to_micros(at)


def _instant(micros: int | None) -> Any:
    return None if micros is None else from_micros(micros)


def _run(row: tuple[Any, ...]) -> ApplyRun:
    tenant_id, at, dry_run, ran_on, events, projections, counts = row
    return ApplyRun(
        tenant_id,
        from_micros(at),
        bool(dry_run),
        ran_on,
        _instant(events),
        _instant(projections),
        orjson.loads(counts),
    )


class SqliteRetentionStore(PrivateDbStore):
    """A RetentionStore in one SQLite file, 0600. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)

    def set(self, policy: Policy) -> None:
        with self._db() as conn:
            conn.execute(UPSERT, (policy.tenant_id, policy.events_days, policy.projections_days))

    def get(self, tenant_id: str) -> Policy:
        with self._db() as conn:
            row = conn.execute(f"{SELECT} WHERE tenant_id = ?", (tenant_id,)).fetchone()
        return Policy(*row) if row else Policy(tenant_id)

    def policies(self) -> builtins.list[Policy]:
        with self._db() as conn:
            return [Policy(*row) for row in conn.execute(f"{SELECT} ORDER BY tenant_id")]

    def record_run(self, run: ApplyRun) -> None:
        cutoffs = (_micros(run.events_cutoff), _micros(run.projections_cutoff))
        row = (run.tenant_id, to_micros(run.at), int(run.dry_run), run.where, *cutoffs)
        with self._db() as conn:
            conn.execute(INSERT_RUN, (*row, orjson.dumps(dict(run.counts)).decode()))

    def runs(self, tenant_id: str, limit: int = 20) -> builtins.list[ApplyRun]:
        with self._db() as conn:
            return [_run(row) for row in conn.execute(SELECT_RUNS, (tenant_id, limit))]

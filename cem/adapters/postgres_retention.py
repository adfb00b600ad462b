"""Tenants' retention policies and the record of every apply in PostgreSQL (distributed mode),
beside the keys and accounts: every host's `cem retention` reads and writes the same ones."""

from __future__ import annotations

import builtins
from datetime import UTC
from typing import Any

import orjson

from cem.adapters.postgres import PostgresPool
from cem.retention import ApplyRun, Policy

SCHEMA = """
CREATE TABLE IF NOT EXISTS retention_policies (
  tenant_id TEXT COLLATE "C" PRIMARY KEY, events_days INTEGER, projections_days INTEGER);
CREATE TABLE IF NOT EXISTS retention_runs (
  run_id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
  dry_run BOOLEAN NOT NULL, ran_on TEXT NOT NULL, events_cutoff TIMESTAMPTZ,
  projections_cutoff TIMESTAMPTZ, counts JSONB NOT NULL);
CREATE INDEX IF NOT EXISTS retention_runs_by_tenant ON retention_runs (tenant_id, at);
"""
UPSERT = """INSERT INTO retention_policies VALUES (%s, %s, %s) ON CONFLICT (tenant_id)
DO UPDATE SET events_days = excluded.events_days, projections_days = excluded.projections_days"""
SELECT = "SELECT tenant_id, events_days, projections_days FROM retention_policies"
INSERT_RUN = """INSERT INTO retention_runs
(tenant_id, at, dry_run, ran_on, events_cutoff, projections_cutoff, counts)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"""
SELECT_RUNS = """SELECT tenant_id, at, dry_run, ran_on, events_cutoff, projections_cutoff, counts
FROM retention_runs WHERE tenant_id = %s ORDER BY at DESC, run_id DESC LIMIT %s"""


def _utc(at: Any) -> Any:
    return None if at is None else at.astimezone(UTC)


def _run(row: tuple[Any, ...]) -> ApplyRun:
    tenant_id, at, dry_run, ran_on, events, projections, counts = row
    return ApplyRun(tenant_id, _utc(at), dry_run, ran_on, _utc(events), _utc(projections), counts)


class PostgresRetentionStore:
    """A RetentionStore in PostgreSQL; the tables are created on start if missing."""

    def __init__(self, dsn: str, *, timeout_s: float = 5.0) -> None:
        self.db = PostgresPool.with_schema(
            dsn, "cem.retention", SCHEMA, max_size=2, timeout_s=timeout_s, name="cem-retention"
        )

    def set(self, policy: Policy) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(UPSERT, (policy.tenant_id, policy.events_days, policy.projections_days))

    def get(self, tenant_id: str) -> Policy:
        with self.db.transaction() as cursor:
            row = cursor.execute(f"{SELECT} WHERE tenant_id = %s", (tenant_id,)).fetchone()
        return Policy(*row) if row else Policy(tenant_id)

    def policies(self) -> builtins.list[Policy]:
        with self.db.transaction() as cursor:
            rows = cursor.execute(f"{SELECT} ORDER BY tenant_id").fetchall()
        return [Policy(*row) for row in rows]

    def record_run(self, run: ApplyRun) -> None:
        cutoffs = (run.events_cutoff, run.projections_cutoff)
        row = (
            run.tenant_id,
            run.at,
            run.dry_run,
            run.where,
            *cutoffs,
            orjson.dumps(dict(run.counts)).decode(),
        )
        with self.db.transaction() as cursor:
            cursor.execute(INSERT_RUN, row)

    def runs(self, tenant_id: str, limit: int = 20) -> builtins.list[ApplyRun]:
        with self.db.transaction() as cursor:
            rows = cursor.execute(SELECT_RUNS, (tenant_id, limit)).fetchall()
        return [_run(row) for row in rows]

    def close(self) -> None:
        self.db.close()

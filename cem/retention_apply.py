"""Apply a tenant's retention: delete (or, dry, count) what is past it in the warehouse and, in
embedded mode, in the SQLite event log; the run is recorded in the retention store.

Kafka keeps the distributed log by topic, not by tenant (`retention.ms`), so there the raw log is
kept as long as the topic says whatever a tenant's policy is; see the README's privacy section.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cem.retention import (
    WAREHOUSE_TABLES,
    ApplyRun,
    Policy,
    RetentionStore,
    count_past,
    cutoff,
    delete_past,
    existing_tables,
    wait_for_mutations,
)
from kernel.ports import Warehouse

logger = logging.getLogger(__name__)
LOG_RECORDS, LOG_CONFLICTS = "log:records", "log:conflicts"
WEBHOOK_DEAD_LETTERS = "channels:dead letters"


class TenantLog(Protocol):
    """An event log that can count and delete one tenant's records by when it took them."""

    def tenant_records(self, tenant_id: str, before: datetime, *, delete: bool) -> int: ...

    def tenant_conflicts(self, tenant_id: str, before: datetime, *, delete: bool) -> int: ...


class TenantLetters(Protocol):
    """Webhook dead letters (the channel store): raw bodies, ended with the raw events."""

    def tenant_dead_letters(self, tenant_id: str, before: datetime, *, delete: bool) -> int: ...


Step = Callable[[str, int], None]  # (table or log part, rows past retention)


def _warehouse_part(
    warehouse: Warehouse,
    policy: Policy,
    now: datetime,
    dry_run: bool,
    on_step: Step,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    present = existing_tables(warehouse)
    for table in WAREHOUSE_TABLES:
        before = cutoff(policy.days(table.kind), now)
        if before is None or table.name not in present:
            continue
        counts[table.name] = count_past(warehouse, table, policy.tenant_id, before)
        if counts[table.name] and not dry_run:
            delete_past(warehouse, table, policy.tenant_id, before)
        on_step(table.name, counts[table.name])
    if counts and not dry_run and not wait_for_mutations(warehouse):
        logger.warning("retention: deletions still running in the warehouse; they will finish")
    return counts


# A part of the raw data aged with the raw events: (tenant, before, delete) -> rows past it.
RawPart = Callable[..., int]


def _raw_parts(log: TenantLog | None, letters: TenantLetters | None) -> dict[str, RawPart]:
    """What ends with the raw events besides the warehouse: the embedded log's records and
    refused bodies, the channel store's webhook dead letters."""
    parts: dict[str, RawPart] = {}
    if log is not None:
        parts |= {LOG_RECORDS: log.tenant_records, LOG_CONFLICTS: log.tenant_conflicts}
    if letters is not None:
        parts[WEBHOOK_DEAD_LETTERS] = letters.tenant_dead_letters
    return parts


def _raw_part(
    parts: dict[str, RawPart], policy: Policy, now: datetime, dry_run: bool, on_step: Step
) -> dict[str, int]:
    before = cutoff(policy.events_days, now)
    if before is None:
        return {}
    counts = {}
    for part, past in parts.items():
        counts[part] = past(policy.tenant_id, before, delete=not dry_run)
        on_step(part, counts[part])
    return counts


def apply_policy(
    policy: Policy,
    warehouse: Warehouse,
    log: TenantLog | None,
    *,
    now: datetime,
    where: str,
    dry_run: bool = False,
    on_step: Step = lambda part, count: None,
    letters: TenantLetters | None = None,
) -> ApplyRun:
    """Delete the tenant's data past its policy (count only, when `dry_run`)."""
    counts = _warehouse_part(warehouse, policy, now, dry_run, on_step)
    counts |= _raw_part(_raw_parts(log, letters), policy, now, dry_run, on_step)
    return ApplyRun(
        policy.tenant_id,
        now,
        dry_run,
        where,
        cutoff(policy.events_days, now),
        cutoff(policy.projections_days, now),
        counts,
    )


def _for_tenant(on_step: Callable[[str, str, int], None], tenant_id: str) -> Step:
    return lambda part, count: on_step(tenant_id, part, count)


def apply_all(
    store: RetentionStore,
    warehouse: Warehouse,
    log: TenantLog | None,
    *,
    now: datetime,
    where: str,
    tenant_id: str | None = None,
    dry_run: bool = False,
    on_step: Callable[[str, str, int], None] = lambda tenant, part, count: None,
    letters: TenantLetters | None = None,
) -> list[ApplyRun]:
    """Apply every stored policy (or one tenant's) and record each run in `store`."""
    policies = [store.get(tenant_id)] if tenant_id else store.policies()
    runs = []
    for policy in policies:
        run = apply_policy(
            policy,
            warehouse,
            log,
            now=now,
            where=where,
            dry_run=dry_run,
            on_step=_for_tenant(on_step, policy.tenant_id),
            letters=letters,
        )
        store.record_run(run)
        runs.append(run)
    return runs

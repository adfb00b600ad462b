"""Per-tenant retention: how long raw events and projections are kept, and deleting what is older.

ClickHouse 18.16 (the oldest server supported) has no table TTL (it came in 19.6), so retention is
an explicit `ALTER TABLE … DELETE WHERE` mutation per table, which chdb runs the same way. Every
warehouse table and the column its age is read from are listed once, in `WAREHOUSE_TABLES`.

Default: a tenant without a policy keeps everything (None days). Deleting customers' history is
irreversible and its legal basis (contracts, tax records, complaints) is the tenant's to decide,
so nothing is deleted until an operator sets a number of days.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from cem.dead_letters import TABLE as DEAD_LETTERS
from kernel.ports import Warehouse
from kernel.processing import to_micros  # how the warehouse stores every time
from kernel.tenants import check_tenant_id
from services.projections.contact_events import CONTACT_EVENTS
from services.projections.sql import IDENTIFIERS, PROFILE_FACTS, TIMELINE
from services.satisfaction.attribution_sql import CUSTOMER_TOUCHPOINTS_TABLE, SERVICE_EVENTS_TABLE
from services.satisfaction.lifecycle_sql import ACTIONS_TABLE
from services.satisfaction.sql import ALERTS_TABLE, INTERACTIONS_TABLE, RESPONSES_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE

Kind = Literal["events", "projections"]
MAX_DAYS = 36_600  # a century: beyond it a cutoff leaves the range datetime can hold


@dataclass(frozen=True)
class RetainedTable:
    """A warehouse table, the column its rows' age is read from, and which setting governs it."""

    name: str
    time_column: str  # epoch microseconds (Int64), like every time in the warehouse
    kind: Kind
    # SQL that is true for the tenant's rows; dead letters keep the record key `tenant/customer`.
    tenant_match: str = "tenant_id = {tenant:String}"


_BY_KEY = "substring(key, 1, length({key_prefix:String})) = {key_prefix:String}"
# stream_arrivals and stream_arrivals_by_event are not here: they have no time column and hold
# only ids and log positions.
WAREHOUSE_TABLES: tuple[RetainedTable, ...] = (
    RetainedTable(TIMELINE, "derived_at", "projections"),
    RetainedTable(CONTACT_EVENTS, "derived_at", "projections"),
    RetainedTable(PROFILE_FACTS, "derived_at", "projections"),
    RetainedTable(IDENTIFIERS, "derived_at", "projections"),
    RetainedTable(RESPONSES_TABLE, "answered_at", "projections"),
    RetainedTable(INTERACTIONS_TABLE, "derived_at", "projections"),
    RetainedTable(CUSTOMER_TOUCHPOINTS_TABLE, "derived_at", "projections"),
    RetainedTable(SERVICE_EVENTS_TABLE, "derived_at", "projections"),
    RetainedTable(TEXT_SENTIMENT_TABLE, "written_at", "projections"),
    RetainedTable(ALERTS_TABLE, "raised_at", "projections"),
    RetainedTable(ACTIONS_TABLE, "acted_at", "projections"),
    RetainedTable(DEAD_LETTERS, "failed_at", "events", _BY_KEY),
)


class RetentionError(ValueError):
    """A retention setting that cannot be stored (bad tenant, days out of range)."""


@dataclass(frozen=True)
class Policy:
    """One tenant's retention; None days: kept for ever (the default)."""

    tenant_id: str
    events_days: int | None = None
    projections_days: int | None = None

    def days(self, kind: Kind) -> int | None:
        return self.events_days if kind == "events" else self.projections_days


@dataclass(frozen=True)
class ApplyRun:
    """What one `apply` did (or, dry, would do) for a tenant: the audit line of a run."""

    tenant_id: str
    at: datetime
    dry_run: bool
    where: str  # the mode and data directory or servers it ran on
    events_cutoff: datetime | None
    projections_cutoff: datetime | None
    counts: Mapping[str, int] = field(default_factory=dict)  # table or log part → rows


class RetentionStore(Protocol):
    """Where tenants' retention policies and the record of every apply live."""

    def set(self, policy: Policy) -> None:
        """Store the tenant's policy, replacing the previous one."""

    def get(self, tenant_id: str) -> Policy:
        """The tenant's policy; the default (keep everything) when none was set."""
        ...

    def policies(self) -> list[Policy]:
        """Every stored policy, by tenant."""
        ...

    def record_run(self, run: ApplyRun) -> None:
        """Keep the audit line of an apply."""

    def runs(self, tenant_id: str, limit: int = 20) -> list[ApplyRun]:
        """The tenant's newest applies first."""
        ...

    def close(self) -> None: ...


def check_tenant(tenant_id: str) -> str:
    try:
        return check_tenant_id(tenant_id)
    except ValueError as exc:
        raise RetentionError(str(exc)) from None


def check_days(option: str, days: int | None) -> int | None:
    """None (keep for ever) or a whole number of days from 1 to a century."""
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise RetentionError(f"{option} must be a whole number of days from 1 to {MAX_DAYS}")
    return days


def cutoff(days: int | None, now: datetime) -> datetime | None:
    """The instant before which data is past retention; None when kept for ever."""
    return None if days is None else now - timedelta(days=days)


def _where(table: RetainedTable) -> str:
    return f"{table.tenant_match} AND {table.time_column} < {{cutoff:Int64}}"


def _params(tenant_id: str, before: datetime) -> dict[str, object]:
    return {"tenant": tenant_id, "key_prefix": f"{tenant_id}/", "cutoff": to_micros(before)}


def count_past(warehouse: Warehouse, table: RetainedTable, tenant_id: str, before: datetime) -> int:
    """Rows of the tenant in `table` older than `before` (stored copies, duplicates included)."""
    rows = warehouse.select(
        f"SELECT count() AS n FROM {table.name} WHERE {_where(table)}", _params(tenant_id, before)
    )
    return int(rows[0]["n"])


def delete_past(
    warehouse: Warehouse, table: RetainedTable, tenant_id: str, before: datetime
) -> None:
    """Start the mutation deleting the tenant's rows of `table` older than `before`."""
    warehouse.command(
        f"ALTER TABLE {table.name} DELETE WHERE {_where(table)}", _params(tenant_id, before)
    )


Mutations = dict[str, set[str]]  # table -> mutation ids


def pending_mutations(warehouse: Warehouse) -> int:
    rows = warehouse.select(
        "SELECT count() AS n FROM system.mutations "
        "WHERE database = currentDatabase() AND is_done = 0"
    )
    return int(rows[0]["n"])


def wait_for_mutations(
    warehouse: Warehouse, timeout_s: float = 300.0, only: Mutations | None = None
) -> bool:
    """Wait until the database's mutations are done (18.16 has no `mutations_sync`), or only the
    given ones (`mutate`'s), whatever else runs (retention's, another erasure's); False if some
    still run after `timeout_s` (they finish in the background all the same)."""
    deadline = time.monotonic() + timeout_s
    while pending_mutations(warehouse) if only is None else _running(warehouse, only):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def mutation_ids(warehouse: Warehouse, table: str) -> set[str]:
    """The ids of the table's mutations the server lists (running or kept after they finished)."""
    rows = warehouse.select(
        "SELECT mutation_id FROM system.mutations "
        "WHERE database = currentDatabase() AND table = {table:String}",
        {"table": table},
    )
    return {str(r["mutation_id"]) for r in rows}


def mutate(warehouse: Warehouse, table: str, sql: str, params: dict[str, Any]) -> set[str]:
    """Run one `ALTER TABLE … DELETE` on `table`; the ids of the mutations it started (those the
    table lists after it and not before), so a caller waits for its own alone."""
    before = mutation_ids(warehouse, table)
    warehouse.command(sql, params)
    return mutation_ids(warehouse, table) - before


def _running(warehouse: Warehouse, ours: Mutations) -> bool:
    for table, ids in ours.items():
        rows = warehouse.select(
            "SELECT mutation_id FROM system.mutations WHERE database = currentDatabase() "
            "AND table = {table:String} AND is_done = 0",
            {"table": table},
        )
        if ids & {str(r["mutation_id"]) for r in rows}:
            return True
    return False


def existing_tables(warehouse: Warehouse) -> set[str]:
    rows = warehouse.select("SELECT name FROM system.tables WHERE database = currentDatabase()")
    return {str(r["name"]) for r in rows}

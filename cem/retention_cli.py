"""`cem retention set|show|apply`: per-tenant retention of raw events and projections.

Embedded, the policies live in `retention.sqlite` in the data directory and `apply` works on the
directory's chdb warehouse and SQLite log, holding the directory like `cem replay` (chdb admits one
process; inside `cem up` the same apply runs daily). Distributed (CEM_MODE=distributed), the
policies live in PostgreSQL and `apply` works on the ClickHouse server of CEM_CLICKHOUSE_URL.
Mistakes are one line on stderr and a non-zero exit (`CliError`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from cem import data_dir
from cem.cli_errors import USAGE_ERROR, CliError
from cem.cli_output import format_table
from cem.retention import (
    WAREHOUSE_TABLES,
    ApplyRun,
    Policy,
    RetentionError,
    RetentionStore,
    check_days,
    check_tenant,
)
from kernel.ports import LogUnavailable, WarehouseUnavailable
from kernel.settings import CoreSettings

UNLIMITED = "unlimited"
KIND_OF = {t.name: t.kind for t in WAREHOUSE_TABLES}  # the other parts are the event log's


def days(option: str, text: str | None, stored: int | None) -> int | None:
    """The days an option gives: a whole number, `unlimited` (None), or, absent, `stored`."""
    if text is None:
        return stored
    if text.strip().lower() == UNLIMITED:
        return None
    try:
        value = int(text)
    except ValueError:
        raise CliError(
            f"{option} {text!r} is not a number of days or 'unlimited'", USAGE_ERROR
        ) from None
    try:
        return check_days(option, value)
    except RetentionError as exc:
        raise CliError(f"{exc} (got {value})", USAGE_ERROR) from None


def _tenant(tenant_id: str) -> str:
    try:
        return check_tenant(tenant_id)
    except RetentionError as exc:
        raise CliError(str(exc), USAGE_ERROR) from None


def _settings(args: argparse.Namespace) -> tuple[CoreSettings, str]:
    """The settings and where the data is (recorded with each apply)."""
    settings = data_dir.store_settings(args.data_dir, "retention policies")
    if settings.mode == "distributed":
        from cem.adapters.postgres import describe

        return (
            settings,
            f"distributed: PostgreSQL {describe(settings.postgres_dsn.get_secret_value())}",
        )
    return settings, f"embedded: {settings.data_dir.resolve()}"


@contextmanager
def _store(settings: CoreSettings) -> Iterator[RetentionStore]:
    from cem.distributed import retention_store_from_settings

    store = retention_store_from_settings(settings)
    try:
        yield store
    except LogUnavailable as exc:
        raise CliError(f"the retention store does not answer: {exc}") from None
    finally:
        store.close()


def _label(value: int | None) -> str:
    return UNLIMITED if value is None else f"{value} days"


def _set(args: argparse.Namespace) -> int:
    tenant = _tenant(args.tenant)
    if args.events_days is None and args.projections_days is None:
        raise CliError("give --events-days, --projections-days or both", USAGE_ERROR)
    days("--events-days", args.events_days, None)  # mistakes before touching any store
    days("--projections-days", args.projections_days, None)
    settings, _ = _settings(args)
    with _store(settings) as store:
        old = store.get(tenant)
        policy = Policy(
            tenant,
            days("--events-days", args.events_days, old.events_days),
            days("--projections-days", args.projections_days, old.projections_days),
        )
        store.set(policy)
    print(
        f"tenant {tenant}: raw events {_label(policy.events_days)}, "
        f"projections {_label(policy.projections_days)}",
        file=sys.stderr,
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    tenant = _tenant(args.tenant) if args.tenant else None
    settings, _ = _settings(args)
    with _store(settings) as store:
        policies = [store.get(tenant)] if tenant else store.policies()
        last = {p.tenant_id: store.runs(p.tenant_id, limit=1) for p in policies}
    if not policies:
        print("no retention set: every tenant keeps everything (the default)", file=sys.stderr)
        return 0
    print(format_table([_policy_row(p, last[p.tenant_id]) for p in policies]))
    return 0


def _policy_row(policy: Policy, runs: list[ApplyRun]) -> dict[str, Any]:
    run = runs[0] if runs else None
    return {
        "tenant": policy.tenant_id,
        "raw events": _label(policy.events_days),
        "projections": _label(policy.projections_days),
        "last apply": "never"
        if run is None
        else f"{run.at:%Y-%m-%dT%H:%M:%SZ}"
        + (" (dry run)" if run.dry_run else f" ({sum(run.counts.values())} rows)"),
    }


def _apply(args: argparse.Namespace) -> int:
    from cem.retention_apply import apply_all

    tenant = _tenant(args.tenant) if args.tenant else None
    settings, where = _settings(args)
    verb = "would delete" if args.dry_run else "deleting"

    def step(tenant_id: str, part: str, count: int) -> None:
        print(f"cem: {tenant_id} · {part}: {verb} {count} rows", file=sys.stderr)

    held = (
        nullcontext() if settings.mode == "distributed" else data_dir.exclusive(settings.data_dir)
    )
    with (
        held,
        _store(settings) as store,
        _engines(settings, args.database) as (wh, log),
        _channels(settings) as letters,
    ):
        try:
            runs = apply_all(
                store, wh, log, now=datetime.now(UTC), where=where, tenant_id=tenant,
                dry_run=args.dry_run, on_step=step, letters=letters,
            )  # fmt: skip
        except WarehouseUnavailable as exc:
            raise CliError(f"the warehouse does not answer: {exc}") from None
    if not runs:
        print("no retention set: every tenant keeps everything (the default)", file=sys.stderr)
    table = [_count_row(run, part, count) for run in runs for part, count in run.counts.items()]
    if table:
        print(format_table(table))
    for run in runs:
        total = sum(run.counts.values())
        done = "would delete" if run.dry_run else "deleted"
        print(f"tenant {run.tenant_id}: {done} {total} rows ({where})")
    if settings.mode == "distributed" and runs:
        print(
            "cem: the Kafka topic keeps raw events for its own retention.ms, whatever a tenant's "
            "policy says (see README, Privacy)",
            file=sys.stderr,
        )
    return 0


def _count_row(run: ApplyRun, part: str, count: int) -> dict[str, Any]:
    kind = KIND_OF.get(part, "events")
    before = run.events_cutoff if kind == "events" else run.projections_cutoff
    done = "rows past retention" if run.dry_run else "rows deleted"
    return {"tenant": run.tenant_id, "data": part, "kind": kind, "before": before, done: count}


@contextmanager
def _channels(settings: CoreSettings) -> Iterator[Any]:
    """The channel store, whose webhook dead letters end with the raw events (None in a data
    directory that never had one: nothing is created for it)."""
    from cem.distributed import channels_from_settings

    if settings.mode != "distributed" and not (settings.data_dir / "channels.sqlite").exists():
        yield None
        return
    try:
        channels = channels_from_settings(settings)
    except LogUnavailable as exc:  # the rest is still aged; the letters wait for the next run
        print(
            f"cem: the channel store does not answer ({exc}): its webhook dead letters are not "
            "aged this run",
            file=sys.stderr,
        )
        yield None
        return
    try:
        yield channels
    finally:
        channels.close()


@contextmanager
def _engines(settings: CoreSettings, database: str) -> Iterator[tuple[Any, Any]]:
    """The warehouse and, embedded, the SQLite log (None distributed: Kafka keeps by topic)."""
    if settings.mode == "distributed":
        from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
        from cem.distributed import warehouse_database

        url = settings.clickhouse_url
        warehouse: Any = ClickHouseWarehouse(url, database=warehouse_database(url))
        log: Any = None
    else:
        from cem.adapters.chdb_warehouse import ChdbWarehouse
        from cem.adapters.sqlite_log import SqliteLog

        warehouse = ChdbWarehouse(settings.data_dir / "warehouse", database=database)
        log_file = settings.data_dir / "log.sqlite"
        log = SqliteLog(log_file) if log_file.exists() else None
    try:
        yield warehouse, log
    finally:
        warehouse.close()
        if log is not None:
            log.close()


def add_commands(sub: Any, command: Any) -> None:
    """`cem retention set|show|apply`; `command(sub, name, help)` makes a subcommand's parser."""
    retention = command(sub, "retention", "how long each tenant's data is kept")
    kinds = retention.add_subparsers(dest="retention", required=True)
    where = {"default": None, "help": "default: $CEM_DATA_DIR, else ./.cem (embedded)"}
    set_ = command(kinds, "set", "set a tenant's retention (days, or 'unlimited')")
    set_.add_argument("--data-dir", **where)
    set_.add_argument("--tenant", required=True, help="tenant whose retention to set")
    set_.add_argument(
        "--events-days", default=None, help="raw events (default: the stored value stays)"
    )
    set_.add_argument(
        "--projections-days",
        default=None,
        help="timeline, answers, alerts… (default: the stored value stays)",
    )
    set_.set_defaults(func=_set)
    show = command(kinds, "show", "every tenant's retention and its last apply")
    show.add_argument("--data-dir", **where)
    show.add_argument("--tenant", default=None, help="only this tenant")
    show.set_defaults(func=_show)
    apply = command(kinds, "apply", "delete what is past retention (every tenant with a policy)")
    apply.add_argument("--data-dir", **where)
    apply.add_argument("--tenant", default=None, help="only this tenant")
    apply.add_argument("--dry-run", action="store_true", help="count per table, delete nothing")
    apply.add_argument("--database", default="cem", help="embedded warehouse database")
    apply.set_defaults(func=_apply)

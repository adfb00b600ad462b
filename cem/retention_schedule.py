"""Retention inside `cem up`: every stored policy applied a minute after start and then daily,
on the platform's own warehouse and log (chdb admits one process, so `cem up` is the one that
can). With no policy stored, a run is one read of the retention file."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from cem.adapters.sqlite_log import SqliteLog
from cem.adapters.sqlite_retention import RETENTION_FILE, SqliteRetentionStore
from cem.retention_apply import apply_all
from kernel.channels import ChannelStore
from kernel.ports import EventLog, Warehouse

logger = logging.getLogger(__name__)
FIRST_RUN_S, EVERY_S = 60.0, 24 * 3600.0


def apply_once(
    data_dir: Path, warehouse: Warehouse, log: EventLog, channels: ChannelStore | None = None
) -> None:
    store = SqliteRetentionStore(data_dir / RETENTION_FILE)
    tenant_log = log if isinstance(log, SqliteLog) else None  # a memory log in some tests
    where = f"embedded: {data_dir.resolve()}"  # as `cem retention apply` records it
    try:
        runs = apply_all(
            store, warehouse, tenant_log, now=datetime.now(UTC), where=where, letters=channels
        )
    finally:
        store.close()
    for run in runs:
        total = sum(run.counts.values())
        print(f"cem: retention for tenant {run.tenant_id}: deleted {total} rows", file=sys.stderr)


def _loop(
    data_dir: Path,
    warehouse: Warehouse,
    log: EventLog,
    stop: threading.Event,
    channels: ChannelStore | None,
) -> None:
    wait = FIRST_RUN_S
    while not stop.wait(wait):
        wait = EVERY_S
        try:
            apply_once(data_dir, warehouse, log, channels)
        except Exception:  # a failed run is reported and retried tomorrow; serving goes on
            logger.exception("retention: the daily apply failed")


def start(
    data_dir: Path,
    warehouse: Warehouse,
    log: EventLog,
    stop: threading.Event,
    channels: ChannelStore | None = None,
) -> None:
    """Run the daily apply in a daemon thread until `stop` is set."""
    threading.Thread(
        target=_loop,
        args=(data_dir, warehouse, log, stop, channels),
        name="retention",
        daemon=True,
    ).start()

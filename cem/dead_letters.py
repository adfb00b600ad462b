"""The dead-letter table: records that passed the edge but failed downstream, kept with their bytes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson

from kernel.ports import Warehouse
from kernel.processing import INPUT_ERRORS_OWNER, DeadLetter

logger = logging.getLogger(__name__)
TABLE = "dead_letters"
# Who recorded the input errors before the filing stage existed: every consumer group read the
# touchpoints then, and the projections group reported what was wrong with the input itself.
EARLIER_INPUT_ERRORS_OWNER = "projections"


def ddl(version: tuple[int, ...]) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            stage String, topic String, partition Int32, offset Int64,
            key String, value_hex String, reason String, error String, failed_at Int64,
            headers String DEFAULT ''
        ) ENGINE = ReplacingMergeTree() ORDER BY (stage, topic, partition, offset)"""
    ]


# Columns added after the table was first released: (name, type with its default). ClickHouse
# 18.16 has no `ADD COLUMN IF NOT EXISTS`, so the table's columns are read first.
ADDED_COLUMNS = (("headers", "String DEFAULT ''"),)


def add_missing_columns(warehouse: Warehouse) -> None:
    """Bring a table created by an earlier release up to date (after `ddl`); rows written before
    keep the column's default (headers: '' — not kept then)."""
    present = {
        row["name"]
        for row in warehouse.select(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = {table:String}",
            {"table": TABLE},
        )
    }
    for name, column_type in ADDED_COLUMNS:
        if name not in present:
            warehouse.command(f"ALTER TABLE {TABLE} ADD COLUMN {name} {column_type}")


def ensure(warehouse: Warehouse) -> None:
    """The table, created or brought up to date."""
    for statement in ddl(warehouse.version):
        warehouse.command(statement)
    add_missing_columns(warehouse)


def recent(warehouse: Warehouse, limit: int = 100) -> list[dict[str, Any]]:
    """The latest dead letters, one row per (stage, topic, partition, offset)."""
    return warehouse.select(
        f"""SELECT stage, topic, partition, offset, key, value_hex, reason, error, failed_at,
            headers FROM {TABLE} ORDER BY failed_at DESC LIMIT 1 BY stage, topic, partition, offset
            LIMIT {{limit:UInt32}}""",
        {"limit": limit},
    )


def not_recorded_before(warehouse: Warehouse, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
    """The letters, less the input errors the earlier owner already recorded for the same
    record: after an upgrade the filing stage reads the touchpoints from the start and meets the
    old input errors again, which would be listed (and replayed) twice. Other stages' letters and
    new records are kept; the query runs only when the filing stage has letters (rare)."""
    ours = sorted({d.offset for d in letters if d.stage == INPUT_ERRORS_OWNER})
    if not ours:
        return list(letters)
    names = [f"offset_{i}" for i in range(len(ours))]
    in_offsets = ", ".join(f"{{{name}:Int64}}" for name in names)
    rows = warehouse.select(
        f"""SELECT DISTINCT topic, partition, offset FROM {TABLE}
            WHERE stage = {{stage:String}} AND offset IN ({in_offsets})""",
        {"stage": EARLIER_INPUT_ERRORS_OWNER, **dict(zip(names, ours, strict=True))},
    )
    recorded = {(r["topic"], int(r["partition"]), int(r["offset"])) for r in rows}
    return [
        d
        for d in letters
        if d.stage != INPUT_ERRORS_OWNER or (d.topic, d.partition, d.offset) not in recorded
    ]


def from_topic(value: bytes) -> tuple[DeadLetter, dict[str, Any]] | None:
    """A dead letter as the dead-letter topic keeps it (`DeadLetter.to_json`) and its table row,
    with the time it failed; None (logged) for bytes that are not one, which only a foreign
    producer could have written: skipped, so one bad record cannot stop the copy for ever."""
    try:
        found = orjson.loads(value)
        headers = [(h["name"], bytes.fromhex(h["value_hex"])) for h in found["headers"]]
        letter = DeadLetter(
            stage=found["stage"],
            topic=found["topic"],
            partition=int(found["partition"]),
            offset=int(found["offset"]),
            key=str(found["key"]).encode(),
            value=bytes.fromhex(found["value_hex"]),
            reason=found["reason"],
            error=found["error"],
            headers=tuple(headers),
        )
        int(found["failed_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        logger.warning(
            "skipped a record of the dead-letter topic that is not a dead letter: %s", exc
        )
        return None
    return letter, {**found, "headers": orjson.dumps(found["headers"]).decode()}

"""The dead-letter table: records that passed the edge but failed downstream, kept with their bytes."""

from __future__ import annotations

from typing import Any

from kernel.ports import Warehouse

TABLE = "dead_letters"


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

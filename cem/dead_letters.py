"""The dead-letter table: records that passed the edge but failed downstream, kept with their bytes."""

from __future__ import annotations

from typing import Any

from kernel.ports import Warehouse

TABLE = "dead_letters"


def ddl(version: tuple[int, ...]) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            stage String, topic String, partition Int32, offset Int64,
            key String, value_hex String, reason String, error String, failed_at Int64
        ) ENGINE = ReplacingMergeTree() ORDER BY (stage, topic, partition, offset)"""
    ]


def recent(warehouse: Warehouse, limit: int = 100) -> list[dict[str, Any]]:
    """The latest dead letters, one row per (stage, topic, partition, offset)."""
    return warehouse.select(
        f"""SELECT stage, topic, partition, offset, key, value_hex, reason, error, failed_at
            FROM {TABLE} ORDER BY failed_at DESC LIMIT 1 BY stage, topic, partition, offset
            LIMIT {{limit:UInt32}}""",
        {"limit": limit},
    )

"""The dead-letter table keeps each record's headers, and a table created by an earlier release
(without the column) is brought up to date, on chdb and on ClickHouse 18.16 (which has no
`ADD COLUMN IF NOT EXISTS`)."""

from __future__ import annotations

from datetime import UTC, datetime

from cem import dead_letters
from cem.dead_letter_replay import consumer_letters, kept_headers
from kernel.ports import TOUCHPOINTS_TOPIC, Warehouse
from kernel.processing import DeadLetter

EARLIER_DDL = """CREATE TABLE dead_letters (
    stage String, topic String, partition Int32, offset Int64,
    key String, value_hex String, reason String, error String, failed_at Int64
) ENGINE = ReplacingMergeTree() ORDER BY (stage, topic, partition, offset)"""
HEADERS = (("tenant_id", b"acme"), ("source_id", b"pos-7"), ("binary", b"\xff\x00"))


def letter(offset: int) -> DeadLetter:
    return DeadLetter(
        "projections", TOUCHPOINTS_TOPIC, 0, offset, b"acme/c", b"{}", "unfiled", "x", HEADERS
    )


def test_a_table_of_an_earlier_release_gains_the_headers_column_and_keeps_its_rows(
    any_warehouse: Warehouse,
) -> None:
    any_warehouse.command(EARLIER_DDL)
    old = {k: v for k, v in letter(1).to_row(datetime.now(UTC)).items() if k != "headers"}
    any_warehouse.insert(dead_letters.TABLE, [old])
    dead_letters.ensure(any_warehouse)
    dead_letters.ensure(any_warehouse)  # twice: nothing to add the second time
    any_warehouse.insert(dead_letters.TABLE, [letter(2).to_row(datetime.now(UTC))])
    rows = {r["offset"]: r for r in consumer_letters(any_warehouse, None)}
    assert kept_headers(rows[1]) == ()  # not kept by the earlier release
    assert kept_headers(rows[2]) == HEADERS  # names and binary values, as the record had them


def test_a_new_table_keeps_the_headers(any_warehouse: Warehouse) -> None:
    dead_letters.ensure(any_warehouse)
    any_warehouse.insert(dead_letters.TABLE, [letter(3).to_row(datetime.now(UTC))])
    [row] = dead_letters.recent(any_warehouse)
    assert kept_headers(row) == HEADERS

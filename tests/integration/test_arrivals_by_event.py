"""The by-event arrivals table (`stream_arrivals_by_event`), which the live stream's repeat check
reads by primary key: it answers as the scan of `stream_arrivals` did, a redelivered filing still
counts as a repeat, a replay rebuilds it, and a data directory from before it is filled once, on
chdb and on a ClickHouse server. Also the stream's start position read from a floor: the same
answer as the read of the whole table."""

from __future__ import annotations

import uuid
from pathlib import Path

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_log import MemoryLog
from cem.replay import replay
from cem.runner import ensure_tables
from kernel.filings import FILING_STAGE, file_batch
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, Warehouse
from services.projections import arrivals
from services.projections.arrivals import (
    ARRIVALS,
    ARRIVALS_BY_EVENT,
    BY_EVENT_BACKFILL,
    Arrival,
    LatestPositions,
    Positions,
    earlier_arrivals,
    latest_positions,
    up_to_condition,
)
from tests.integration.test_stream_redelivery import PROJECTIONS, TENANT, chat, process, publish

# What the repeat check read before the by-event table: the event ids across the whole table.
SCAN = f"""SELECT DISTINCT tenant_id, customer_id, event_id FROM {ARRIVALS}
    WHERE event_id IN ({{events}}) AND {{up_to}}"""


def scanned(warehouse: Warehouse, wanted: list[Arrival], up_to: Positions) -> set[tuple[str, ...]]:
    ids = sorted({a.event_id for a in wanted})
    if not ids or not up_to:
        return set()
    up_to_sql, params = up_to_condition(up_to)
    events = ", ".join(f"{{event_{i}:String}}" for i in range(len(ids)))
    rows = warehouse.select(
        SCAN.format(events=events, up_to=up_to_sql),
        {**{f"event_{i}": e for i, e in enumerate(ids)}, **params},
    )
    return {(r["tenant_id"], r["customer_id"], r["event_id"]) for r in rows}


def all_arrivals(warehouse: Warehouse) -> list[Arrival]:
    rows = warehouse.select(
        f"""SELECT log_partition, log_offset, tenant_id, customer_id, event_id FROM {ARRIVALS}
            ORDER BY log_partition, log_offset LIMIT 1 BY log_partition, log_offset"""
    )
    return [Arrival.from_row(r) for r in rows]


def by_event_rows(warehouse: Warehouse) -> list[tuple[object, ...]]:
    rows = warehouse.select(
        f"""SELECT DISTINCT tenant_id, event_id, customer_id, log_partition, log_offset
            FROM {ARRIVALS_BY_EVENT} ORDER BY tenant_id, event_id, log_partition, log_offset"""
    )
    return [tuple(r.values()) for r in rows]


def redeliver_filings(log: MemoryLog) -> None:
    """The filing stage appends a batch's filings and dies before committing its offsets."""
    polled = log.poll(TOUCHPOINTS_TOPIC, FILING_STAGE, 100, 0)
    log.append(FILINGS_TOPIC, file_batch(polled, None).filings)


def history_with_redeliveries(warehouse: Warehouse) -> MemoryLog:
    """Three customers' chats on two partitions, one batch of them filed twice."""
    log = MemoryLog(partitions=2)
    ensure_tables(warehouse, [PROJECTIONS])
    customers = [f"c-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    publish(log, *(chat(c, f"hello {i}") for i, c in enumerate(customers)))
    process(log, warehouse)
    publish(log, *(chat(c, f"again {i}") for i, c in enumerate(customers * 2)))
    redeliver_filings(log)
    process(log, warehouse)  # projects the batch, files it again and projects it again
    publish(log, *(chat(c, "late") for c in customers))
    process(log, warehouse)
    return log


def cursors(found: list[Arrival]) -> list[Positions]:
    """Every cursor a client may hold: each prefix of the arrivals, partition by partition."""
    found_cursors: list[Positions] = [{}]
    for arrival in found:
        found_cursors.append({**found_cursors[-1], arrival.partition: arrival.offset})
    return found_cursors


def test_the_lookup_answers_as_the_scan_of_the_arrivals_did(any_warehouse: Warehouse) -> None:
    history_with_redeliveries(any_warehouse)
    found = all_arrivals(any_warehouse)
    assert len({a.event_id for a in found}) < len(found)  # some events arrived twice
    for up_to in cursors(found):
        for wanted in (found, found[-3:], found[:1]):
            assert earlier_arrivals(any_warehouse, wanted, up_to) == scanned(
                any_warehouse, wanted, up_to
            )


def test_a_redelivered_filing_still_counts_as_a_repeat(any_warehouse: Warehouse) -> None:
    history_with_redeliveries(any_warehouse)
    found = all_arrivals(any_warehouse)
    first: dict[str, Arrival] = {}
    repeats = []
    for arrival in found:
        if arrival.event_id in first:
            repeats.append((first[arrival.event_id], arrival))
        first.setdefault(arrival.event_id, arrival)
    assert repeats
    for earlier, later in repeats:
        passed = {earlier.partition: earlier.offset}
        key = (TENANT, earlier.customer_id, earlier.event_id)
        assert key in earlier_arrivals(any_warehouse, [later], passed)
        # A cursor before the first arrival has not seen the event: not a repeat for it.
        assert key not in earlier_arrivals(any_warehouse, [later], {earlier.partition: -1})


def test_a_replay_rebuilds_the_by_event_table(warehouse: ChdbWarehouse, chdb_path: Path) -> None:
    log = history_with_redeliveries(warehouse)
    rebuilt = ChdbWarehouse(chdb_path, database=f"replay_{uuid.uuid4().hex[:12]}")
    try:
        totals: list[int] = []
        assert replay(log, rebuilt, [PROJECTIONS], on_total=totals.append) > 0
        assert totals == [sum(log.end_offsets(FILINGS_TOPIC).values())]
        assert by_event_rows(rebuilt) == by_event_rows(warehouse)
        assert by_event_rows(warehouse)
    finally:
        rebuilt.drop_database()
        rebuilt.close()


def test_an_old_data_directory_gets_the_table_filled_once(any_warehouse: Warehouse) -> None:
    history_with_redeliveries(any_warehouse)
    expected = by_event_rows(any_warehouse)
    # The same arrivals as an earlier release left them: no by-event table.
    any_warehouse.command(f"DROP TABLE {ARRIVALS_BY_EVENT}")
    ensure_tables(any_warehouse, [PROJECTIONS])
    assert by_event_rows(any_warehouse) == expected
    count = f"SELECT count() AS n FROM {ARRIVALS_BY_EVENT}"
    before = any_warehouse.select(count)
    ensure_tables(any_warehouse, [PROJECTIONS])  # every later start: nothing copied again
    assert any_warehouse.select(count) == before
    found = all_arrivals(any_warehouse)
    for up_to in cursors(found):
        assert earlier_arrivals(any_warehouse, found, up_to) == scanned(any_warehouse, found, up_to)


def test_a_fill_cut_short_is_completed_at_the_next_start(any_warehouse: Warehouse) -> None:
    history_with_redeliveries(any_warehouse)
    expected = by_event_rows(any_warehouse)
    any_warehouse.command(f"DROP TABLE {ARRIVALS_BY_EVENT}")
    # The previous start died while filling: part of the rows under the fill's name.
    any_warehouse.command(arrivals.by_event_ddl(BY_EVENT_BACKFILL, any_warehouse.version))
    columns = "tenant_id, event_id, customer_id, log_partition, log_offset"
    any_warehouse.command(
        f"INSERT INTO {BY_EVENT_BACKFILL} ({columns}) SELECT {columns} FROM {ARRIVALS} LIMIT 2"
    )
    ensure_tables(any_warehouse, [PROJECTIONS])
    assert by_event_rows(any_warehouse) == expected
    tables = any_warehouse.select(
        "SELECT name FROM system.tables WHERE database = currentDatabase()"
    )
    assert BY_EVENT_BACKFILL not in {r["name"] for r in tables}


class _RenamedFirstByAnother:
    """The warehouse as a process sees it while another one fills the by-event table too: the
    other renames its fill just before this one's rename."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner, self.version = inner, inner.version

    def select(self, sql: str, params: dict[str, object] | None = None) -> list[dict[str, object]]:
        return self.inner.select(sql, params)

    def command(self, sql: str, params: dict[str, object] | None = None) -> None:
        if sql.startswith("RENAME TABLE"):
            self.inner.command(arrivals.by_event_ddl(ARRIVALS_BY_EVENT, self.version))
            columns = "tenant_id, event_id, customer_id, log_partition, log_offset"
            self.inner.command(
                f"INSERT INTO {ARRIVALS_BY_EVENT} ({columns}) SELECT {columns} FROM {ARRIVALS}"
            )
        self.inner.command(sql, params)


def test_a_process_whose_rename_lost_leaves_no_copy_behind(any_warehouse: Warehouse) -> None:
    history_with_redeliveries(any_warehouse)
    expected = by_event_rows(any_warehouse)
    any_warehouse.command(f"DROP TABLE {ARRIVALS_BY_EVENT}")
    arrivals.migrate(_RenamedFirstByAnother(any_warehouse))  # type: ignore[arg-type]
    assert by_event_rows(any_warehouse) == expected
    tables = any_warehouse.select(
        "SELECT name FROM system.tables WHERE database = currentDatabase()"
    )
    assert BY_EVENT_BACKFILL not in {r["name"] for r in tables}


def test_a_new_warehouse_gets_an_empty_table(any_warehouse: Warehouse) -> None:
    ensure_tables(any_warehouse, [PROJECTIONS])
    assert by_event_rows(any_warehouse) == []
    ensure_tables(any_warehouse, [PROJECTIONS])  # a second start finds it
    assert by_event_rows(any_warehouse) == []


def test_the_latest_positions_from_any_floor_are_those_of_the_whole_table(
    any_warehouse: Warehouse,
) -> None:
    log = history_with_redeliveries(any_warehouse)
    found = all_arrivals(any_warehouse)
    whole = latest_positions(any_warehouse)
    assert whole == {p: max(a.offset for a in found if a.partition == p) for p in whole}
    for floor in cursors(found):
        assert latest_positions(any_warehouse, floor) == whole
    latest = LatestPositions(any_warehouse)
    assert latest() == whole
    customer = found[-1].customer_id
    publish(log, chat(customer, "new"))
    process(log, any_warehouse)
    assert latest() == latest_positions(any_warehouse) != whole

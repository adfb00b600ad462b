"""The projections consumer on chdb: order independence (B08), reprocessing (F03), replay (F13),
years-wide batches (B09), and the reads the query API serves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.runner import ensure_tables
from kernel.ports import Consumed, Warehouse
from kernel.processing import process_batch, to_micros
from schemas.envelope import Event
from schemas.validate import accept, encode
from services.projections import sql
from services.projections.lookup import lookup_key
from services.projections.projection import ProjectionsProjection
from services.projections.timeline import Cursor, TimelineFilter, decode_cursor

PROJECTION = ProjectionsProjection()
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def wh(warehouse: ChdbWarehouse) -> ChdbWarehouse:
    ensure_tables(warehouse, [PROJECTION])
    return warehouse


def tenant() -> str:
    """A fresh tenant per scenario: random ids instead of truncating tables."""
    return f"t{uuid.uuid4().hex[:10]}"


def raw_event(
    event_type: str, channel: str, payload: dict[str, Any], at: datetime, **kw: Any
) -> dict[str, Any]:
    return {
        "event_id": str(kw.pop("event_id", uuid.uuid4())),
        "channel": channel,
        "type": event_type,
        "customer": kw.pop("customer", {"customer_id": "cust-1", "email": "Ana@Shop.es"}),
        "occurred_at": at.isoformat(),
        "payload": payload,
        **kw,
    }


def accepted(
    raws: Sequence[dict[str, Any]], tenant_id: str, received: datetime | None = None
) -> list[Event]:
    return [accept(raw, tenant_id, received or T0 + timedelta(days=400))[0] for raw in raws]


def deliver(warehouse: Warehouse, events: Sequence[Event]) -> None:
    """One batch through the consumer's pure core and into the warehouse, as the runner does."""
    records = [Consumed("touchpoints", 0, i, b"k", encode(ev)) for i, ev in enumerate(events)]
    result = process_batch(PROJECTION.name, records, PROJECTION.rows)
    assert not result.dead_letters
    for table, rows in result.rows.items():
        warehouse.insert(table, rows)


def whole_timeline(
    warehouse: Warehouse, tenant_id: str, customer_id: str, page: int = 3, **filters: Any
) -> list[dict[str, Any]] | None:
    """Every entry, following cursors page by page; None for an unknown customer."""
    entries: list[dict[str, Any]] = []
    cursor: Cursor | None = None
    while True:
        found = sql.read_timeline(
            warehouse, tenant_id, customer_id, TimelineFilter(**filters), cursor, page
        )
        if found is None:
            assert cursor is None, "a customer vanished between two pages"
            return None
        entries += [e.model_dump() for e in found.entries]
        if found.next_cursor is None:
            return entries
        cursor = decode_cursor(found.next_cursor)


def reads(warehouse: Warehouse, tenant_id: str) -> dict[str, Any]:
    """Everything the query API would show about the scenario's customers."""
    profile = sql.read_profile(warehouse, tenant_id, "cust-1")
    return {
        "timeline": whole_timeline(warehouse, tenant_id, "cust-1"),
        "profile": profile.model_dump() if profile else None,
        "other": whole_timeline(warehouse, tenant_id, "cust-2", page=50),
        "lookup": [
            m.model_dump() for m in sql.find_customers(warehouse, tenant_id, "email", "ana@shop.es")
        ],
    }


# --- generated histories ---------------------------------------------------------------------
# What the edge accepts: no NUL, no lone surrogates (B12 rejects those with a 422).
_TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_TOUCHPOINTS = ["home", "checkout", "support_line", "delivery"]
_PAYLOADS = st.one_of(
    st.builds(lambda a, c: ("order.placed", "web", {"order_id": "o", "amount": str(a), "currency": c}),
              st.decimals(min_value=0, max_value=5000, places=2), st.sampled_from(["EUR", "USD"])),
    st.builds(lambda a: ("order.returned", "web", {"order_id": "o", "amount": str(a), "currency": "EUR"}),
              st.decimals(min_value=0, max_value=500, places=2)),
    st.builds(lambda k, s: ("survey.answered", "survey", {"kind": k, "score": s}),
              st.sampled_from(["csat", "ces"]), st.integers(min_value=1, max_value=5)),
    st.builds(lambda t, c: (t, "email", {"case_id": c}),
              st.sampled_from(["case.opened", "case.resolved", "case.reopened"]), st.sampled_from(["C1", "C2"])),
    st.builds(lambda s: ("call.ended", "phone", {"agent": "ana", "talk_s": s}), st.integers(0, 4000)),
    st.builds(lambda t: ("message.received", "chat", {"text": t}), st.text(_TEXT, max_size=30)),
    st.just(("page.viewed", "web", {"url": "https://shop.example/"})),
)  # fmt: skip


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A customer's events, plus a few of another customer, at few distinct instants (so ties
    between events at the same derived_at are common)."""
    items = draw(
        st.lists(
            st.tuples(_PAYLOADS, st.integers(0, 5), st.sampled_from(_TOUCHPOINTS), st.booleans()),
            min_size=1,
            max_size=12,
        )
    )
    raws = []
    for index, ((event_type, channel, payload), minute, touchpoint, other) in enumerate(items):
        at = T0 + timedelta(minutes=minute)
        raw = raw_event(event_type, channel, payload, at, touchpoint=touchpoint)
        if other and index:  # the first event is always the customer's own
            raw["customer"] = {"customer_id": "cust-2", "phone": "+1 555 0100"}
        raws.append(raw)
    return raws


def _latest(events: Sequence[Event]) -> Event:
    return max(events, key=lambda ev: (ev.derived_at, str(ev.event_id)))


def what_a_crm_knows(events: Sequence[Event]) -> dict[str, Any]:
    """The profile's headline facts, worked out directly from the events (the test's oracle)."""
    cases: dict[str, list[Event]] = {}
    scores: dict[str, list[Event]] = {}
    spend: dict[str, Decimal] = {}
    for ev in events:
        if ev.type.startswith("case."):
            cases.setdefault(ev.payload["case_id"], []).append(ev)
        if ev.type == "survey.answered":
            scores.setdefault(ev.payload["kind"], []).append(ev)
        if ev.type == "order.placed":
            currency = ev.payload["currency"]
            spend[currency] = spend.get(currency, Decimal(0)) + Decimal(ev.payload["amount"])
    last = _latest(events)
    return {
        "last": (last.channel.value, last.touchpoint),
        "open_cases": sorted(c for c, evs in cases.items() if _latest(evs).type != "case.resolved"),
        "scores": {kind: _latest(evs).payload["score"] for kind, evs in scores.items()},
        "spend": spend,
    }


def headline(profile: dict[str, Any]) -> dict[str, Any]:
    satisfaction = profile["satisfaction"]
    return {
        "last": (profile["last_channel"], profile["last_touchpoint"]),
        "open_cases": sorted(c["case_id"] for c in profile["open_cases"]),
        "scores": {kind: s["score"] for kind, s in satisfaction.items() if s is not None},
        "spend": {
            s["currency"]: Decimal(s["amount"])
            for s in profile["orders"]["by_currency"]
            if s["orders"]
        },
    }


@st.composite
def arrivals(draw: st.DrawFn, count: int) -> list[list[int]]:
    """An arrival order split into batches, some of them delivered twice (a processor killed
    between insert and commit re-inserts its batch)."""
    order = draw(st.permutations(range(count)))
    cuts = sorted(draw(st.sets(st.integers(1, max(count - 1, 1)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, count], strict=True) if order[a:b]]
    again = draw(st.lists(st.sampled_from(batches), max_size=2))
    return batches + again


@HYPOTHESIS
@given(data=st.data())
def test_reads_are_identical_for_every_arrival_order_and_redelivery(
    wh: ChdbWarehouse, data: st.DataObject
) -> None:
    raws = data.draw(histories())
    in_order, shuffled = tenant(), tenant()
    deliver(wh, accepted(raws, in_order))
    events = accepted(raws, shuffled)
    for batch in data.draw(arrivals(len(events))):
        deliver(wh, [events[i] for i in batch])

    expected = reads(wh, in_order)
    assert reads(wh, shuffled) == expected
    mine = [ev for ev in events if ev.customer.customer_id == "cust-1"]
    newest_first = sorted(mine, key=lambda ev: (ev.derived_at, str(ev.event_id)), reverse=True)
    assert [e["event_id"] for e in expected["timeline"]] == [
        str(ev.event_id) for ev in newest_first
    ]
    assert expected["profile"]["events"] == len(mine)
    assert headline(expected["profile"]) == what_a_crm_knows(mine)


def test_a_reprocessed_batch_is_stored_once_and_merges_change_nothing(wh: ChdbWarehouse) -> None:
    tid = tenant()
    raws = [
        raw_event(
            "order.placed", "web", {"order_id": "A", "amount": "10.05", "currency": "EUR"}, T0
        ),
        raw_event(
            "survey.answered", "survey", {"kind": "csat", "score": 1}, T0 + timedelta(hours=1)
        ),
        raw_event(
            "case.opened", "email", {"case_id": "C9", "subject": "Refund"}, T0 + timedelta(hours=2)
        ),
    ]
    events = accepted(raws, tid)
    deliver(wh, events)
    deliver(wh, events)
    before = reads(wh, tid)
    assert len(before["timeline"]) == 3
    assert before["profile"]["events"] == 3
    assert before["profile"]["orders"]["by_currency"][0]["amount"] == "10.05"
    assert before["lookup"][0]["events"] == 3
    for table in (sql.TIMELINE, sql.PROFILE_FACTS, sql.IDENTIFIERS):
        wh.command(f"OPTIMIZE TABLE {table} FINAL")
    assert reads(wh, tid) == before
    rows = wh.select(
        f"SELECT count() AS n FROM {sql.TIMELINE} WHERE tenant_id = {{t:String}}", {"t": tid}
    )
    assert rows == [{"n": 3}]


@pytest.fixture
def fresh(chdb_path: Path) -> Iterator[ChdbWarehouse]:
    """A second, empty database on the same chdb data path (chdb allows one path per process)."""
    other = ChdbWarehouse(chdb_path, database=f"replay_{uuid.uuid4().hex[:12]}")
    ensure_tables(other, [PROJECTION])
    yield other
    other.drop_database()
    other.close()


def _table_contents(warehouse: Warehouse, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    keys = {
        sql.TIMELINE: "derived_at, event_id",
        sql.PROFILE_FACTS: "field, key, event_id",
        sql.IDENTIFIERS: "kind, value, customer_id, event_id",
    }
    return {
        table: warehouse.select(
            f"SELECT * FROM {table} WHERE tenant_id = {{t:String}} ORDER BY {key} LIMIT 1 BY {key}",
            {"t": tenant_id},
        )
        for table, key in keys.items()
    }


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raws=histories(), data=st.data())
def test_replaying_the_log_into_fresh_tables_gives_identical_results(
    wh: ChdbWarehouse, fresh: ChdbWarehouse, raws: list[dict[str, Any]], data: st.DataObject
) -> None:
    tid = tenant()
    log = accepted(raws, tid)
    for batch in data.draw(arrivals(len(log))):  # the live tables saw retries and reordering
        deliver(wh, [log[i] for i in batch])
    deliver(fresh, log)  # the replay reads the log once, in log order
    assert reads(fresh, tid) == reads(wh, tid)
    assert _table_contents(fresh, tid) == _table_contents(wh, tid)


def test_a_batch_spanning_thirty_years_is_stored_in_one_partition(wh: ChdbWarehouse) -> None:
    tid = tenant()
    months = [datetime(2000 + m // 12, m % 12 + 1, 15, tzinfo=UTC) for m in range(360)]
    raws = [
        raw_event("page.viewed", "web", {"url": f"https://shop.example/{i}"}, at)
        for i, at in enumerate(months)
    ]
    deliver(wh, accepted(raws, tid, received=datetime(2030, 1, 1, tzinfo=UTC)))

    timeline = whole_timeline(wh, tid, "cust-1", page=500)
    assert timeline is not None
    assert [e["derived_at"] for e in timeline] == sorted(months, reverse=True)
    profile = sql.read_profile(wh, tid, "cust-1")
    assert profile is not None and profile.events == 360
    assert (profile.first_seen, profile.last_seen) == (months[0], months[-1])
    parts = wh.select(
        """SELECT table, uniqExact(partition) AS partitions FROM system.parts
           WHERE database = currentDatabase() AND active GROUP BY table ORDER BY table"""
    )
    # Monthly partitions would have made this one insert 360 partitions, failing it.
    ours = {sql.TIMELINE, sql.PROFILE_FACTS, sql.IDENTIFIERS}
    assert {p["table"]: p["partitions"] for p in parts if p["table"] in ours} == dict.fromkeys(
        ours, 1
    )


def test_timeline_filters_and_pages(wh: ChdbWarehouse) -> None:
    tid = tenant()
    raws = [
        raw_event("page.viewed", "web", {"url": "https://s.example/"}, T0 + timedelta(hours=h))
        for h in range(5)
    ]
    raws += [
        raw_event("message.received", "chat", {"text": "hi"}, T0 + timedelta(hours=h, minutes=30))
        for h in range(5)
    ]
    deliver(wh, accepted(raws, tid))

    chats = whole_timeline(wh, tid, "cust-1", page=2, channels=("chat",))
    assert chats is not None
    assert [e["type"] for e in chats] == ["message.received"] * 5
    window = whole_timeline(
        wh, tid, "cust-1", since=to_micros(T0 + timedelta(hours=1)),
        until=to_micros(T0 + timedelta(hours=2)),
    )  # fmt: skip
    assert window is not None
    assert [e["derived_at"] for e in window] == [
        T0 + timedelta(hours=1, minutes=30),
        T0 + timedelta(hours=1),
    ]
    assert whole_timeline(wh, tid, "cust-1", types=("page.viewed",), channels=("chat",)) == []


def test_unknown_and_other_tenants_customers_are_not_found(wh: ChdbWarehouse) -> None:
    owner, stranger = tenant(), tenant()
    deliver(
        wh, accepted([raw_event("page.viewed", "web", {"url": "https://s.example/"}, T0)], owner)
    )
    assert sql.read_timeline(wh, owner, "cust-1") is not None
    assert sql.read_timeline(wh, stranger, "cust-1") is None
    assert sql.read_timeline(wh, owner, "nobody") is None
    assert sql.read_profile(wh, stranger, "cust-1") is None
    assert sql.find_customers(wh, stranger, "email", "ana@shop.es") == []


def test_lookup_finds_every_customer_an_identifier_was_seen_on(wh: ChdbWarehouse) -> None:
    tid = tenant()
    shared = {"email": "Family@Shop.ES"}
    raws = [
        raw_event("page.viewed", "web", {"url": "https://s.example/"}, T0, customer={"customer_id": "mum", **shared}),
        raw_event("page.viewed", "web", {"url": "https://s.example/"}, T0 + timedelta(days=1), customer={"customer_id": "son", **shared}),
        raw_event("call.ended", "phone", {}, T0 + timedelta(days=2), customer={"phone": "+44 (20) 7946-0000"}),
    ]  # fmt: skip
    deliver(wh, accepted(raws, tid))
    by_email = sql.find_customers(wh, tid, *lookup_key(email="family@shop.es"))
    assert [m.customer_id for m in by_email] == ["son", "mum"]
    [by_phone] = sql.find_customers(wh, tid, *lookup_key(phone="+44 20 7946 0000"))
    assert by_phone.customer_id == "phone:+442079460000" and by_phone.events == 1


def test_an_event_whose_payload_does_not_fit_its_type_becomes_a_dead_letter(
    wh: ChdbWarehouse,
) -> None:
    good = accepted([raw_event("page.viewed", "web", {"url": "https://s.example/"}, T0)], tenant())[
        0
    ]
    poison = good.model_copy(update={"event_id": uuid.uuid4(), "type": "order.placed"})
    records = [
        Consumed("touchpoints", 0, i, b"k", encode(ev)) for i, ev in enumerate([poison, good])
    ]
    result = process_batch(PROJECTION.name, records, PROJECTION.rows)
    assert [(d.offset, d.reason) for d in result.dead_letters] == [(0, "processing_failed")]
    assert [r["event_id"] for r in result.rows[sql.TIMELINE]] == [str(good.event_id)]
    assert result.next_offsets == {0: 2}


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def any_wh(request: pytest.FixtureRequest) -> Warehouse:
    """chdb and a ClickHouse server (18.16 where the CI provisions it)."""
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    ensure_tables(warehouse, [PROJECTION])
    return warehouse


def test_repeated_filters_mean_any_of_and_a_type_prefix_matches_its_family(
    any_wh: Warehouse,
) -> None:
    tid = tenant()
    raws = [
        raw_event("page.viewed", "web", {"url": "https://s.example/"}, T0),
        raw_event("message.received", "chat", {"text": "hi"}, T0 + timedelta(hours=1)),
        raw_event("call.answered", "phone", {"agent": "ann"}, T0 + timedelta(hours=2)),
        raw_event("call.ended", "phone", {"agent": "ann", "talk_s": 60}, T0 + timedelta(hours=3)),
    ]
    deliver(any_wh, accepted(raws, tid))

    def types(**filters: Any) -> list[str]:
        found = whole_timeline(any_wh, tid, "cust-1", page=10, **filters)
        assert found is not None
        return [e["type"] for e in found]

    assert types(channels=("chat", "web")) == ["message.received", "page.viewed"]
    assert types(type_prefixes=("call.",)) == ["call.ended", "call.answered"]
    both = types(types=("page.viewed",), type_prefixes=("call.",))
    assert both == ["call.ended", "call.answered", "page.viewed"]
    assert types(type_prefixes=("call.",), channels=("chat",)) == []


def test_copies_of_re_inserted_batches_never_shorten_or_repeat_a_timeline_page(
    any_wh: Warehouse,
) -> None:
    tid = tenant()
    raws = [
        raw_event("page.viewed", "web", {"url": f"https://s.example/{i}"}, T0 + timedelta(hours=i))
        for i in range(7)
    ]
    events = accepted(raws, tid)
    # Merges would collapse the copies; held back, every read sees three of most events.
    any_wh.command(f"SYSTEM STOP MERGES {sql.TIMELINE}")
    try:
        for _ in range(3):
            deliver(any_wh, events[1:])
        deliver(any_wh, events[:1])
        stored = any_wh.select(
            f"SELECT count() AS n FROM {sql.TIMELINE} WHERE tenant_id = {{t:String}}", {"t": tid}
        )
        assert stored == [{"n": 19}]
        newest_first = [str(ev.event_id) for ev in reversed(events)]
        for page in (1, 2, 3, 50):
            timeline = whole_timeline(any_wh, tid, "cust-1", page=page)
            assert timeline is not None
            assert [e["event_id"] for e in timeline] == newest_first
        first = sql.read_timeline(any_wh, tid, "cust-1", limit=6)
        assert first is not None and len(first.entries) == 6 and first.next_cursor is not None
    finally:
        any_wh.command(f"SYSTEM START MERGES {sql.TIMELINE}")

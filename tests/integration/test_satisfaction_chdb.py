"""The satisfaction SQL on chdb agrees with the Python reference, in any order, exactly once."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.ports import Consumed, Warehouse
from kernel.processing import process_batch, to_micros
from schemas.envelope import Event
from schemas.validate import accept, encode
from services.satisfaction import sql
from services.satisfaction.attribution import attribute_response
from services.satisfaction.attribution_sql import CUSTOMER_TOUCHPOINTS_TABLE
from services.satisfaction.drilldown import ResponsesQuery, read_responses
from services.satisfaction.metrics import Answer, MetricValue, evaluate_all
from services.satisfaction.projection import SatisfactionProjection

BASE = datetime(2026, 3, 1, tzinfo=UTC)
RECEIVED = BASE + timedelta(days=4)
HORIZON_MIN = 3 * 24 * 60  # events spread over three days, so day buckets differ
EVERYTHING = (0, to_micros(RECEIVED) + 1)
TOUCHPOINTS = ["support_line", "billing_line", "live_chat"]
SURVEY_TOUCHPOINTS = ["post_call_survey", "web_survey"]
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
projection = SatisfactionProjection()
db_settings = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

Report = dict[tuple[str, str, int], tuple[dict[str, int], dict[str, MetricValue]]]


# --- generated data -------------------------------------------------------------------------
minutes = st.one_of(st.integers(0, HORIZON_MIN), st.sampled_from([0, 60, 1440]))  # ties, edges
interactions = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            [("phone", "call.ended"), ("chat", "message.sent"), ("email", "case.opened")]
        ),
        "touchpoint": st.sampled_from(TOUCHPOINTS),
        "agent": st.sampled_from(["", "ann", "bob"]),
        "queue": st.sampled_from(["", "billing", "tech"]),
        "conversation": st.integers(0, 2),
        "minute": minutes,
    }
)
answers = st.sampled_from(sorted(SCALES)).flatmap(
    lambda kind: st.fixed_dictionaries(
        {
            "kind": st.just(kind),
            "score": st.integers(*SCALES[kind]),
            # 0-2: a conversation that may have interactions; 3: one that never has; None: none
            "conversation": st.one_of(st.none(), st.integers(0, 3)),
            "touchpoint": st.sampled_from(SURVEY_TOUCHPOINTS),
            "customer": st.sampled_from(["cust-1", "cust-2", "cust-3"]),
            "minute": minutes,
        }
    )
)


def _raw_interaction(spec: dict[str, Any]) -> dict[str, Any]:
    channel, event_type = spec["kind"]
    payload = {"case_id": "case-1"} if event_type == "case.opened" else {}
    payload |= {k: spec[k] for k in ("agent", "queue") if spec[k]}
    return {
        "channel": channel,
        "type": event_type,
        "touchpoint": spec["touchpoint"],
        "correlation_id": f"conv-{spec['conversation']}",
        "customer": {"customer_id": "cust-1"},
        "occurred_at": (BASE + timedelta(minutes=spec["minute"])).isoformat(),
        "payload": payload,
    }


def _raw_answer(spec: dict[str, Any]) -> dict[str, Any]:
    raw = {
        "channel": "survey",
        "type": "survey.answered",
        "touchpoint": spec["touchpoint"],
        "customer": {"customer_id": spec["customer"]},
        "occurred_at": (BASE + timedelta(minutes=spec["minute"])).isoformat(),
        "payload": {"kind": spec["kind"], "score": spec["score"]},
    }
    if spec["conversation"] is not None:
        raw["correlation_id"] = f"conv-{spec['conversation']}"
    return raw


scenarios = st.tuples(st.lists(interactions, max_size=12), st.lists(answers, max_size=25)).map(
    lambda specs: [_raw_interaction(s) for s in specs[0]] + [_raw_answer(s) for s in specs[1]]
)


def new_tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def make_events(tenant: str, raws: Iterable[dict[str, Any]]) -> list[Event]:
    return [accept({**raw, "event_id": str(uuid.uuid4())}, tenant, RECEIVED)[0] for raw in raws]


# --- loading, as the runner does it ---------------------------------------------------------
def load(warehouse: Warehouse, events: Sequence[Event], batch_size: int = 1000) -> None:
    for start in range(0, len(events), batch_size):
        records = [
            Consumed("touchpoints", 0, start + i, b"k", encode(e))
            for i, e in enumerate(events[start : start + batch_size])
        ]
        result = process_batch(projection.name, records, projection.rows)
        assert not result.dead_letters
        for table, rows in result.rows.items():
            warehouse.insert(table, rows)


@pytest.fixture(params=["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    """The same tests on chdb and on a ClickHouse server (18.16 where the CI provisions it)."""
    fixture = "warehouse" if request.param == "chdb" else "clickhouse_warehouse"
    warehouse: Warehouse = request.getfixturevalue(fixture)
    for statement in projection.ddl(warehouse.version):
        warehouse.command(statement)
    return warehouse


# --- the reference and the warehouse, in one shape ------------------------------------------
def _rows(events: Iterable[Event], table: str) -> list[dict[str, Any]]:
    return [row for e in events for row in projection.rows(e).get(table, [])]


def _bucket_start(micros: int, bucket: str, since: int, zone: str = "UTC") -> int:
    seconds = micros // 1_000_000
    if zone != "UTC" and bucket != "total":  # the zone's wall clock: its hours and midnights
        local = datetime.fromtimestamp(seconds, ZoneInfo(zone))
        if bucket == "hour":
            return int(local.replace(minute=0, second=0).timestamp())
        day = local.date() - timedelta(days=local.weekday() if bucket == "week" else 0)
        day = day.replace(day=1) if bucket == "month" else day
        return int(datetime.combine(day, time(), ZoneInfo(zone)).timestamp())
    if bucket in ("hour", "day"):
        width = 3600 if bucket == "hour" else 86400
        return seconds // width * width
    day = datetime.fromtimestamp(seconds, UTC).date()
    if bucket == "week":
        return int(datetime.combine(day - timedelta(days=day.weekday()), time(), UTC).timestamp())
    if bucket == "month":
        return int(datetime.combine(day.replace(day=1), time(), UTC).timestamp())
    return since // 1_000_000  # total: one bucket starting at `since`


def _sent_at(events: Sequence[Event]) -> dict[tuple[str, str], int]:
    sent: dict[tuple[str, str], int] = {}
    for row in _rows(events, "service_events"):
        if row["type"] == "survey.sent":
            key = (row["tenant_id"], row["survey_id"])
            sent[key] = min(sent.get(key, row["derived_at"]), row["derived_at"])
    return sent


def reference_report(events: Sequence[Event], q: sql.TouchpointQuery) -> Report:
    interactions = _rows(events, sql.INTERACTIONS_TABLE)
    touchpoints = _rows(events, CUSTOMER_TOUCHPOINTS_TABLE)
    sent_at = _sent_at(events)
    groups: dict[tuple[str, str, int], list[Answer]] = defaultdict(list)
    for r in _rows(events, sql.RESPONSES_TABLE):
        where = attribute_response(r, interactions, touchpoints, sent_at)
        if not q.since <= r["answered_at"] < q.until:
            continue
        if q.channels and where.channel not in q.channels:
            continue
        if q.touchpoints and where.touchpoint not in q.touchpoints:
            continue
        start = _bucket_start(r["answered_at"], q.bucket, q.since, q.time_zone)
        key = (where.touchpoint, where.channel, start)
        groups[key].append(Answer(r["kind"], r["score"], r["scale"]))
    return {key: (_counts(group), evaluate_all(group)) for key, group in groups.items()}


def _counts(group: list[Answer]) -> dict[str, int]:
    return {kind: sum(1 for a in group if a.kind == kind) for kind in SCALES}


def warehouse_report(warehouse: Warehouse, q: sql.TouchpointQuery) -> Report:
    rows = sql.read_touchpoint_metrics(warehouse, q)
    report = {(r.touchpoint, r.channel, r.bucket_start): (r.responses, r.metrics) for r in rows}
    assert len(report) == len(rows), "one row per touchpoint × channel × bucket"
    return report


def assert_same_report(actual: Report, expected: Report) -> None:
    assert actual.keys() == expected.keys()
    for key, (counts, metrics) in expected.items():
        assert actual[key][0] == counts, key
        for name, value in metrics.items():
            got = actual[key][1][name]
            assert got.n == value.n, (key, name)
            assert got.value == (None if value.value is None else pytest.approx(value.value))
            if value.interval is None:
                assert got.interval is None, (key, name)
            else:
                assert got.interval == pytest.approx(value.interval), (key, name)


def reference_alerts(events: Sequence[Event], q: sql.AlertQuery) -> list[tuple[Any, ...]]:
    interactions = _rows(events, sql.INTERACTIONS_TABLE)
    touchpoints = _rows(events, CUSTOMER_TOUCHPOINTS_TABLE)
    sent_at = _sent_at(events)
    answers = {r["event_id"]: r for r in _rows(events, sql.RESPONSES_TABLE)}
    found = []
    for a in _rows(events, sql.ALERTS_TABLE):
        if not q.since <= a["raised_at"] < q.until or (a["raised_at"], a["alert_id"]) >= q.before:
            continue
        if q.customers is not None and a["customer_id"] not in q.customers:
            continue
        # The alert is where the answer that raised it is counted, cells and drill-down alike.
        where = attribute_response(answers[a["event_id"]], interactions, touchpoints, sent_at)
        if q.touchpoints and where.touchpoint not in q.touchpoints:
            continue
        if q.channels and where.channel not in q.channels:
            continue
        found.append(
            (a["raised_at"], a["alert_id"], where.touchpoint, where.channel, where.agent,
             where.queue, a["score"])
        )  # fmt: skip
    return sorted(found, reverse=True)[: q.limit]


def warehouse_alerts(warehouse: Warehouse, q: sql.AlertQuery) -> list[tuple[Any, ...]]:
    return [
        (a["raised_at"], a["alert_id"], a["touchpoint"], a["channel"], a["agent"], a["queue"],
         a["score"])
        for a in sql.read_alerts(warehouse, q)
    ]  # fmt: skip


# --- tests ----------------------------------------------------------------------------------
filters = st.fixed_dictionaries(
    {
        "bucket": st.sampled_from(["hour", "day", "week", "month", "total"]),
        "zone": st.sampled_from(["UTC", "UTC", "Europe/Madrid", "Asia/Kolkata", "America/Lima"]),
        "channels": st.sampled_from(
            [(), (), ("phone",), ("chat",), ("survey",), ("phone", "chat")]
        ),
        "touchpoints": st.sampled_from(
            [(), (), *((t,) for t in TOUCHPOINTS + SURVEY_TOUCHPOINTS), tuple(TOUCHPOINTS[:2])]
        ),
        "window": st.one_of(
            st.just(EVERYTHING),
            st.tuples(st.integers(0, HORIZON_MIN), st.integers(1, HORIZON_MIN)).map(
                lambda w: (
                    to_micros(BASE + timedelta(minutes=w[0])),
                    to_micros(BASE + timedelta(minutes=w[0] + w[1])),
                )
            ),
        ),
    }
)


@db_settings
@given(scenarios, filters)
def test_sql_metrics_match_the_python_reference(
    wh: Warehouse, raws: list[dict[str, Any]], f: dict[str, Any]
) -> None:
    tenant = new_tenant()
    events = make_events(tenant, raws)
    load(wh, events)
    since, until = f["window"]
    q = sql.TouchpointQuery(
        tenant, since, until, f["bucket"], f["channels"], f["touchpoints"], f["zone"]
    )
    assert_same_report(warehouse_report(wh, q), reference_report(events, q))


alert_filters = st.fixed_dictionaries(
    {
        "since_min": st.sampled_from([None, 0, 1440, 2880]),
        "until_min": st.sampled_from([None, 60, 1441, 2880]),
        # a page after a cursor; ties at minute 1440 are common, so the alert id decides there
        "before": st.sampled_from([None, (1440, ""), (1440, "8"), (2880, "f")]),
        # no filter, one customer, or the members of a merged one (some with no alerts at all)
        "customers": st.sampled_from(
            [None, ("cust-1",), ("cust-2",), ("cust-1", "cust-3"), ("cust-9", "cust-2", "cust-3")]
        ),
        "touchpoints": st.sampled_from(
            [(), ("support_line",), ("post_call_survey",), ("support_line", "post_call_survey")]
        ),
        "channels": st.sampled_from([(), ("phone",), ("survey",), ("chat", "phone")]),
        "limit": st.integers(1, 30),
    }
)


def _at(minute: int) -> int:
    return to_micros(BASE + timedelta(minutes=minute))


@db_settings
@given(scenarios, alert_filters)
def test_sql_alerts_match_the_python_reference(
    wh: Warehouse, raws: list[dict[str, Any]], f: dict[str, Any]
) -> None:
    tenant = new_tenant()
    events = make_events(tenant, raws)
    load(wh, events)
    since = 0 if f["since_min"] is None else _at(f["since_min"])
    until = sql.NO_END if f["until_min"] is None else _at(f["until_min"])
    before = (sql.NO_END, "") if f["before"] is None else (_at(f["before"][0]), f["before"][1])
    q = sql.AlertQuery(
        tenant, since, f["customers"], f["touchpoints"], f["limit"], until, before, f["channels"]
    )
    assert warehouse_alerts(wh, q) == reference_alerts(events, q)


@db_settings
@given(scenarios, st.randoms(use_true_random=False), st.integers(1, 5))
def test_arrival_order_does_not_change_metrics_or_alerts(
    wh: Warehouse, raws: list[dict[str, Any]], rnd: random.Random, batch_size: int
) -> None:
    tenant = new_tenant()
    events = make_events(tenant, raws)
    load(wh, events)
    q = sql.TouchpointQuery(tenant, *EVERYTHING, "hour")
    in_order = warehouse_report(wh, q), sql.read_alerts(wh, sql.AlertQuery(tenant, limit=1000))
    shuffled = events[:]
    rnd.shuffle(shuffled)  # e.g. survey answers before the calls they rate
    wh.command(f"TRUNCATE TABLE {sql.RESPONSES_TABLE}")
    wh.command(f"TRUNCATE TABLE {sql.INTERACTIONS_TABLE}")
    wh.command(f"TRUNCATE TABLE {sql.ALERTS_TABLE}")
    wh.command(f"TRUNCATE TABLE {CUSTOMER_TOUCHPOINTS_TABLE}")
    load(wh, shuffled, batch_size)
    reordered = warehouse_report(wh, q), sql.read_alerts(wh, sql.AlertQuery(tenant, limit=1000))
    assert reordered == in_order


def test_a_batch_inserted_twice_gives_identical_metrics_and_alerts(wh: Warehouse) -> None:
    # F03: a processor killed between the insert and the commit re-inserts its whole batch.
    tenant = new_tenant()
    rnd = random.Random(7)
    events = make_events(tenant, [_raw_answer(_answer_spec(rnd, i)) for i in range(60)])
    events += make_events(tenant, [_raw_interaction(_call_spec(i)) for i in range(5)])
    q = sql.TouchpointQuery(tenant, *EVERYTHING)
    alerts_q = sql.AlertQuery(tenant, limit=1000)
    load(wh, events)
    once = warehouse_report(wh, q), sql.read_alerts(wh, alerts_q)
    load(wh, events)
    assert (warehouse_report(wh, q), sql.read_alerts(wh, alerts_q)) == once
    for table in (
        sql.RESPONSES_TABLE,
        sql.INTERACTIONS_TABLE,
        sql.ALERTS_TABLE,
        CUSTOMER_TOUCHPOINTS_TABLE,
    ):
        wh.command(f"OPTIMIZE TABLE {table} FINAL")  # after the merge, too
    assert (warehouse_report(wh, q), sql.read_alerts(wh, alerts_q)) == once
    assert sum(sum(counts.values()) for counts, _ in once[0].values()) == 60
    assert_same_report(once[0], reference_report(events, q))


def _answer_spec(rnd: random.Random, i: int) -> dict[str, Any]:
    kind = rnd.choice(sorted(SCALES))
    return {
        "kind": kind,
        "score": rnd.randint(*SCALES[kind]),
        "conversation": rnd.choice([None, 0, 1, 2, 3, 4]),
        "touchpoint": rnd.choice(SURVEY_TOUCHPOINTS),
        "customer": f"cust-{i % 7}",
        "minute": rnd.randint(0, HORIZON_MIN),
    }


def _call_spec(conversation: int) -> dict[str, Any]:
    return {
        "kind": ("phone", "call.ended"),
        "touchpoint": TOUCHPOINTS[conversation % len(TOUCHPOINTS)],
        "agent": f"agent-{conversation}",
        "queue": "billing",
        "conversation": conversation,
        "minute": conversation * 10,
    }


def test_a_survey_answered_before_its_call_is_attributed_once_the_call_arrives(
    wh: Warehouse,
) -> None:
    tenant = new_tenant()
    answer = _raw_answer(
        {"kind": "csat", "score": 2, "conversation": 0, "touchpoint": "post_call_survey",
         "customer": "cust-1", "minute": 30}
    )  # fmt: skip
    call = _raw_interaction(_call_spec(0))
    q = sql.TouchpointQuery(tenant, *EVERYTHING)
    load(wh, make_events(tenant, [answer]))
    assert [(r.touchpoint, r.channel) for r in sql.read_touchpoint_metrics(wh, q)] == [
        ("post_call_survey", "survey")
    ]
    load(wh, make_events(tenant, [call]))
    (row,) = sql.read_touchpoint_metrics(wh, q)
    assert (row.touchpoint, row.channel, row.metrics["csat@1"]) == (
        "support_line",
        "phone",
        MetricValue(0.0, 1),
    )
    (alert,) = sql.read_alerts(wh, sql.AlertQuery(tenant))
    assert (alert["touchpoint"], alert["agent"], alert["queue"]) == (
        "support_line",
        "agent-0",
        "billing",
    )


def test_the_latest_interaction_of_a_conversation_wins_with_its_latest_known_agent(
    wh: Warehouse,
) -> None:
    tenant = new_tenant()
    ivr = {**_call_spec(0), "touchpoint": "ivr", "agent": "", "queue": "tech", "minute": 1}
    desk = {**_call_spec(0), "touchpoint": "support_line", "agent": "ann", "queue": "", "minute": 2}
    ended = {**_call_spec(0), "touchpoint": "support_line", "agent": "", "queue": "", "minute": 3}
    answer = {"kind": "ces", "score": 6, "conversation": 0, "touchpoint": "web_survey",
              "customer": "cust-1", "minute": 4}  # fmt: skip
    raws = [_raw_answer(answer), *(_raw_interaction(s) for s in (ended, ivr, desk))]
    load(wh, make_events(tenant, raws))
    (row,) = sql.read_touchpoint_metrics(wh, sql.TouchpointQuery(tenant, *EVERYTHING))
    assert (row.touchpoint, row.metrics["ces@1"], row.metrics["ces_easy@1"]) == (
        "support_line",
        MetricValue(6.0, 1),
        MetricValue(100.0, 1),
    )
    load(wh, make_events(tenant, [_raw_answer({**answer, "score": 1})]))
    (alert,) = sql.read_alerts(wh, sql.AlertQuery(tenant))
    assert (alert["touchpoint"], alert["agent"], alert["queue"]) == ("support_line", "ann", "tech")


def test_another_tenants_data_is_never_read_or_joined(wh: Warehouse) -> None:
    acme, globex = new_tenant(), new_tenant()
    answer = {"kind": "nps", "score": 1, "conversation": 0, "touchpoint": "web_survey",
              "customer": "cust-1", "minute": 5}  # fmt: skip
    load(wh, make_events(acme, [_raw_answer(answer)]))
    load(wh, make_events(globex, [_raw_interaction(_call_spec(0))]))  # same conversation id
    (row,) = sql.read_touchpoint_metrics(wh, sql.TouchpointQuery(acme, *EVERYTHING))
    assert (row.touchpoint, row.channel) == ("web_survey", "survey")
    assert sql.read_touchpoint_metrics(wh, sql.TouchpointQuery(globex, *EVERYTHING)) == []
    assert sql.read_alerts(wh, sql.AlertQuery(globex, customers=("cust-1",))) == []
    assert len(sql.read_alerts(wh, sql.AlertQuery(acme, customers=("cust-1",)))) == 1
    assert len(sql.read_alerts(wh, sql.AlertQuery(acme, customers=("cust-2", "cust-1")))) == 1


def test_filter_values_are_parameters_not_sql(wh: Warehouse) -> None:
    tenant = new_tenant()
    answer = {"kind": "csat", "score": 1, "conversation": None, "touchpoint": "web_survey",
              "customer": "cust-1", "minute": 5}  # fmt: skip
    load(wh, make_events(tenant, [_raw_answer(answer)]))
    hostile = "x' OR '1'='1"
    assert sql.read_alerts(wh, sql.AlertQuery(tenant, customers=(hostile,))) == []
    assert sql.read_alerts(wh, sql.AlertQuery(tenant, customers=("cust-2", hostile))) == []
    assert sql.read_alerts(wh, sql.AlertQuery(hostile)) == []
    q = sql.TouchpointQuery(tenant, *EVERYTHING, channels=(hostile,), touchpoints=(hostile,))
    assert sql.read_touchpoint_metrics(wh, q) == []


def test_a_correlated_answer_counts_for_the_interaction_before_the_survey_was_sent(
    wh: Warehouse,
) -> None:
    tenant = new_tenant()
    call = {**_call_spec(0), "touchpoint": "support_line", "minute": 1}
    later_chat = {**_call_spec(0), "kind": ("chat", "message.sent"), "touchpoint": "live_chat",
                  "minute": 10}  # fmt: skip
    sent = {
        "channel": "email", "type": "survey.sent", "touchpoint": "post_call_survey",
        "correlation_id": "conv-0", "customer": {"customer_id": "cust-1"},
        "occurred_at": (BASE + timedelta(minutes=5)).isoformat(),
        "payload": {"survey_id": "s-1", "kind": "csat"},
    }  # fmt: skip
    answer = _raw_answer({"kind": "csat", "score": 5, "conversation": 0, "customer": "cust-1",
                          "touchpoint": "post_call_survey", "minute": 20})  # fmt: skip
    answer["payload"]["survey_id"] = "s-1"
    events = make_events(
        tenant, [answer, _raw_interaction(later_chat), sent, _raw_interaction(call)]
    )
    load(wh, events)
    q = sql.TouchpointQuery(tenant, *EVERYTHING)
    (row,) = sql.read_touchpoint_metrics(wh, q)
    assert (row.touchpoint, row.channel) == ("support_line", "phone")  # not the later chat
    assert_same_report(warehouse_report(wh, q), reference_report(events, q))


def test_an_answer_without_correlation_counts_for_the_customers_latest_touchpoint(
    wh: Warehouse,
) -> None:
    tenant = new_tenant()
    visit = {
        "channel": "web", "type": "page.viewed", "touchpoint": "checkout",
        "customer": {"customer_id": "cust-1"},
        "occurred_at": (BASE + timedelta(minutes=3)).isoformat(), "payload": {"url": "/pay"},
    }  # fmt: skip
    after = {**visit, "touchpoint": "delivery",
             "occurred_at": (BASE + timedelta(minutes=50)).isoformat()}  # fmt: skip
    answers = [
        _raw_answer({"kind": "nps", "score": 9, "conversation": None, "customer": customer,
                     "touchpoint": "web_survey", "minute": 30})
        for customer in ("cust-1", "cust-2")
    ]  # fmt: skip
    events = make_events(tenant, [*answers, after, visit])
    load(wh, events)
    q = sql.TouchpointQuery(tenant, *EVERYTHING)
    found = {
        (r.touchpoint, r.channel): r.responses["nps"] for r in sql.read_touchpoint_metrics(wh, q)
    }
    assert found == {("checkout", "web"): 1, ("web_survey", "survey"): 1}  # cust-2 has none
    assert_same_report(warehouse_report(wh, q), reference_report(events, q))


def test_an_alert_names_where_its_answer_is_counted_not_the_conversations_latest_interaction(
    wh: Warehouse,
) -> None:
    tenant = new_tenant()
    call = {**_call_spec(0), "agent": "ann", "queue": "tech", "minute": 5}
    later_chat = {**_call_spec(0), "kind": ("chat", "message.sent"), "touchpoint": "live_chat",
                  "agent": "bob", "queue": "billing", "minute": 40}  # fmt: skip
    # The old rule: the conversation's latest interaction (the chat), and no attribution at all
    # without a correlation id. METRICS.md: the call that triggered each survey.
    correlated = {"kind": "csat", "score": 1, "conversation": 0, "customer": "cust-1",
                  "touchpoint": "post_call_survey", "minute": 20}  # fmt: skip
    uncorrelated = {**correlated, "kind": "nps", "score": 2, "conversation": None, "minute": 25,
                    "touchpoint": "web_survey"}  # fmt: skip
    raws = [_raw_answer(correlated), _raw_answer(uncorrelated)]
    events = make_events(tenant, [*raws, _raw_interaction(later_chat), _raw_interaction(call)])
    load(wh, events)
    alerts = sql.read_alerts(wh, sql.AlertQuery(tenant))
    assert [
        (a["metric"], a["touchpoint"], a["channel"], a["agent"], a["queue"]) for a in alerts
    ] == [
        ("nps", "support_line", "phone", "ann", "tech"),
        ("csat", "support_line", "phone", "ann", "tech"),
    ]
    page = read_responses(wh, ResponsesQuery(tenant, *EVERYTHING))
    counted = {r["event_id"]: (r["touchpoint"], r["channel"]) for r in page.rows}
    assert {a["event_id"]: (a["touchpoint"], a["channel"]) for a in alerts} == counted
    for chosen in ({"channels": ("chat",)}, {"touchpoints": ("live_chat", "web_survey")}):
        assert sql.read_alerts(wh, sql.AlertQuery(tenant, **chosen)) == []
    q = sql.AlertQuery(tenant, touchpoints=("support_line",), channels=("phone", "chat"))
    assert sql.read_alerts(wh, q) == alerts
    assert warehouse_alerts(wh, q) == reference_alerts(events, q)

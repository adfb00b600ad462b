"""The satisfaction and alerts routers over chdb, as a CX dashboard or agent console sees them."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import kernel.api_errors
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_access_audit import MemoryAccessAudit
from cem.adapters.memory_keys import MemoryKeyStore
from schemas.validate import accept
from services.query_api.routers.alerts import router as alerts_router
from services.query_api.routers.satisfaction import router as satisfaction_router
from services.satisfaction.metrics import Answer, evaluate_all
from services.satisfaction.projection import SatisfactionProjection

NOW = datetime(2026, 4, 30, 18, 30, tzinfo=UTC)
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
TOUCHPOINTS = "/v1/satisfaction/touchpoints"
ALERTS = "/v1/alerts"


class StoppedClock:
    def now(self) -> datetime:
        return NOW


class Api:
    """A test client with helpers to store events and make keys."""

    def __init__(self, warehouse: ChdbWarehouse) -> None:
        app = FastAPI()
        kernel.api_errors.install(app)
        app.include_router(satisfaction_router)
        app.include_router(alerts_router)
        app.state.warehouse, app.state.keys, app.state.clock = (
            warehouse,
            MemoryKeyStore(),
            StoppedClock(),
        )
        app.state.access_audit = MemoryAccessAudit()  # one customer's alerts are an audited read
        self.app, self.warehouse, self.keys = app, warehouse, app.state.keys
        self.client = TestClient(app)

    def key(self, tenant: str, role: str = "manager") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys.create(tenant, role)[1]}"}

    def store(self, tenant: str, raws: list[dict[str, Any]]) -> None:
        """Accept raw events as the edge does and project them as the consumer does."""
        projection = SatisfactionProjection()
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for raw in raws:
            event, _ = accept({"event_id": str(uuid.uuid4()), **raw}, tenant, NOW)
            for table, rows in projection.rows(event).items():
                by_table[table] += rows
        for table, rows in by_table.items():
            self.warehouse.insert(table, rows)

    def get(self, path: str, headers: dict[str, str], **params: Any) -> Any:
        return self.client.get(path, headers=headers, params=params)


@pytest.fixture
def api(warehouse: ChdbWarehouse) -> Iterator[Api]:
    projection = SatisfactionProjection()
    for statement in projection.ddl(warehouse.version):
        warehouse.command(statement)
    yield Api(warehouse)


def at(delta: timedelta) -> str:
    return (NOW - delta).isoformat()


def answer(kind: str, score: int, ago: timedelta, **fields: Any) -> dict[str, Any]:
    return {
        "channel": "survey",
        "type": "survey.answered",
        "touchpoint": "post_contact_survey",
        "customer": {"customer_id": "cust-1"},
        "occurred_at": at(ago),
        "payload": {"kind": kind, "score": score},
        **fields,
    }


def call(conversation: str, ago: timedelta, agent: str = "ann", **fields: Any) -> dict[str, Any]:
    return {
        "channel": "phone",
        "type": "call.ended",
        "touchpoint": "support_line",
        "correlation_id": conversation,
        "customer": {"customer_id": "cust-1"},
        "occurred_at": at(ago),
        "payload": {"agent": agent, "queue": "billing", "talk_s": 120},
        **fields,
    }


# --- security ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", [TOUCHPOINTS, ALERTS])
def test_a_request_without_a_valid_key_is_401(api: Api, path: str) -> None:
    missing = api.client.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    assert api.get(path, {"Authorization": "Bearer not-a-key"}).status_code == 401
    headers = api.key("acme")
    api.keys.revoke(api.keys.list("acme")[0]["key_id"])
    assert api.get(path, headers).status_code == 401


@pytest.mark.parametrize("path", [TOUCHPOINTS, ALERTS])
def test_ingest_keys_cannot_read_satisfaction_or_alerts(api: Api, path: str) -> None:
    response = api.get(path, api.key("acme", role="ingest"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", ["agent", "manager", "admin"])
def test_readers_get_200(api: Api, role: str) -> None:
    assert api.get(TOUCHPOINTS, api.key("acme", role)).status_code == 200
    assert api.get(ALERTS, api.key("acme", role)).status_code == 200


def test_a_tenant_never_sees_another_tenants_responses_or_alerts(api: Api) -> None:
    # S01: the tenant comes from the key; nothing in the request can name another tenant.
    api.store("acme", [answer("csat", 1, timedelta(days=1)), call("c-1", timedelta(days=2))])
    globex = api.key("globex")
    assert api.get(TOUCHPOINTS, globex).json()["buckets"] == []
    assert api.get(ALERTS, globex, customer_id="cust-1").json()["alerts"] == []
    assert api.get(TOUCHPOINTS, globex, tenant_id="acme").json()["buckets"] == []
    acme = api.key("acme")
    assert len(api.get(TOUCHPOINTS, acme).json()["buckets"]) == 1
    assert len(api.get(ALERTS, acme, customer_id="cust-1").json()["alerts"]) == 1


# --- satisfaction ------------------------------------------------------------------------
def _random_answers(rnd: random.Random, count: int) -> list[dict[str, Any]]:
    raws = []
    for _ in range(count):
        kind = rnd.choice(sorted(SCALES))
        ago = timedelta(days=rnd.choice([1, 2]), minutes=rnd.randint(0, 600))
        raws.append(answer(kind, rnd.randint(*SCALES[kind]), ago))
    return raws


def test_metrics_per_day_match_the_definitions(api: Api) -> None:
    raws = _random_answers(random.Random(11), 90)
    api.store("acme", raws)
    body = api.get(TOUCHPOINTS, api.key("acme")).json()
    assert [d["key"] for d in body["definitions"]] == [
        "nps@1",
        "csat@1",
        "csat_mean@1",
        "ces@1",
        "ces_easy@1",
    ]
    by_day: dict[str, list[Answer]] = defaultdict(list)
    for raw in raws:
        day = raw["occurred_at"][:10] + "T00:00:00Z"
        scale = "{}-{}".format(*SCALES[raw["payload"]["kind"]])
        by_day[day].append(Answer(raw["payload"]["kind"], raw["payload"]["score"], scale))
    assert [b["bucket_start"] for b in body["buckets"]] == sorted(by_day)
    for bucket in body["buckets"]:
        expected = evaluate_all(by_day[bucket["bucket_start"]])
        assert bucket["touchpoint"] == "post_contact_survey" and bucket["channel"] == "survey"
        assert sum(bucket["responses"].values()) == len(by_day[bucket["bucket_start"]])
        for key, value in expected.items():
            got = bucket["metrics"][key]
            assert got["n"] == value.n
            assert got["value"] == (None if value.value is None else pytest.approx(value.value))
            assert got["low_confidence"] is (value.n < 30)


def test_the_default_window_is_the_last_30_days_by_day(api: Api) -> None:
    api.store(
        "acme",
        [
            answer("nps", 10, timedelta(days=31)),  # too old
            answer("nps", 10, timedelta(days=29, hours=23)),
            answer("nps", 0, timedelta(hours=2)),
        ],
    )
    body = api.get(TOUCHPOINTS, api.key("acme")).json()
    assert (body["since"], body["until"], body["bucket"]) == (
        "2026-03-31T18:30:00Z",
        "2026-04-30T18:30:00Z",
        "day",
    )
    assert [(b["bucket_start"], b["metrics"]["nps@1"]["value"]) for b in body["buckets"]] == [
        ("2026-03-31T00:00:00Z", 100.0),
        ("2026-04-30T00:00:00Z", -100.0),
    ]


def test_a_date_alone_is_midnight_utc(api: Api) -> None:
    api.store("acme", [answer("nps", 10, timedelta(days=d)) for d in (1, 3)])
    body = api.get(TOUCHPOINTS, api.key("acme"), since="2026-04-28", until="2026-04-30").json()
    assert (body["since"], body["until"]) == ("2026-04-28T00:00:00Z", "2026-04-30T00:00:00Z")
    assert [b["bucket_start"] for b in body["buckets"]] == ["2026-04-29T00:00:00Z"]


def test_hour_buckets_and_an_explicit_half_open_range(api: Api) -> None:
    api.store(
        "acme",
        [
            answer("csat", 5, timedelta(hours=3)),
            answer("csat", 1, timedelta(hours=2, minutes=30)),
            answer("csat", 4, timedelta(hours=2)),  # exactly `until`: excluded
        ],
    )
    params = {"bucket": "hour", "since": at(timedelta(hours=3)), "until": at(timedelta(hours=2))}
    body = api.get(TOUCHPOINTS, api.key("acme"), **params).json()
    csat = [(b["bucket_start"], b["metrics"]["csat@1"]) for b in body["buckets"]]
    assert [(start, m["value"], m["n"], m["low_confidence"]) for start, m in csat] == [
        ("2026-04-30T15:00:00Z", 100.0, 1, True),
        ("2026-04-30T16:00:00Z", 0.0, 1, True),
    ]


def test_a_total_bucket_gives_one_figure_per_touchpoint_with_its_interval(api: Api) -> None:
    """The whole period in one bucket: enough responses to be confident where days are not."""
    raws = [answer("csat", 5 if i % 4 else 2, timedelta(days=i % 20, hours=1)) for i in range(40)]
    raws += [answer("nps", 10 if i % 2 else 3, timedelta(days=i % 20, hours=1)) for i in range(40)]
    api.store("acme", raws)
    body = api.get(TOUCHPOINTS, api.key("acme"), bucket="total").json()
    assert body["bucket"] == "total"
    [bucket] = body["buckets"]
    assert bucket["bucket_start"] == body["since"]
    csat, nps = bucket["metrics"]["csat@1"], bucket["metrics"]["nps@1"]
    assert (csat["value"], csat["n"], csat["low_confidence"]) == (75.0, 40, False)
    low, high = csat["interval"]
    assert 59 < low < 75 < high < 87  # Wilson 95% for 30 of 40: 59.8 – 85.8
    assert nps["value"] == 0.0 and nps["n"] == 40
    low, high = nps["interval"]  # contributions ±100, s ≈ 101.3: ± 1.96 × s / √40 ≈ 31.4
    assert high == pytest.approx(-low) and 30 < high < 33
    methods = {d["key"]: d["interval"] for d in body["definitions"]}
    assert "Wilson" in methods["csat@1"] and "normal" in methods["nps@1"]


def test_week_and_month_buckets_start_on_monday_and_the_first(api: Api) -> None:
    api.store("acme", [answer("ces", 6, timedelta(days=d)) for d in (1, 9, 40)])
    weeks = api.get(TOUCHPOINTS, api.key("acme"), bucket="week").json()["buckets"]
    assert [b["bucket_start"] for b in weeks] == ["2026-04-20T00:00:00Z", "2026-04-27T00:00:00Z"]
    since = at(timedelta(days=60))
    months = api.get(TOUCHPOINTS, api.key("acme"), bucket="month", since=since).json()["buckets"]
    assert [b["bucket_start"] for b in months] == ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]
    assert [b["metrics"]["ces@1"]["n"] for b in months] == [1, 2]


def test_responses_count_for_the_call_they_rate_and_filters_use_that(api: Api) -> None:
    api.store(
        "acme",
        [
            answer("ces", 2, timedelta(hours=1), correlation_id="call-1"),  # before its call
            call("call-1", timedelta(hours=3)),
            # no conversation, and cust-2 has no earlier touchpoint: its own touchpoint
            answer("ces", 6, timedelta(hours=1), customer={"customer_id": "cust-2"}),
        ],
    )
    key = api.key("acme")
    phone = api.get(TOUCHPOINTS, key, channel="phone").json()["buckets"]
    assert [(b["touchpoint"], b["metrics"]["ces@1"]["value"]) for b in phone] == [
        ("support_line", 2.0)
    ]
    both = api.get(TOUCHPOINTS, key, channel=["phone", "survey"], bucket="total").json()["buckets"]
    assert sorted(b["channel"] for b in both) == ["phone", "survey"]  # any of the two
    tps = ["support_line", "post_contact_survey"]
    assert len(api.get(TOUCHPOINTS, key, touchpoint=tps, bucket="total").json()["buckets"]) == 2
    survey = api.get(TOUCHPOINTS, key, touchpoint="post_contact_survey").json()["buckets"]
    assert [(b["channel"], b["metrics"]["ces_easy@1"]["value"]) for b in survey] == [
        ("survey", 100.0)
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"bucket": "year"}, "invalid_request"),
        ({"channel": "carrier_pigeon"}, "invalid_request"),
        ({"touchpoint": "x' OR '1'='1"}, "invalid_request"),
        ({"since": "2026-04-01T00:00:00"}, "invalid_parameter"),  # naive: ambiguous
        ({"since": "2026-04-31"}, "invalid_request"),  # no such day
        ({"since": "2026-04-02T00:00:00Z", "until": "2026-04-01T00:00:00Z"}, "invalid_range"),
        ({"since": "2024-01-01T00:00:00Z", "bucket": "hour"}, "range_too_large"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "invalid_parameter"),
        ({"until": "0001-01-02T00:00:00Z"}, "invalid_parameter"),
    ],
)
def test_bad_parameters_are_422_with_the_parameter_named(
    api: Api, params: dict[str, str], code: str
) -> None:
    response = api.get(TOUCHPOINTS, api.key("acme"), **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert any(next(iter(params)) in d["path"] for d in error["details"])
    if code == "invalid_request":  # the message itself names the parameter
        assert f": query.{next(iter(params))}" in error["message"]


# --- alerts ------------------------------------------------------------------------------
def test_alerts_are_newest_first_with_the_rated_call_and_its_agent(api: Api) -> None:
    api.store(
        "acme",
        [
            call("call-9", timedelta(hours=5), agent="bob"),
            answer("nps", 2, timedelta(hours=4), correlation_id="call-9"),
            answer("csat", 2, timedelta(hours=1), customer={"customer_id": "cust-2"}),
            answer("csat", 5, timedelta(minutes=30)),  # satisfied: no alert
        ],
    )
    alerts = api.get(ALERTS, api.key("acme", role="agent")).json()
    assert alerts["rule_set"] == "at_risk@1"
    newest, older = alerts["alerts"]
    assert (newest["customer_id"], newest["rule"], newest["severity"]) == (
        "cust-2",
        "at_risk.csat",
        "medium",
    )
    assert newest["raised_at"] == "2026-04-30T17:30:00Z"
    assert (newest["touchpoint"], newest["agent"], newest["correlation_id"]) == (
        "post_contact_survey",
        None,
        None,
    )
    assert (older["rule"], older["severity"], older["score"], older["scale"]) == (
        "at_risk.nps",
        "high",
        2,
        "0-10",
    )
    assert (older["touchpoint"], older["channel"], older["agent"], older["queue"]) == (
        "support_line",
        "phone",
        "bob",
        "billing",
    )


def test_alert_filters_and_limit(api: Api) -> None:
    api.store(
        "acme",
        [
            call("call-1", timedelta(days=3)),
            answer("ces", 1, timedelta(days=3), correlation_id="call-1"),
            answer("ces", 3, timedelta(days=2)),
            answer("nps", 5, timedelta(days=1), customer={"customer_id": "cust-7"}),
        ],
    )
    key = api.key("acme")

    def rules(**params: Any) -> list[tuple[str, str]]:
        found = api.get(ALERTS, key, **params).json()["alerts"]
        return [(a["rule"], a["customer_id"]) for a in found]

    assert rules() == [("at_risk.nps", "cust-7"), ("at_risk.ces", "cust-1"), ("at_risk.ces", "cust-1")]  # fmt: skip
    assert rules(limit=1) == [("at_risk.nps", "cust-7")]
    assert rules(customer_id="cust-1") == [("at_risk.ces", "cust-1")] * 2
    # Both of cust-1's answers count for its call: one names it, the other came after it without
    # a correlation id (METRICS.md). cust-7 has no touchpoint, so its answer keeps the survey's.
    assert rules(touchpoint="support_line") == [("at_risk.ces", "cust-1")] * 2
    # repeated filters mean any of; touchpoint and channel together mean both
    assert rules(touchpoint=["support_line", "post_contact_survey"]) == rules()
    assert rules(touchpoint=["post_contact_survey", "no_such_touchpoint"]) == [
        ("at_risk.nps", "cust-7")
    ]
    assert rules(channel="phone") == [("at_risk.ces", "cust-1")] * 2
    assert rules(channel=["survey", "phone"]) == rules()
    assert rules(channel="survey") == [("at_risk.nps", "cust-7")]
    assert rules(touchpoint="support_line", channel="survey") == []
    wrong = api.get(ALERTS, key, channel="fax")
    assert wrong.status_code == 422 and "channel" in wrong.json()["error"]["details"][0]["path"]
    assert rules(since=at(timedelta(days=2, hours=1))) == rules()[:2]
    assert rules(customer_id="x' OR '1'='1") == []
    assert api.get(ALERTS, key, limit=0).status_code == 422
    assert rules(until=at(timedelta(days=2, hours=1))) == rules()[2:]
    assert rules(since="2026-04-28", until="2026-04-29") == rules()[1:2]  # dates: midnight UTC


def test_alert_pages_follow_their_cursor_to_the_end(api: Api) -> None:
    api.store("acme", [answer("csat", 1, timedelta(hours=h)) for h in (1, 2, 2, 3, 4)])
    key = api.key("acme")
    everything = api.get(ALERTS, key).json()
    assert everything["next_cursor"] is None
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(ALERTS, key, **params).json()
        seen += [a["alert_id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["alert_id"] for a in everything["alerts"]]  # same order, none twice
    bad = api.get(ALERTS, key, cursor="not-a-cursor")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_an_alerts_download_holds_every_alert_not_one_page(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dashboard's "Export CSV" asks for no limit: the manager gets the period's alerts, not
    # the first page of them (found by a review: 100 of 152). Pages of 2 stand for pages of 1,000.
    import services.query_api.routers.alerts as alerts_module

    monkeypatch.setattr(alerts_module, "PAGE", 2)
    monkeypatch.setattr(alerts_module, "EXPORT_PAGE", 2)
    api.store("acme", [answer("csat", 1, timedelta(hours=h)) for h in (1, 2, 3, 4, 5)])
    key = api.key("acme")
    listed = api.get(ALERTS, key).json()
    assert len(listed["alerts"]) == 2 and listed["next_cursor"]
    whole = api.get(ALERTS, key, format="csv")
    assert whole.status_code == 200 and "x-next-cursor" not in whole.headers
    assert len(whole.text.strip().splitlines()) == 1 + 5  # the header and every alert
    # A limit asked for is a page, and the download says where the rest start.
    page = api.get(ALERTS, key, format="csv", limit=2)
    assert len(page.text.strip().splitlines()) == 1 + 2 and page.headers["x-next-cursor"]
    # So does a whole download cut at its bound.
    monkeypatch.setattr(alerts_module, "EXPORT_MAX", 4)
    cut = api.get(ALERTS, key, format="csv")
    assert len(cut.text.strip().splitlines()) == 1 + 4
    rest = api.get(ALERTS, key, cursor=cut.headers["x-next-cursor"]).json()["alerts"]
    assert len(rest) == 1


def test_the_openapi_document_describes_both_responses(api: Api) -> None:
    spec = api.app.openapi()
    schemas = spec["components"]["schemas"]
    assert {"TouchpointSatisfaction", "TouchpointBucket", "MetricOut", "AlertList"} <= set(schemas)
    ok = spec["paths"][TOUCHPOINTS]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/TouchpointSatisfaction")
    alerts_ok = spec["paths"][ALERTS]["get"]["responses"]["200"]["content"]["application/json"]
    assert alerts_ok["schema"]["$ref"].endswith("/AlertList")

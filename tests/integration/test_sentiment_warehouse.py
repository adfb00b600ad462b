"""Sentiment of customers' texts, stored by the satisfaction projection and read per touchpoint,
on chdb and on a ClickHouse server, against an independent pandas computation over the raw
events."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from kernel.ports import Warehouse
from kernel.processing import to_micros
from schemas.envelope import Event
from services.satisfaction import sentiment, sql
from services.satisfaction.projection import SatisfactionProjection
from services.satisfaction.sentiment_sql import read_touchpoint_sentiment
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE

# The satisfaction tests' loading as the runner does it, their tenants and their fixture running
# each test on chdb and on a ClickHouse server.
from tests.integration.test_satisfaction_chdb import (
    BASE,
    RECEIVED,
    load,
    make_events,
    new_tenant,
)

projection = SatisfactionProjection()


@pytest.fixture
def wh(any_warehouse: Warehouse) -> Warehouse:
    for statement in projection.ddl(any_warehouse.version):
        any_warehouse.command(statement)
    return any_warehouse


# Texts of both languages and every tone; which label each gets is the scorer's business, the
# aggregate must agree with the reference whatever they are.
TEXTS = [
    "thanks a lot, great help",
    "this is the worst service ever, I am furious",
    "what time do you open on saturday",
    "my order arrived broken and nobody answers",
    "muchas gracias, excelente atencion",
    "pesimo servicio, nunca mas",
    "cual es el estado de mi pedido",
    "👍",
]
# (channel, type, touchpoint, payload field, sender or None)
SOURCES = [
    ("chat", "message.received", "live_chat", "text", None),
    ("sms", "message.received", "sms_line", "text", "customer"),
    ("chat", "message.sent", "live_chat", "text", "customer"),
    ("chat", "message.sent", "live_chat", "text", "agent"),  # not the customer's: left out
    ("chat", "message.received", "live_chat", "text", "bot"),  # not the customer's: left out
    ("email", "email.replied", "support_mail", "text", None),
    ("survey", "survey.answered", "web_survey", "comment", None),
]


def population(seed: int, size: int = 120) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    raws = []
    for i in range(size):
        channel, event_type, touchpoint, field, sender = rng.choice(SOURCES)
        payload: dict[str, Any] = {field: rng.choice([*TEXTS, ""])}
        if sender is not None:
            payload["sender"] = sender
        if event_type.startswith("email."):
            payload["message_id"] = f"m-{i}"
        if event_type == "survey.answered":
            payload |= {"kind": "csat", "score": rng.randint(1, 5)}
        raws.append(
            {
                "channel": channel,
                "type": event_type,
                "touchpoint": touchpoint,
                "customer": {"customer_id": f"cust-{rng.randint(1, 5)}"},
                "correlation_id": f"conv-{rng.randint(1, 9)}",
                "occurred_at": (BASE + timedelta(minutes=rng.randint(0, 3 * 1440))).isoformat(),
                "payload": payload,
            }
        )
    return raws


# --- the reference: pandas over the raw events, not over the projection's rows ---------------
def reference(
    raws: Sequence[dict[str, Any]],
    events: Sequence[Event],
    bucket: str,
    since: int,
    by: tuple[str, ...] = (),
):
    records = []
    for raw, event in zip(raws, events, strict=True):
        payload = raw["payload"]
        text = payload.get("comment" if raw["type"] == "survey.answered" else "text", "")
        default = "customer" if raw["type"] == "message.received" else "agent"
        if raw["type"].startswith("message.") and payload.get("sender", default) != "customer":
            continue
        if not text.strip():
            continue
        scored = sentiment.trusted_score(text)
        if scored is None:  # a language the platform leaves unscored
            continue
        records.append(
            {
                "touchpoint": raw["touchpoint"],
                "channel": raw["channel"],
                "language": scored.language,
                "seconds": to_micros(event.derived_at) // 1_000_000,
                "negative": scored.label == "negative",
                "positive": scored.label == "positive",
                "score": scored.score,
            }
        )
    frame = pd.DataFrame.from_records(records)
    if bucket == "day":
        frame["bucket_start"] = frame["seconds"] // 86400 * 86400
    else:  # total
        frame["bucket_start"] = since // 1_000_000
    grouped = frame.groupby(["touchpoint", "channel", "bucket_start", *by]).agg(
        n=("score", "size"),
        negative_share=("negative", "mean"),
        positive_share=("positive", "mean"),
        mean_score=("score", "mean"),
    )
    return {key: row.to_dict() for key, row in grouped.iterrows()}


def _figures(counts: Any) -> dict[str, Any]:
    return {
        "n": counts.n,
        "negative_share": counts.negative_share,
        "positive_share": counts.positive_share,
        "mean_score": counts.mean_score,
    }


def stored(warehouse: Warehouse, query: sql.TouchpointQuery):
    return {
        (r.touchpoint, r.channel, r.bucket_start): _figures(r)
        for r in read_touchpoint_sentiment(warehouse, query)
    }


def stored_by_language(warehouse: Warehouse, query: sql.TouchpointQuery):
    return {
        (r.touchpoint, r.channel, r.bucket_start, language): _figures(counts)
        for r in read_touchpoint_sentiment(warehouse, query)
        for language, counts in r.by_language.items()
    }


def assert_same(actual: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert got["n"] == want["n"], key
        for name in ("negative_share", "positive_share", "mean_score"):
            assert got[name] == pytest.approx(want[name], abs=1e-9), (key, name)


@pytest.mark.parametrize("seed", [1, 2])
def test_sentiment_per_touchpoint_equals_the_reference(wh: Warehouse, seed: int) -> None:
    tenant = new_tenant()
    raws = population(seed)
    events = make_events(tenant, raws)
    load(wh, events)
    load(wh, events[: len(events) // 2])  # a reprocessed batch: counted once
    since, until = to_micros(BASE), to_micros(RECEIVED)
    for bucket in ("day", "total"):
        query = sql.TouchpointQuery(tenant, since, until, bucket=bucket)
        assert_same(stored(wh, query), reference(raws, events, bucket, since))
        per_language = reference(raws, events, bucket, since, by=("language",))
        assert_same(stored_by_language(wh, query), per_language)
    only_chat = sql.TouchpointQuery(tenant, since, until, bucket="total", channels=("chat",))
    expected = {k: v for k, v in reference(raws, events, "total", since).items() if k[1] == "chat"}
    assert_same(stored(wh, only_chat), expected)


def test_each_text_is_stored_with_its_model_and_version(wh: Warehouse) -> None:
    tenant = new_tenant()
    raws = [
        {**raw, "payload": {**raw["payload"], "text": text}}
        for raw, text in zip(
            population(3, 2),
            ["thank you, excellent service", "excelente atencion, muy amable la chica"],
            strict=True,
        )
    ]
    for raw in raws:
        raw.update(channel="chat", type="message.received", touchpoint="live_chat")
        raw["payload"] = {"text": raw["payload"]["text"]}
    load(wh, make_events(tenant, raws))
    rows = wh.select(
        f"SELECT language, label, score, model, model_version FROM {TEXT_SENTIMENT_TABLE} "
        "WHERE tenant_id = {tenant_id:String} ORDER BY language",
        {"tenant_id": tenant},
    )
    # The Spanish text is left unscored: no Spanish model meets the accuracy goal yet.
    assert [(r["language"], r["model"]) for r in rows] == [("en", "vaderSentiment")]
    for row in rows:
        assert row["model_version"] == sentiment.model_version(row["model"])
        assert row["label"] == "positive"
        assert -1.0 <= row["score"] <= 1.0


def test_a_strongly_negative_message_raises_an_at_risk_alert(wh: Warehouse) -> None:
    tenant = new_tenant()
    raw = population(4, 1)[0] | {"channel": "chat", "type": "message.received"}
    raw |= {"touchpoint": "live_chat", "payload": {"text": "worst service ever, I hate you"}}
    calm = raw | {"payload": {"text": "what time do you open"}}
    load(wh, make_events(tenant, [raw, calm]))
    alerts = sql.read_alerts(wh, sql.AlertQuery(tenant_id=tenant))
    assert [(a["rule"], a["metric"], a["touchpoint"]) for a in alerts] == [
        ("at_risk.sentiment", "sentiment", "live_chat")
    ]
    assert alerts[0]["score"] <= -50


# --- as the dashboard reads it ----------------------------------------------------------------
def test_the_touchpoints_api_shows_sentiment_beside_the_metrics(warehouse: Warehouse) -> None:
    from tests.integration.test_satisfaction_router import Api, answer, at

    for statement in projection.ddl(warehouse.version):
        warehouse.command(statement)
    api = Api(warehouse)  # type: ignore[arg-type]
    tenant = new_tenant()
    texts = ["thank you, excellent help", "worst service ever", "what time do you open"]
    chat = [
        {
            "channel": "chat",
            "type": "message.received",
            "touchpoint": "live_chat",
            "customer": {"customer_id": "cust-1"},
            "occurred_at": at(timedelta(hours=2)),
            "payload": {"text": text},
        }
        for text in texts
    ]
    # Another customer's answer: nothing to attribute it to, it stays on the survey's touchpoint.
    survey = answer("csat", 5, timedelta(hours=1), customer={"customer_id": "cust-2"})
    api.store(tenant, [*chat, survey])
    headers = api.key(tenant)
    body = api.get("/v1/satisfaction/touchpoints", headers, bucket="total").json()
    cells = {b["touchpoint"]: b for b in body["buckets"]}
    scores = [sentiment.score(text) for text in texts]
    assert cells["live_chat"]["responses"] == {"nps": 0, "csat": 0, "ces": 0}
    figures = {
        "n": 3,
        "negative_share": pytest.approx(1 / 3),
        "positive_share": pytest.approx(1 / 3),
        "mean_score": pytest.approx(sum(s.score for s in scores) / 3),
    }
    assert cells["live_chat"]["sentiment"] == {**figures, "by_language": {"en": figures}}
    assert cells["post_contact_survey"]["sentiment"]["n"] == 0
    assert body["sentiment_definition"] == sentiment.DEFINITION
    csv_text = api.get("/v1/satisfaction/touchpoints", headers, bucket="total", format="csv").text
    assert "sentiment.negative_share" in csv_text.splitlines()[0]

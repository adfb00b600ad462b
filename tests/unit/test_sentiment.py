"""The sentiment scorer's contract, which texts are the customer's, the alert rule, the bench's
F1, and the touchpoint cells with sentiment beside the metrics. English only: the Spanish model
takes seconds to load, and the integration tests load it."""

from __future__ import annotations

import importlib.metadata
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.sentiment import macro_f1
from schemas.validate import accept
from services.query_api.routers.satisfaction import with_sentiment
from services.satisfaction import sentiment
from services.satisfaction.alerts import to_sentiment_alerts
from services.satisfaction.metrics import DEFINITIONS
from services.satisfaction.sentiment_sql import SentimentCounts, TouchpointSentiment
from services.satisfaction.sql import TouchpointMetrics
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE, to_sentiment_rows

NOW = datetime(2026, 3, 2, tzinfo=UTC)
ENGLISH = [
    "thank you so much, excellent service!",
    "this is the worst service ever, I am furious",
    "what time do you open on saturday",
    "my parcel never arrived",
]


@pytest.mark.parametrize("text", [*ENGLISH, "👍", "!!!", "", "x" * 30_000])
def test_every_text_gets_a_label_a_score_a_language_and_the_model(text: str) -> None:
    result = sentiment.score(text)
    assert result.label in sentiment.LABELS
    assert -1.0 <= result.score <= 1.0
    assert result.language in (*sentiment.LANGUAGES, sentiment.UNDETERMINED)
    assert result.model in (sentiment.VADER, sentiment.SPANISH)
    assert result.model_version.startswith(importlib.metadata.version(result.model))
    assert sentiment.DEFINITION in result.model_version


def test_scoring_is_a_function_of_the_text() -> None:
    first = [sentiment.score(text) for text in ENGLISH]
    assert [sentiment.score(text) for text in reversed(ENGLISH)] == list(reversed(first))


def test_unambiguous_english_texts() -> None:
    assert sentiment.score(ENGLISH[0])[:2] == ("en", "positive")
    assert sentiment.score(ENGLISH[1])[:2] == ("en", "negative")
    assert sentiment.score(ENGLISH[2])[:2] == ("en", "neutral")


def test_a_text_without_letters_has_no_language() -> None:
    assert sentiment.detect_language("👍 !!! 123") == sentiment.UNDETERMINED
    assert sentiment.score(":)").language == sentiment.UNDETERMINED


def _event(event_type: str, payload: dict[str, Any], channel: str = "chat") -> Any:
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": channel,
        "type": event_type,
        "touchpoint": "live_chat",
        "customer": {"customer_id": "cust-1"},
        "occurred_at": NOW.isoformat(),
        "payload": payload,
    }
    return accept(raw, "t1", NOW)[0]


@pytest.mark.parametrize(
    ("event_type", "payload", "channel", "field"),
    [
        ("message.received", {"text": "thanks!"}, "chat", "text"),
        ("message.sent", {"text": "thanks!", "sender": "customer"}, "sms", "text"),
        ("email.replied", {"text": "thanks!", "message_id": "m1"}, "email", "text"),
        (
            "survey.answered",
            {"kind": "csat", "score": 5, "comment": "thanks!"},
            "survey",
            "comment",
        ),
    ],
)
def test_each_customer_text_gets_one_row(
    event_type: str, payload: dict[str, Any], channel: str, field: str
) -> None:
    rows = to_sentiment_rows(_event(event_type, payload, channel))[TEXT_SENTIMENT_TABLE]
    assert len(rows) == 1
    assert rows[0]["field"] == field
    assert (rows[0]["label"], rows[0]["model"]) == ("positive", sentiment.VADER)


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("message.sent", {"text": "thanks!"}),  # an agent's
        ("message.received", {"text": "thanks!", "sender": "bot"}),
        ("message.received", {"text": "   "}),
        ("survey.answered", {"kind": "csat", "score": 5}),
        ("case.opened", {"case_id": "c1"}),
    ],
)
def test_other_texts_and_events_get_none(event_type: str, payload: dict[str, Any]) -> None:
    assert to_sentiment_rows(_event(event_type, payload)) == {}


def _text_row(score: float, model: str = sentiment.VADER) -> dict[str, Any]:
    return {
        "tenant_id": "t1",
        "event_id": "e1",
        "customer_id": "c1",
        "type": "message.received",
        "field": "text",
        "touchpoint": "live_chat",
        "channel": "chat",
        "correlation_id": "",
        "written_at": 1,
        "language": "en",
        "label": "negative",
        "score": score,
        "model": model,
        "model_version": "v",
    }


def test_strongly_negative_texts_raise_an_alert_with_a_stable_id() -> None:
    assert to_sentiment_alerts(_text_row(-0.49)) == []
    (medium,) = to_sentiment_alerts(_text_row(-0.5))
    (high,) = to_sentiment_alerts(_text_row(-0.9))
    assert (medium["severity"], medium["score"], high["severity"]) == ("medium", -50, "high")
    assert medium["alert_id"] == high["alert_id"]  # same event and rule: one alert on replay
    assert to_sentiment_alerts(_text_row(-0.9, model=sentiment.SPANISH)) == []


def test_macro_f1() -> None:
    assert macro_f1(["positive", "negative"], ["positive", "negative"]) == 1.0
    # positive: TP 1, FP 1, FN 1, F1 = 2/4; negative: missed, 0; neutral: predicted wrongly, 0
    gold = ["positive", "positive", "negative"]
    assert macro_f1(gold, ["positive", "neutral", "positive"]) == pytest.approx(0.5 / 3)


def test_cells_with_texts_but_no_answers_are_listed_in_order() -> None:
    metrics = [
        TouchpointMetrics(
            "live_chat",
            "chat",
            100,
            {"nps": 1, "csat": 0, "ces": 0},
            {d.key: d.with_interval(None, 0, 0.0) for d in DEFINITIONS},
        )
    ]
    english = SentimentCounts(n=4, negative=1, positive=2, score_sum=0.5)
    texts = [
        TouchpointSentiment(
            n=4,
            negative=1,
            positive=2,
            score_sum=0.5,
            touchpoint="live_chat",
            channel="chat",
            bucket_start=100,
            by_language={"en": english},
        ),
        TouchpointSentiment(
            n=2,
            negative=2,
            positive=0,
            score_sum=-1.2,
            touchpoint="email_desk",
            channel="email",
            bucket_start=50,
        ),
    ]
    buckets = with_sentiment(metrics, texts)
    assert [(b.touchpoint, b.responses.nps) for b in buckets] == [
        ("email_desk", 0),
        ("live_chat", 1),
    ]
    assert buckets[0].sentiment.negative_share == 1.0
    assert buckets[0].sentiment.mean_score == pytest.approx(-0.6)
    assert (buckets[1].sentiment.n, buckets[1].sentiment.positive_share) == (4, 0.5)
    assert buckets[1].sentiment.by_language["en"].mean_score == pytest.approx(0.125)
    assert with_sentiment(metrics, [])[0].sentiment.n == 0

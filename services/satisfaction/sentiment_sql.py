"""The `text_sentiment` table and sentiment per touchpoint × channel × bucket (ClickHouse SQL that
also runs on server 18.16 and chdb).

A text counts for the touchpoint and channel of the event that carries it, in the bucket of that
event's `derived_at`. Reads deduplicate by event before aggregating (a reprocessed batch inserts the
same row again, and merges happen whenever ClickHouse likes). Every input value is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.dialect import replacing_engine
from kernel.ports import Warehouse
from services.satisfaction.buckets import bucket_start_sql
from services.satisfaction.sql import TouchpointQuery
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE


def ddl(version: tuple[int, ...]) -> list[str]:
    # The sorting key ends in the event's identity and holds only values fixed by the event.
    order_by = ("tenant_id", "written_at", "event_id")
    return [
        f"""CREATE TABLE IF NOT EXISTS {TEXT_SENTIMENT_TABLE} (
            tenant_id String, event_id String, customer_id String, type String, field String,
            touchpoint String, channel String, correlation_id String, written_at Int64,
            language String, label String, score Float64, model String, model_version String
        ) {replacing_engine(order_by, version)}"""
    ]


def touchpoint_sentiment_sql(bucket: str, filters: str = "1", zone: str = "UTC") -> str:
    """Texts, negative and positive counts and the sum of scores per touchpoint × channel ×
    bucket × detected language; `filters` is the condition on touchpoint and channel
    (`TouchpointQuery.filters`)."""
    bucket_start = bucket_start_sql(bucket, "written_at", zone)
    return f"""
    SELECT touchpoint, channel, {bucket_start} AS bucket_start, language,
        count() AS n,
        countIf(label = 'negative') AS negative,
        countIf(label = 'positive') AS positive,
        sum(score) AS score_sum
    FROM (
        SELECT event_id, touchpoint, channel, written_at, language, label, score
        FROM {TEXT_SENTIMENT_TABLE}
        WHERE tenant_id = {{tenant_id:String}}
            AND written_at >= {{since:Int64}} AND written_at < {{until:Int64}}
        LIMIT 1 BY event_id)
    WHERE {filters}
    GROUP BY touchpoint, channel, bucket_start, language
    ORDER BY bucket_start, touchpoint, channel, language"""


@dataclass(frozen=True)
class SentimentCounts:
    """How many texts, how many negative and positive, and the sum of their scores."""

    n: int
    negative: int
    positive: int
    score_sum: float

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.n if self.n else None

    @property
    def positive_share(self) -> float | None:
        return self.positive / self.n if self.n else None

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.n if self.n else None


@dataclass(frozen=True)
class TouchpointSentiment(SentimentCounts):
    """Sentiment of the texts customers wrote on one touchpoint and channel during one bucket,
    in all and per detected language (the models differ in accuracy; docs/metrics.md)."""

    touchpoint: str
    channel: str
    bucket_start: int  # epoch seconds, UTC
    by_language: dict[str, SentimentCounts] = field(default_factory=dict)


def _fold(cell: tuple[str, str, int], parts: dict[str, SentimentCounts]) -> TouchpointSentiment:
    return TouchpointSentiment(
        n=sum(p.n for p in parts.values()),
        negative=sum(p.negative for p in parts.values()),
        positive=sum(p.positive for p in parts.values()),
        score_sum=sum(p.score_sum for p in parts.values()),
        touchpoint=cell[0],
        channel=cell[1],
        bucket_start=cell[2],
        by_language=parts,
    )


def read_touchpoint_sentiment(
    warehouse: Warehouse, query: TouchpointQuery
) -> list[TouchpointSentiment]:
    """Sentiment per touchpoint × channel × bucket, oldest bucket first."""
    condition, filter_params = query.filters()
    rows = warehouse.select(
        touchpoint_sentiment_sql(query.bucket, condition, query.time_zone),
        query.params() | filter_params,
    )
    cells: dict[tuple[str, str, int], dict[str, SentimentCounts]] = {}
    for row in rows:  # ordered by cell, so the cells keep the query's order
        cell = (row["touchpoint"], row["channel"], int(row["bucket_start"]))
        cells.setdefault(cell, {})[row["language"]] = SentimentCounts(
            n=int(row["n"]),
            negative=int(row["negative"]),
            positive=int(row["positive"]),
            score_sum=float(row["score_sum"]),
        )
    return [_fold(cell, parts) for cell, parts in cells.items()]

"""A customer's own survey answers as stored (`survey_responses`), for a subject access export.

The rows as the satisfaction consumer filed them, each under a member of the customer: the
answer's own touchpoint and channel, not the attributed ones the dashboard reads (those are
derived from other rows at read time). Newest first, a page at a time after a
`(answered_at, event_id)` position, deduplicated by event id like every read of these tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernel.ports import Warehouse
from services.projections.sql import members_filter
from services.satisfaction.sql import RESPONSES_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE

_ANSWERS = """SELECT event_id, customer_id, survey_id, kind, scale, score, comment, touchpoint,
       channel, correlation_id, answered_at
FROM {table}
WHERE tenant_id = {{tenant_id:String}} AND {members}
  AND (answered_at < {{before_at:Int64}}
       OR (answered_at = {{before_at:Int64}} AND event_id < {{before_id:String}}))
ORDER BY answered_at DESC, event_id DESC
LIMIT 1 BY event_id
LIMIT {{limit:UInt32}}"""

NEWEST = (2**62, "")  # a position after every answer


def read_customer_answers(
    warehouse: Warehouse,
    tenant_id: str,
    members: Sequence[str],
    before: tuple[int, str] = NEWEST,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Up to `limit` answers of the members older than `before`, newest first."""
    condition, params = members_filter(members)
    sql = _ANSWERS.format(table=RESPONSES_TABLE, members=condition)
    return warehouse.select(
        sql,
        {
            "tenant_id": tenant_id,
            **params,
            "before_at": before[0],
            "before_id": before[1],
            "limit": limit,
        },
    )


_SENTIMENT = """SELECT event_id, customer_id, type, field, touchpoint, channel, correlation_id,
       written_at, language, label, score, model, model_version
FROM {table}
WHERE tenant_id = {{tenant_id:String}} AND {members}
  AND (written_at < {{before_at:Int64}}
       OR (written_at = {{before_at:Int64}} AND event_id < {{before_id:String}}))
ORDER BY written_at DESC, event_id DESC
LIMIT 1 BY event_id
LIMIT {{limit:UInt32}}"""


def read_customer_sentiment(
    warehouse: Warehouse,
    tenant_id: str,
    members: Sequence[str],
    before: tuple[int, str] = NEWEST,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Up to `limit` scored texts of the members (`text_sentiment`: the label and score of each
    text they wrote, not the text) older than `before`, newest first."""
    condition, params = members_filter(members)
    sql = _SENTIMENT.format(table=TEXT_SENTIMENT_TABLE, members=condition)
    return warehouse.select(
        sql,
        {
            "tenant_id": tenant_id,
            **params,
            "before_at": before[0],
            "before_id": before[1],
            "limit": limit,
        },
    )

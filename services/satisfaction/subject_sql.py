"""A customer's own rows as stored, for a subject access export: survey answers
(`survey_responses`) and the sentiment of the texts they wrote (`text_sentiment`).

The rows as the satisfaction consumer filed them, each under a member of the customer: an
answer's own touchpoint and channel, not the attributed ones the dashboard reads (those are
derived from other rows at read time). Newest first, a page at a time after a
`(time, event_id)` position, deduplicated by event id like every read of these tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kernel.ports import Warehouse
from services.projections.sql import members_filter
from services.satisfaction.sql import RESPONSES_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE

NEWEST = (2**62, "")  # a position after every row


@dataclass(frozen=True)
class SubjectRows:
    """One table's rows of a customer: which columns, and the time column pages follow."""

    table: str
    columns: str
    at: str

    def sql(self, members: str) -> str:
        return f"""SELECT {self.columns}
FROM {self.table}
WHERE tenant_id = {{tenant_id:String}} AND {members}
  AND ({self.at} < {{before_at:Int64}}
       OR ({self.at} = {{before_at:Int64}} AND event_id < {{before_id:String}}))
ORDER BY {self.at} DESC, event_id DESC
LIMIT 1 BY event_id
LIMIT {{limit:UInt32}}"""


ANSWERS = SubjectRows(
    RESPONSES_TABLE,
    "event_id, customer_id, survey_id, kind, scale, score, comment, touchpoint, channel, "
    "correlation_id, answered_at",
    "answered_at",
)
# The label and score of each text they wrote, not the text (that is in the timeline's events).
SENTIMENT = SubjectRows(
    TEXT_SENTIMENT_TABLE,
    "event_id, customer_id, type, field, touchpoint, channel, correlation_id, written_at, "
    "language, label, score, model, model_version",
    "written_at",
)


def read_customer_rows(
    warehouse: Warehouse,
    rows: SubjectRows,
    tenant_id: str,
    members: Sequence[str],
    before: tuple[int, str] = NEWEST,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Up to `limit` rows of the members older than `before`, newest first."""
    condition, params = members_filter(members)
    return warehouse.select(
        rows.sql(condition),
        {
            "tenant_id": tenant_id,
            **params,
            "before_at": before[0],
            "before_id": before[1],
            "limit": limit,
        },
    )


def read_customer_answers(
    warehouse: Warehouse,
    tenant_id: str,
    members: Sequence[str],
    before: tuple[int, str] = NEWEST,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Up to `limit` answers of the members older than `before`, newest first."""
    return read_customer_rows(warehouse, ANSWERS, tenant_id, members, before, limit)


def customer_pages(
    warehouse: Warehouse, rows: SubjectRows, tenant_id: str, members: Sequence[str], page: int
) -> Iterator[list[dict[str, Any]]]:
    """Every row of the members, newest first, `page` at a time."""
    before = NEWEST
    while found := read_customer_rows(warehouse, rows, tenant_id, members, before, page):
        yield found
        if len(found) < page:
            return
        before = (int(found[-1][rows.at]), found[-1]["event_id"])

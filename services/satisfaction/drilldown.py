"""Drill-down: the survey answers behind a dashboard cell, newest first, a page at a time.

A cell of `GET /v1/satisfaction/touchpoints` counts the answers of a tenant answered in
[since, until) whose *attributed* touchpoint and channel are the cell's, and, for one metric
definition, whose kind and scale are the definition's. This query selects exactly those answers:
the same deduplication, the same attribution (`attribution_sql.ATTRIBUTED_RESPONSES`, as
METRICS.md defines it), the same kind and scale match.
Tests hold the two equal. It also names the interaction each answer is attributed to.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from kernel.ports import Warehouse
from services.satisfaction.attribution_sql import ATTRIBUTED_RESPONSES

DEFAULT_PAGE = 100
MAX_PAGE = 1000

_DRILLDOWN = f"""
SELECT event_id, customer_id, answered_at, kind, scale, score, comment, correlation_id,
    touchpoint, channel, rated_event_id
FROM ({ATTRIBUTED_RESPONSES})
WHERE ({{touchpoint:String}} = '' OR touchpoint = {{touchpoint:String}})
    AND ({{channel:String}} = '' OR channel = {{channel:String}})
    AND ({{kind:String}} = '' OR kind = {{kind:String}})
    AND ({{scale:String}} = '' OR scale = {{scale:String}})
    AND ({{after:UInt8}} = 0 OR answered_at < {{cursor_at:Int64}}
         OR (answered_at = {{cursor_at:Int64}} AND event_id < {{cursor_id:String}}))
ORDER BY answered_at DESC, event_id DESC
LIMIT {{limit:UInt32}}"""


class InvalidResponsesCursor(ValueError):
    """A cursor this API did not hand out."""


@dataclass(frozen=True)
class ResponsesCursor:
    """The last answer of a page: the next page starts after it (older)."""

    answered_at: int
    event_id: str

    def encode(self) -> str:
        text = f"{self.answered_at}/{self.event_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ResponsesCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at, event_id = raw.split("/", 1)
            return cls(int(at), event_id)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidResponsesCursor("not a cursor of this API") from exc


@dataclass(frozen=True)
class ResponsesQuery:
    """Answers of one tenant in [since, until) (epoch micros); '' filters nothing."""

    tenant_id: str
    since: int
    until: int
    touchpoint: str = ""
    channel: str = ""
    kind: str = ""
    scale: str = ""
    cursor: ResponsesCursor | None = None
    limit: int = DEFAULT_PAGE

    def params(self) -> dict[str, Any]:
        cursor = self.cursor or ResponsesCursor(0, "")
        return {
            "tenant_id": self.tenant_id,
            "since": self.since,
            "until": self.until,
            "touchpoint": self.touchpoint,
            "channel": self.channel,
            "kind": self.kind,
            "scale": self.scale,
            "after": int(self.cursor is not None),
            "cursor_at": cursor.answered_at,
            "cursor_id": cursor.event_id,
            "limit": self.limit + 1,  # one more, to know whether a next page exists
        }


@dataclass(frozen=True)
class ResponsesPage:
    rows: list[dict[str, Any]]
    next_cursor: ResponsesCursor | None


def read_responses(warehouse: Warehouse, query: ResponsesQuery) -> ResponsesPage:
    """One page of the answers behind a cell, newest first."""
    rows = warehouse.select(_DRILLDOWN, query.params())
    page = rows[: query.limit]
    more = len(rows) > query.limit and bool(page)
    last = page[-1] if more else None
    cursor = ResponsesCursor(int(last["answered_at"]), last["event_id"]) if last else None
    return ResponsesPage(page, cursor)

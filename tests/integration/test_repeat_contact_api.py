"""Repeat contacts as an agent's client reads them (chdb, the embedded warehouse): the profile's
`repeat_contact` and the timeline's `repeat_of`, from the moment the second contact is stored."""

from __future__ import annotations

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
from cem.runner import ensure_tables
from schemas.validate import accept
from services.projections.arrivals import LatestPositions, encode_positions, latest_positions
from services.projections.projection import ProjectionsProjection
from services.query_api.routers.customers import router
from services.satisfaction.projection import SatisfactionProjection

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
CUSTOMER = {"customer_id": "cust-9", "phone": "+34600000009"}


def call(days: float) -> dict[str, Any]:
    return {"channel": "phone", "type": "call.ended", "touchpoint": "support_line",
            "payload": {"agent": "bob", "talk_s": 120}, "days": days}  # fmt: skip


def page_view(days: float) -> dict[str, Any]:
    return {"channel": "web", "type": "page.viewed", "payload": {"url": "https://shop.example/"},
            "days": days}  # fmt: skip


@pytest.fixture
def app(warehouse: ChdbWarehouse) -> FastAPI:
    app = FastAPI()
    kernel.api_errors.install(app)
    app.include_router(router)
    app.state.warehouse = warehouse
    app.state.keys = MemoryKeyStore()
    app.state.access_audit = MemoryAccessAudit()
    ensure_tables(warehouse, [ProjectionsProjection(), SatisfactionProjection()])
    return app


@pytest.fixture
def agent(app: FastAPI) -> Iterator[TestClient]:
    key = app.state.keys.create("acme", "agent")[1]
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def ingest(app: FastAPI, events: list[dict[str, Any]]) -> list[str]:
    """Accept the events as the edge does and project them, each `days` after T0."""
    projection, ids = ProjectionsProjection(), []
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in events:
        at = T0 + timedelta(days=raw.pop("days"))
        body = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), **raw}
        event, _ = accept({**body, "customer": CUSTOMER}, "acme", at + timedelta(seconds=1))
        for table, rows in projection.rows(event).items():
            by_table[table] += rows
        ids.append(str(event.event_id))
    for table, rows in by_table.items():
        app.state.warehouse.insert(table, rows)
    return ids


def profile(agent: TestClient) -> dict[str, Any]:
    response = agent.get("/v1/customers/cust-9")
    assert response.status_code == 200
    return dict(response.json())


def repeat_of(agent: TestClient, **params: Any) -> dict[str, str | None]:
    response = agent.get("/v1/customers/cust-9/timeline", params=params)
    assert response.status_code == 200
    return {e["event_id"]: e["repeat_of"] for e in response.json()["entries"]}


def test_two_calls_three_days_apart_flag_the_second_with_the_first(
    app: FastAPI, agent: TestClient
) -> None:
    [first] = ingest(app, [call(0)])
    assert profile(agent)["repeat_contact"] is None
    viewed, second = ingest(app, [page_view(1), call(3)])
    found = profile(agent)["repeat_contact"]
    assert found["contact"]["event_id"] == second
    assert found["earlier"]["event_id"] == first
    assert (found["contact"]["channel"], found["earlier"]["channel"]) == ("phone", "phone")
    assert (found["definition"], found["window_days"]) == ("repeat_contact@1", 7)
    assert repeat_of(agent) == {second: first, viewed: None, first: None}
    # The earlier contact is linked even when it is on another page.
    assert repeat_of(agent, limit=1) == {second: first}


def test_calls_eight_days_apart_with_a_page_view_between_are_not_flagged(
    app: FastAPI, agent: TestClient
) -> None:
    ids = ingest(app, [call(0), page_view(4), call(8)])
    assert profile(agent)["repeat_contact"] is None
    assert repeat_of(agent) == dict.fromkeys(ids)


def test_a_page_view_between_two_calls_is_not_the_earlier_contact(
    app: FastAPI, agent: TestClient
) -> None:
    first, viewed, second = ingest(app, [call(0), page_view(2), call(3)])
    assert profile(agent)["repeat_contact"]["earlier"]["event_id"] == first
    assert repeat_of(agent, channel="phone") == {second: first, first: None}


def test_the_flags_are_in_the_openapi_models(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    assert "repeat_of" in schemas["TimelineEntry"]["properties"]
    # The profile route answers the profile with its value (value@1): ValuedProfile.
    assert {"repeat_contact", "value"} <= set(schemas["ValuedProfile"]["properties"])
    assert {"definition", "window_days", "contact", "earlier"} <= set(
        schemas["RepeatContact"]["properties"]
    )


class CountingWarehouse:
    """The app's warehouse, counting the queries asked of it."""

    def __init__(self, inner: ChdbWarehouse) -> None:
        self.inner, self.selects = inner, 0

    def select(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.selects += 1
        return self.inner.select(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_each_page_with_its_flags_and_stream_cursor_is_one_query(
    app: FastAPI, agent: TestClient
) -> None:
    first, viewed, second = ingest(app, [call(0), page_view(1), call(3)])
    counting = app.state.warehouse = CountingWarehouse(app.state.warehouse)
    # As the embedded platform has it: its projections tell where the arrivals they store reach.
    app.state.latest_arrivals = LatestPositions(counting, told=True)  # type: ignore[arg-type]
    assert repeat_of(agent) == {second: first, viewed: None, first: None}  # reads them once
    counting.selects = 0
    page = agent.get("/v1/customers/cust-9/timeline", params={"limit": 2}).json()
    assert counting.selects == 1
    assert [e["repeat_of"] for e in page["entries"]] == [first, None]
    assert page["stream_cursor"] == encode_positions(latest_positions(app.state.warehouse.inner))
    counting.selects = 0
    params = {"limit": 2, "cursor": page["next_cursor"]}
    older = agent.get("/v1/customers/cust-9/timeline", params=params).json()
    assert counting.selects == 1
    assert [(e["event_id"], e["repeat_of"]) for e in older["entries"]] == [(first, None)]

"""The query parameters every read route spells the same way (services/query_api/params.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest

from cem.adapters.memory_keys import MemoryKeyStore
from kernel.api_errors import ApiError
from kernel.ports import Warehouse
from services.query_api.app import create_app
from services.query_api.params import ordered_range

NOON = datetime(2026, 1, 2, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (NOON, NOON),  # [since, until) holds nothing
        (NOON + timedelta(seconds=1), NOON),
        (NOON, NOON.astimezone(timezone(timedelta(hours=1)))),  # the same instant elsewhere
    ],
)
def test_a_range_with_nothing_in_it_is_a_422_naming_both_parameters(
    since: datetime, until: datetime
) -> None:
    with pytest.raises(ApiError) as refused:
        ordered_range(since, until)
    error = refused.value
    assert (error.status, error.code) == (422, "invalid_range")
    assert [d["path"] for d in error.details] == ["query.since", "query.until"]


@pytest.mark.parametrize(
    ("since", "until"), [(None, None), (NOON, None), (None, NOON), (NOON, NOON + timedelta(1))]
)
def test_an_open_ended_or_ordered_range_passes(
    since: datetime | None, until: datetime | None
) -> None:
    ordered_range(since, until)


def ranged_routes() -> list[tuple[str, dict[str, Any]]]:
    spec = create_app(cast(Warehouse, None), MemoryKeyStore()).openapi()
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if {"since", "until"} <= {p["name"] for p in operation.get("parameters", [])}
    ]


def test_every_route_taking_a_range_documents_its_422_for_one_holding_nothing() -> None:
    routes = ranged_routes()
    assert len(routes) >= 7  # timeline, alerts, satisfaction, responses, service, FCR, audit
    for route, operation in routes:
        assert "since ≥ until" in operation["responses"]["422"]["description"], route

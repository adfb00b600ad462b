"""The service, alert and survey-answer routes during a warehouse outage: a valid read answers 503 in the one
error shape (as their OpenAPI entries say), and a bad parameter answers 422 all the same, which
shows it is refused before the warehouse is asked anything (a query first would be a 503)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.bootstrap import build
from cem.runner import ensure_tables
from kernel.settings import IngestSettings
from services.projections.projection import ProjectionsProjection
from tests.integration.test_readiness import WarehouseDown, assert_unavailable

FCR, SERVICE, ALERTS = "/v1/service/fcr", "/v1/service/touchpoints", "/v1/alerts"
RESPONSES = "/v1/satisfaction/responses"
TIMELINE = "/v1/customers/email:ana@shop.es/timeline"


@pytest.fixture
def down(tmp_path: Path, warehouse: ChdbWarehouse) -> Iterator[TestClient]:
    """A manager's client of the embedded app whose warehouse does not answer."""
    ensure_tables(warehouse, [ProjectionsProjection()])
    flaky, keys = WarehouseDown(warehouse), MemoryKeyStore()
    platform = build(IngestSettings(data_dir=tmp_path / "data"), warehouse=flaky, keys=keys)
    secret = keys.create("acme", "manager")[1]
    with TestClient(platform.app, headers={"Authorization": f"Bearer {secret}"}) as client:
        flaky.down = True
        yield client
    platform.log.close()


@pytest.mark.parametrize("path", [FCR, SERVICE, ALERTS, RESPONSES])
def test_a_valid_read_answers_503_in_the_one_shape(down: TestClient, path: str) -> None:
    assert_unavailable(down.get(path), "warehouse_unavailable")


BAD = [
    (FCR, {"since": "2026-02-01", "until": "2026-01-01"}, "invalid_range", "query.since"),
    (FCR, {"since": "2000-01-01", "until": "2026-01-01", "bucket": "hour"}, "range_too_large",
     "query.since"),
    (FCR, {"since": "2026-01-01T00:00:00"}, "invalid_parameter", "query.since"),
    (FCR, {"bucket": "year"}, "invalid_request", "query.bucket"),
    (FCR, {"format": "pdf"}, "invalid_request", "query.format"),
    (SERVICE, {"since": "2026-01-02", "until": "2026-01-02"}, "invalid_range", "query.since"),
    (SERVICE, {"group_by": "region"}, "invalid_request", "query.group_by.0"),
    (SERVICE, {"group_by": ["tenant", "agent"]}, "invalid_parameter", "query.group_by"),
    (SERVICE, {"bucket": "week"}, "invalid_request", "query.bucket"),
    (ALERTS, {"cursor": "not-a-cursor"}, "invalid_cursor", "query.cursor"),
    (RESPONSES, {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
     "invalid_range", "query.since"),
    # The default since (until − 30 days) is before year 1: refused, not a server error.
    (RESPONSES, {"until": "0001-01-02T00:00:00Z"}, "invalid_parameter", "query.until"),
    (ALERTS, {"until": "2026-01-01T00:00:00"}, "invalid_parameter", "query.until"),
    # An empty range names both parameters, on every route taking one.
    (ALERTS, {"since": "2026-01-02", "until": "2026-01-01"}, "invalid_range", "query.since"),
    (ALERTS, {"since": "2026-01-02T00:00:00Z", "until": "2026-01-02T01:00:00+01:00"},
     "invalid_range", "query.until"),
    (TIMELINE, {"since": "2026-01-02", "until": "2026-01-01"}, "invalid_range", "query.until"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params", "code", "where"), BAD)
def test_a_bad_parameter_is_refused_before_the_warehouse_is_asked(
    down: TestClient, path: str, params: dict[str, Any], code: str, where: str
) -> None:
    answer = down.get(path, params=params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert where in [d["path"] for d in error["details"]]

"""The routes that read one customer's data, and the access-audit listing, document in the query
API's OpenAPI every status they can answer and the content types of their 200."""

from __future__ import annotations

from typing import Any, cast

import pytest

from cem.adapters.memory_keys import MemoryKeyStore
from kernel.ports import Warehouse
from services.query_api.app import create_app

# Excel's own media type for .xlsx (the Office Open XML spreadsheet).
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

DOWNLOADS = {"application/json", "text/csv", "application/vnd.apache.parquet", XLSX}
# path: (statuses, 200 content types). Every audited read answers 503 when the audit cannot
# record it; every route 401 without a credential and 403 to a role that may not read it; a
# customer addressed by an identifier key several customers hold is a 409.
ROUTES: dict[str, tuple[set[str], set[str]]] = {
    "/v1/customers/{customer_id}": (
        {"401", "403", "404", "409", "422", "503"},
        {"application/json"},
    ),
    "/v1/customers/{customer_id}/timeline": (
        {"401", "403", "404", "409", "422", "503"},
        {"application/json"},
    ),
    "/v1/customers/{customer_id}/stream": (
        {"401", "403", "404", "409", "422", "503"},
        {"text/event-stream"},
    ),
    "/v1/customers/{customer_id}/export": (
        {"401", "403", "404", "409", "422", "503"},
        {"application/zip"},
    ),
    "/v1/customers/{customer_id}/identities": (
        {"401", "403", "404", "409", "422", "503"},
        {"application/json"},
    ),
    "/v1/customers/{customer_id}/identity-history": (
        {"401", "403", "404", "409", "422", "503"},
        {"application/json"},
    ),
    "/v1/events/{event_id}": ({"401", "403", "404", "422", "503"}, {"application/json"}),
    "/v1/alerts": ({"401", "403", "409", "422", "503"}, DOWNLOADS),
    "/v1/audit/access": ({"401", "403", "422", "503"}, DOWNLOADS),
}


@pytest.fixture(scope="module")
def paths() -> dict[str, Any]:
    app = create_app(cast(Warehouse, None), MemoryKeyStore())
    found: dict[str, Any] = app.openapi()["paths"]
    return found


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_every_status_and_content_type_is_documented(paths: dict[str, Any], path: str) -> None:
    statuses, content = ROUTES[path]
    responses = paths[path]["get"]["responses"]
    assert set(responses) >= {"200", *statuses}
    assert set(responses["200"]["content"]) == content
    assert all(responses[s].get("description") for s in statuses)


def test_an_alerts_download_documents_where_it_stopped(paths: dict[str, Any]) -> None:
    ok = paths["/v1/alerts"]["get"]["responses"]["200"]
    assert ok["headers"]["X-Next-Cursor"]["description"]

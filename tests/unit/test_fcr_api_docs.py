"""`GET /v1/service/fcr` and the drift alerts of `GET /v1/alerts` are documented in the query API's
OpenAPI: statuses, parameters, downloads and the alert's drift detail."""

from __future__ import annotations

from typing import Any, cast

from cem.adapters.memory_keys import MemoryKeyStore
from kernel.ports import Warehouse
from services.query_api.app import create_app

# Excel's own media type for .xlsx (the Office Open XML spreadsheet).
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def openapi() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(cast(Warehouse, None), MemoryKeyStore()).openapi()
    return spec


def test_the_fcr_route_its_parameters_statuses_and_downloads_are_documented() -> None:
    operation = openapi()["paths"]["/v1/service/fcr"]["get"]
    assert set(operation["responses"]) == {"200", "401", "403", "422", "503"}
    names = {p["name"] for p in operation["parameters"]}
    assert names == {
        "since",
        "until",
        "channel",
        "touchpoint",
        "queue",
        "agent",
        "bucket",
        "tz",
        "format",
        "lang",  # an Excel download's header row in words
    }
    content = operation["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "application/vnd.apache.parquet", XLSX} <= set(content)


def test_an_alert_documents_its_drift_detail() -> None:
    schemas = openapi()["components"]["schemas"]
    assert "drift" in schemas["AlertOut"]["properties"]
    drift = schemas["DriftOut"]["properties"]
    assert {"period_start", "drop", "drop_interval", "p_value", "answers"} <= set(drift)
    fcr = schemas["FcrBucket"]["properties"]
    assert {"status", "counts", "metrics", "queue", "agent"} <= set(fcr)

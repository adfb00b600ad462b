"""`GET /v1/service/touchpoints` is documented in the query API's OpenAPI with its statuses."""

from __future__ import annotations

from typing import Any, cast

from cem.adapters.memory_keys import MemoryKeyStore
from kernel.ports import Warehouse
from services.query_api.app import create_app
from services.service_metrics.definitions import SERVICE_DEFINITIONS

# Excel's own media type for .xlsx (the Office Open XML spreadsheet).
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_the_route_its_parameters_and_statuses_are_documented() -> None:
    app = create_app(cast(Warehouse, None), MemoryKeyStore())
    operation: dict[str, Any] = app.openapi()["paths"]["/v1/service/touchpoints"]["get"]
    assert set(operation["responses"]) == {"200", "401", "403", "422", "503"}
    names = {p["name"] for p in operation["parameters"]}
    assert names >= {"since", "until", "channel", "touchpoint", "queue", "agent", "bucket"}
    assert names >= {"group_by", "format", "service_level_s"}
    downloads = set(operation["responses"]["200"]["content"])
    assert downloads == {"application/json", "text/csv", "application/vnd.apache.parquet", XLSX}


def test_every_definition_is_versioned_and_unique() -> None:
    keys = [d.key for d in SERVICE_DEFINITIONS]
    assert len(keys) == len(set(keys)) and all(k.endswith("@1") for k in keys)

"""The OpenAPI documents declare how each route is authenticated (issue 11): the schemes in
`components.securitySchemes`, and on each route the credentials it takes, as alternatives.

A route that answers 401 for a missing or bad credential declares one; a route that declares one
documents its 401; the provider webhooks, which are verified by each provider's own signature
rather than by a credential of ours, and the public routes declare none. An app that signs nobody
in offers no session cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cem.adapters.memory_channels import MemoryChannelStore
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_users import MemoryUserStore
from kernel.clock import FixedClock
from kernel.ports import Publisher, Warehouse
from kernel.secrets import SecretBox, new_key_text, platform_key
from kernel.settings import IngestSettings
from services.ingest.app import create_app as create_ingest
from services.query_api.app import create_app as create_query_api

KEYED = [{"bearerKey": []}]
KEYED_OR_SIGNED_IN = [{"bearerKey": []}, {"sessionCookie": []}]
SEGMENT = [{"basicKey": []}, {"bearerKey": []}]
# Verified by the provider's signature under the channel's secret, which is no OpenAPI scheme.
SIGNED_BY_PROVIDER = {("post", "/v1/webhooks/{name}/{channel_id}")}


def _ingest() -> FastAPI:
    return create_ingest(
        cast(Publisher, None),
        MemoryKeyStore(),
        IngestSettings(),
        FixedClock(datetime(2026, 12, 6, 12, tzinfo=UTC)),
        channels=MemoryChannelStore(SecretBox(platform_key(Path("/nonexistent"), new_key_text()))),
        bucket_key=b"k" * 32,
    )


def _query_api(*, sign_ins: bool) -> FastAPI:
    users = MemoryUserStore() if sign_ins else None
    return create_query_api(cast(Warehouse, None), MemoryKeyStore(), users=users)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (_query_api(sign_ins=True), KEYED_OR_SIGNED_IN),
        (_query_api(sign_ins=False), KEYED),
        (_ingest(), KEYED),
    ],
    ids=["query-api", "query-api-without-sign-ins", "ingest"],
)
def test_every_route_behind_a_credential_declares_it_and_documents_its_401(
    app: FastAPI, expected: list[dict[str, list[str]]]
) -> None:
    operations = _operations(app.openapi())
    behind = {key: op for key, op in operations.items() if "401" in op["responses"]}
    assert len(behind) > 3
    for (method, path), operation in behind.items():
        if (method, path) in SIGNED_BY_PROVIDER:
            assert "security" not in operation
        elif "segment" in operation["tags"]:
            assert operation["security"] == SEGMENT, path
        else:
            assert operation["security"] == expected, f"{method} {path}"
    for (method, path), operation in operations.items():
        if "security" in operation:
            assert "401" in operation["responses"], f"{method} {path} declares no 401"


def test_the_schemes_are_declared_once_and_the_cookie_only_where_people_sign_in() -> None:
    schemes = _query_api(sign_ins=True).openapi()["components"]["securitySchemes"]
    assert schemes["bearerKey"]["type"] == "http"
    assert schemes["bearerKey"]["scheme"] == "bearer"
    assert schemes["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "cem_session",
        "description": schemes["sessionCookie"]["description"],
    }
    assert "X-CSRF-Token" in schemes["sessionCookie"]["description"]
    for app in (_query_api(sign_ins=False), _ingest()):
        document = app.openapi()
        assert "sessionCookie" not in document["components"]["securitySchemes"]
        assert "sessionCookie" not in str(document["paths"])
    ingest_schemes = _ingest().openapi()["components"]["securitySchemes"]
    assert ingest_schemes["basicKey"]["scheme"] == "basic"
    assert "writeKey" in ingest_schemes["basicKey"]["description"]


def test_public_routes_declare_no_credential_and_no_401() -> None:
    operations = _operations(_ingest().openapi())
    for key in [
        ("get", "/v1/channels/providers"),
        ("get", "/v1/schemas"),
        ("get", "/v1/schemas/{name}"),
    ]:
        assert "security" not in operations[key], key
        assert "401" not in operations[key]["responses"], key
    response = TestClient(_ingest()).get("/v1/channels/providers")
    assert response.status_code == 200
    assert response.json()["providers"]


def test_declaring_the_schemes_changes_no_refusal() -> None:
    """The declared schemes check nothing themselves: the refusals keep the one error shape."""
    client = TestClient(_query_api(sign_ins=True))
    missing = client.get("/v1/customers")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    odd = client.get("/v1/customers", headers={"Authorization": "Token abc"})
    assert odd.status_code == 401
    assert odd.json()["error"]["code"] == "unauthorized"
    ingest = TestClient(_ingest())
    garbled = ingest.post("/v1/batch", headers={"Authorization": "Basic %%%"}, content=b"{}")
    assert garbled.status_code == 401
    assert garbled.json()["error"]["code"] == "unauthorized"


def test_a_bad_session_or_a_header_of_another_scheme_is_told_apart() -> None:
    client = TestClient(_query_api(sign_ins=True))
    expired = client.get("/v1/customers", cookies={"cem_session": "not a session"})
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == "Bearer"  # RFC 9110: every 401 names one
    basic = client.get("/v1/customers", headers={"Authorization": "Basic dXNlcjo="})
    assert basic.json()["error"]["message"].startswith("not a Bearer key")
    missing = client.get("/v1/customers")
    assert missing.json()["error"]["message"].startswith("missing bearer key")


def test_routes_document_only_the_answers_they_can_give() -> None:
    """Found by a first-hour review: the channel list and removal took no body yet listed the
    body's answers, and the candidates list answered a 503 it did not list."""
    ingest = _operations(_ingest().openapi())
    for key in [("get", "/v1/channels"), ("delete", "/v1/channels/{channel_id}")]:
        assert not {"400", "413"} & set(ingest[key]["responses"]), key
    for key in [("post", "/v1/channels"), ("patch", "/v1/channels/{channel_id}")]:
        assert {"400", "413", "422"} <= set(ingest[key]["responses"]), key
    query = _operations(_query_api(sign_ins=True).openapi())
    assert "503" in query[("get", "/v1/merge-candidates")]["responses"]

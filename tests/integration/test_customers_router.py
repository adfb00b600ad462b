"""The customers router over chdb, as an agent's client sees it: pages, filters, profile, lookup,
and the security answers (S01, B13)."""

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
from services.projections.projection import ProjectionsProjection
from services.projections.timeline import Cursor, encode_cursor
from services.query_api.routers.customers import router
from services.satisfaction.projection import SatisfactionProjection

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
ANA = {"customer_id": "cust-1", "email": "ana@shop.es", "phone": "+33 6 17 34 56 78"}


def store(warehouse: ChdbWarehouse, tenant_id: str, events: list[dict[str, Any]]) -> list[str]:
    """Accept raw events as the edge does and project them; returns their ids."""
    projection = ProjectionsProjection()
    ids: list[str] = []
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for minutes, raw in enumerate(events):
        at = T0 + timedelta(minutes=minutes)
        body = {"event_id": str(uuid.uuid4()), "occurred_at": at.isoformat(), **raw}
        event, _ = accept(body, tenant_id, at + timedelta(seconds=1))
        for table, rows in projection.rows(event).items():
            by_table[table] += rows
        ids.append(str(event.event_id))
    for table, rows in by_table.items():
        warehouse.insert(table, rows)
    return ids


def ana_history() -> list[dict[str, Any]]:
    order = {"order_id": "A-1", "amount": "129.90", "currency": "EUR", "items": 2}
    return [
        {"channel": "web", "type": "page.viewed", "payload": {"url": "https://shop.example/"}},
        {"channel": "web", "type": "order.placed", "touchpoint": "checkout", "payload": order},
        {"channel": "chat", "type": "message.received", "payload": {"text": "Where is it?"}},
        {"channel": "chat", "type": "message.sent", "payload": {"agent": "bob", "text": "Today"}},
        {"channel": "email", "type": "case.opened", "payload": {"case_id": "C1", "subject": "Late"}},
        {"channel": "phone", "type": "call.ended", "touchpoint": "support_line",
         "payload": {"agent": "ana", "talk_s": 432}},
        {"channel": "survey", "type": "survey.answered", "touchpoint": "delivery",
         "payload": {"kind": "csat", "score": 2, "comment": "Too slow"}},
    ]  # fmt: skip


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
def ana_ids(app: FastAPI) -> list[str]:
    history = [{**raw, "customer": ANA} for raw in ana_history()]
    return store(app.state.warehouse, "acme", history)


def bearer(app: FastAPI, tenant_id: str = "acme", role: str = "agent") -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.keys.create(tenant_id, role)[1]}"}


@pytest.fixture
def agent(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers=bearer(app)) as client:
        yield client


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    return dict(body["error"])


# --- timeline --------------------------------------------------------------------------------
def test_timeline_pages_newest_first_with_a_cursor(agent: TestClient, ana_ids: list[str]) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        response = agent.get("/v1/customers/cust-1/timeline", params=params)
        assert response.status_code == 200
        body = response.json()
        assert len(body["entries"]) <= 3
        seen += [e["event_id"] for e in body["entries"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == ana_ids[::-1]
    assert pages == 3


def test_timeline_entries_carry_summary_payload_and_times(
    agent: TestClient, ana_ids: list[str]
) -> None:
    newest = agent.get("/v1/customers/cust-1/timeline", params={"limit": 2}).json()["entries"]
    survey, call = newest
    assert survey["summary"] == "CSAT 2/5 · delivery · “Too slow”"
    assert call["summary"] == "Call ended · support_line · 7m12s talk · agent ana"
    assert call["payload"]["talk_s"] == 432
    assert datetime.fromisoformat(call["derived_at"]) == T0 + timedelta(minutes=5)
    assert call["identifiers"] == [
        "customer_id:cust-1",
        "email:ana@shop.es",
        "phone:+33617345678",
    ]


def test_timeline_summaries_in_spanish_on_every_page(agent: TestClient, ana_ids: list[str]) -> None:
    def summaries(**params: Any) -> tuple[list[str], str | None]:
        response = agent.get("/v1/customers/cust-1/timeline", params={"limit": 4, **params})
        assert response.status_code == 200, response.text
        return [e["summary"] for e in response.json()["entries"]], response.json()["next_cursor"]

    first, cursor = summaries(lang="es")
    older, _ = summaries(lang="es", cursor=cursor)
    assert first + older == [
        "CSAT 2/5 · delivery · “Too slow”",
        "Llamada finalizada · support_line · 7m12s de conversación · agente ana",
        "Caso abierto · correo · caso C1 · “Late”",
        "Mensaje enviado · chat · agente bob · “Today”",
        "Mensaje recibido · chat · “Where is it?”",
        "Pedido realizado · checkout · 129.90 EUR · 2 artículos · pedido A-1",
        "Página vista · web · https://shop.example/",
    ]
    # English stays the stored summary, and the default.
    assert summaries()[0] == summaries(lang="en")[0]
    assert summaries()[0][1] == "Call ended · support_line · 7m12s talk · agent ana"
    response = agent.get("/v1/customers/cust-1/timeline", params={"lang": "fr"})
    assert response.status_code == 422
    assert [d["path"] for d in error_of(response)["details"]] == ["query.lang"]


def test_timeline_filters(agent: TestClient, ana_ids: list[str]) -> None:
    def ids(**params: Any) -> list[str]:
        response = agent.get("/v1/customers/cust-1/timeline", params=params)
        assert response.status_code == 200, response.text
        return [e["event_id"] for e in response.json()["entries"]]

    assert ids(channel="chat") == [ana_ids[3], ana_ids[2]]
    assert ids(type="order.placed") == [ana_ids[1]]
    window = {"since": "2026-04-01T08:02:00Z", "until": "2026-04-01T10:04:00+02:00"}
    assert ids(**window) == [ana_ids[3], ana_ids[2]]
    assert ids(channel="phone", type="page.viewed") == []


def test_repeated_filters_type_prefixes_and_dates(agent: TestClient, ana_ids: list[str]) -> None:
    """Repeated filters mean any of; `call.*` is every call type; a date is midnight UTC."""

    def ids(**params: Any) -> list[str]:
        response = agent.get("/v1/customers/cust-1/timeline", params=params)
        assert response.status_code == 200, response.text
        return [e["event_id"] for e in response.json()["entries"]]

    assert ids(channel=["phone", "email"]) == [ana_ids[5], ana_ids[4]]
    assert ids(type=["message.*"]) == [ana_ids[3], ana_ids[2]]
    assert ids(type=["call.*", "order.placed"]) == [ana_ids[5], ana_ids[1]]
    day = T0.date()
    assert len(ids(since=day.isoformat())) == len(ana_ids)  # from midnight UTC of T0's day
    assert ids(until=day.isoformat()) == []
    assert ids(since=(day + timedelta(days=1)).isoformat()) == []


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"channel": "fax"}, "query.channel"),
        ({"type": "Robert'); DROP TABLE customer_timeline;--"}, "query.type"),
        ({"type": "call*"}, "query.type"),
        ({"since": "2026-02-30"}, "query.since"),
        ({"since": "2026-04-01T08:00:00"}, "query.since"),
        ({"since": "2026-04-02T00:00:00Z", "until": "2026-04-01T00:00:00Z"}, "query.since"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
    ],
)
def test_bad_timeline_parameters_are_422_with_the_path(
    agent: TestClient, ana_ids: list[str], params: dict[str, Any], path: str
) -> None:
    response = agent.get("/v1/customers/cust-1/timeline", params=params)
    assert response.status_code == 422
    # A repeatable filter names the bad value's position too (query.channel.0).
    assert any(d["path"].startswith(path) for d in error_of(response)["details"])


@pytest.mark.parametrize("micros", [2**63, -(2**63) - 1, 10**40])
def test_a_cursor_outside_the_64_bit_range_is_422_not_wrapped_around(
    agent: TestClient, ana_ids: list[str], micros: int
) -> None:
    cursor = encode_cursor(Cursor(micros, str(uuid.uuid4())))
    response = agent.get("/v1/customers/cust-1/timeline", params={"cursor": cursor})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_cursor"  # as on every route with a cursor
    assert [d["path"] for d in error_of(response)["details"]] == ["query.cursor"]
    edge = encode_cursor(Cursor(2**63 - 1, str(uuid.uuid4())))  # the largest Int64 still reads
    assert agent.get("/v1/customers/cust-1/timeline", params={"cursor": edge}).status_code == 200


def test_ids_with_slashes_and_unicode_are_customers_too(agent: TestClient, app: FastAPI) -> None:
    weird = "crm/42 ü 👋"
    [event_id] = store(app.state.warehouse, "acme", [
        {"channel": "web", "type": "page.viewed", "payload": {"url": "https://s.example/"},
         "customer": {"customer_id": weird}},
    ])  # fmt: skip
    timeline = agent.get("/v1/customers/crm%2F42%20%C3%BC%20%F0%9F%91%8B/timeline")
    assert [e["event_id"] for e in timeline.json()["entries"]] == [event_id]
    assert agent.get(f"/v1/customers/{weird}").json()["customer_id"] == weird


def test_ids_with_tabs_and_backslashes_are_unknown_customers_not_errors(
    agent: TestClient, ana_ids: list[str]
) -> None:
    for weird in ("a%09b", "a%5Cx41", "trailing%5C"):
        assert agent.get(f"/v1/customers/{weird}").status_code == 404


# --- profile ---------------------------------------------------------------------------------
def test_profile_tells_what_the_crm_knows(agent: TestClient, ana_ids: list[str]) -> None:
    response = agent.get("/v1/customers/cust-1")
    assert response.status_code == 200
    profile = response.json()
    assert profile["events"] == 7
    assert (profile["last_channel"], profile["last_touchpoint"]) == ("survey", "delivery")
    assert profile["orders"]["by_currency"] == [
        {"currency": "EUR", "orders": 1, "amount": "129.90", "returns": 0,
         "returned_amount": "0.00", "net_amount": "129.90"},
    ]  # fmt: skip
    assert profile["satisfaction"]["csat"]["score"] == 2
    assert [c["case_id"] for c in profile["open_cases"]] == ["C1"]
    assert {c["channel"]: c["events"] for c in profile["channels"]} == {
        "web": 2, "chat": 2, "email": 1, "phone": 1, "survey": 1,
    }  # fmt: skip


# --- S01: tenants never see each other ------------------------------------------------------
def test_unknown_and_other_tenants_customers_are_the_same_404(
    app: FastAPI, agent: TestClient, ana_ids: list[str]
) -> None:
    store(app.state.warehouse, "globex", [
        {"channel": "web", "type": "page.viewed", "payload": {"url": "https://g.example/"},
         "customer": {"customer_id": "globex-only", "email": "zoe@globex.example"}},
    ])  # fmt: skip
    for path in ("/v1/customers/globex-only", "/v1/customers/globex-only/timeline"):
        theirs, nobody = agent.get(path), agent.get(path.replace("globex-only", "nobody"))
        assert theirs.status_code == nobody.status_code == 404
        assert error_of(theirs)["code"] == "not_found"
        assert theirs.json() == nobody.json()
    lookup = agent.get("/v1/customers", params={"email": "zoe@globex.example"})
    assert lookup.status_code == 200 and lookup.json()["customers"] == []


def test_the_same_customer_id_in_two_tenants_shows_only_the_callers(
    app: FastAPI, agent: TestClient, ana_ids: list[str]
) -> None:
    store(app.state.warehouse, "globex", [
        {"channel": "store", "type": "store.visited", "payload": {"store_id": "g1"}, "customer": ANA},
    ])  # fmt: skip
    mine = agent.get("/v1/customers/cust-1/timeline").json()["entries"]
    assert [e["event_id"] for e in mine] == ana_ids[::-1]
    with TestClient(app, headers=bearer(app, "globex")) as theirs:
        assert theirs.get("/v1/customers/cust-1").json()["events"] == 1


@pytest.mark.parametrize("path", ["/v1/customers/cust-1", "/v1/customers/cust-1/timeline",
                                  "/v1/customers?email=ana@shop.es"])  # fmt: skip
def test_missing_or_unknown_keys_are_401_and_ingest_keys_403(
    app: FastAPI, ana_ids: list[str], path: str
) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.get(path).status_code == 401
        unknown = anonymous.get(path, headers={"Authorization": "Bearer nope"})
        assert unknown.status_code == 401 and error_of(unknown)["code"] == "unauthorized"
        ingest = anonymous.get(path, headers=bearer(app, role="ingest"))
        assert ingest.status_code == 403 and error_of(ingest)["code"] == "forbidden"
        assert anonymous.get(path, headers=bearer(app, role="manager")).status_code == 200


# --- lookup ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"email": "ANA@Shop.ES"},
        {"email": " ana@shop.es "},
        {"phone": "+33617345678"},
        {"phone": "+33 (6) 17-34-56-78"},
    ],
)
def test_lookup_finds_the_customer_however_the_identifier_is_written(
    agent: TestClient, ana_ids: list[str], params: dict[str, str]
) -> None:
    response = agent.get("/v1/customers", params=params)
    assert response.status_code == 200
    [match] = response.json()["customers"]
    assert match["customer_id"] == "cust-1" and match["events"] == 7
    assert datetime.fromisoformat(match["first_seen"]) == T0


def test_lookup_by_anonymous_and_external_ids(agent: TestClient, app: FastAPI) -> None:
    store(app.state.warehouse, "acme", [
        {"channel": "web", "type": "page.viewed", "payload": {"url": "https://s.example/"},
         "customer": {"anonymous_id": "anon-7", "external_ids": {"shopify": "991"}}},
    ])  # fmt: skip
    by_anon = agent.get("/v1/customers", params={"anonymous_id": "anon-7"}).json()
    by_ext = agent.get("/v1/customers", params={"external_id": "shopify:991"}).json()
    assert [m["customer_id"] for m in by_anon["customers"]] == ["ext:shopify:991"]
    assert by_ext["customers"] == by_anon["customers"]
    assert (by_ext["kind"], by_ext["value"]) == ("external:shopify", "991")
    # One spelling: the timeline lists the identifiers as `<kind>:<value>`, kinds as above.
    [entry] = agent.get("/v1/customers/ext:shopify:991/timeline").json()["entries"]
    assert sorted(entry["identifiers"]) == ["anonymous_id:anon-7", "external:shopify:991"]


@pytest.mark.parametrize(
    "params",
    [{}, {"email": "a@b.c", "phone": "+1 555"}, {"email": "   "}, {"external_id": "no-namespace"}],
)
def test_lookup_needs_exactly_one_usable_identifier(
    agent: TestClient, params: dict[str, str]
) -> None:
    response = agent.get("/v1/customers", params=params)
    assert response.status_code == 422
    assert error_of(response)["details"][0]["code"] == "invalid_lookup"


def test_lookup_of_an_unseen_identifier_is_an_empty_list(
    agent: TestClient, ana_ids: list[str]
) -> None:
    response = agent.get("/v1/customers", params={"email": "' OR '1'='1"})
    assert response.status_code == 200 and response.json()["customers"] == []


def test_responses_are_documented_in_openapi(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    timeline = paths["/v1/customers/{customer_id}/timeline"]["get"]["responses"]
    assert timeline["200"]["content"]["application/json"]["schema"]["$ref"].endswith("TimelinePage")
    assert "404" in timeline
    assert paths["/v1/customers/{customer_id}"]["get"]["tags"] == ["customers"]
    lookup = paths["/v1/customers"]["get"]
    assert {p["name"] for p in lookup["parameters"]} == {
        "email",
        "phone",
        "anonymous_id",
        "external_id",
    }

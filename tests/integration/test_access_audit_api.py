"""The access audit through the embedded platform (`cem.bootstrap.build`, identity on, its SQLite
audit file): a key's and a signed-in person's reads of one customer are listed for admins, with
the customer they resolved to; nobody else may list them, tenants stay apart, and a read the
audit cannot record answers 503 and no data."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.postgres import PostgresUnavailable
from cem.adapters.postgres_access_audit import PostgresAccessAudit
from cem.adapters.postgres_users import PostgresUserStore
from cem.adapters.sqlite_access_audit import SqliteAccessAudit
from cem.bootstrap import Platform
from cem.distributed import build_query_api
from cem.runner import ensure_tables
from kernel.accounts import Accounts
from kernel.auth import SESSION_COOKIE
from kernel.ports import AccessEntry, AccessQuery
from kernel.settings import QuerySettings
from services.projections.projection import ProjectionsProjection
from services.projections.timeline import Cursor, encode_cursor
from services.satisfaction.projection import SatisfactionProjection
from tests.integration import test_unified_history as unified
from tests.integration.test_customers_router import ana_history, store
from tests.integration.test_unified_history import (
    EMAIL,
    EMAIL_ID,
    PHONE,
    PHONE_ID,
    TENANT,
    Client,
    touch,
)

# The embedded platform with identity on, and its client: test_unified_history's fixtures.
platform, api = unified.platform, unified.api
PASSWORD = "a long enough password"
AUDIT = "/v1/audit/access"


def person(platform: Platform, role: str, tenant: str = TENANT) -> tuple[TestClient, str, str]:
    """A client signed in as a new person: (client, user id, email)."""
    accounts: Accounts = platform.app.state.accounts
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    user = accounts.create(tenant, role, email, PASSWORD)
    signed = accounts.sign_in(email, PASSWORD)
    assert signed is not None
    client = TestClient(platform.app)
    client.cookies.set(SESSION_COOKIE, signed.session_secret)
    return client, user.user_id, email


def key_id(platform: Platform, secret: str) -> str:
    principal = platform.keys.authenticate(secret)
    assert principal is not None
    return principal.key_id


@pytest.fixture
def merged(api: Client) -> None:
    """Ana by phone and by email, two customers until a manager merges them under the email."""
    api.post(
        touch("call.ended", "phone", {"phone": PHONE}, 0, {"agent": "bob", "talk_s": 60}),
        touch("survey.answered", "survey", {"email": EMAIL}, 5, {"kind": "csat", "score": 1}),
    )
    assert api.merge(EMAIL_ID, PHONE_ID).status_code == 200


def listed(api: Client, **params: Any) -> list[dict[str, Any]]:
    answer = api.call("GET", AUDIT, "admin", params=params)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def test_a_keys_and_a_persons_timeline_reads_are_listed_with_the_resolved_customer(
    api: Client, merged: None
) -> None:
    agent_key = key_id(api.platform, api.secrets["agent"])
    console, user_id, email = person(api.platform, "agent")
    # The key asks for the absorbed phone customer: the read is of the merged customer.
    assert api.call("GET", f"/v1/customers/{PHONE_ID}/timeline").status_code == 200
    read = console.get(f"/v1/customers/{EMAIL_ID}/timeline", headers={"X-Request-ID": "req-42"})
    assert read.status_code == 200, read.text

    ana = api.home(EMAIL_ID)  # the merged customer's (opaque) id
    by_person, by_key = listed(api, customer_id=ana)
    assert by_key | {"entry_id": "", "at": ""} == {
        "entry_id": "", "at": "", "actor_kind": "key", "actor_id": agent_key,
        "actor_email": None, "role": "agent", "customer_id": ana,
        "requested_id": PHONE_ID, "resource": "timeline", "request_id": None,
    }  # fmt: skip
    assert by_person | {"entry_id": "", "at": ""} == {
        "entry_id": "", "at": "", "actor_kind": "user", "actor_id": user_id,
        "actor_email": email, "role": "agent", "customer_id": ana,
        "requested_id": EMAIL_ID, "resource": "timeline", "request_id": "req-42",
    }  # fmt: skip
    assert [e["actor_id"] for e in listed(api, actor=email)] == [user_id]
    assert [e["actor_id"] for e in listed(api, actor=agent_key)] == [agent_key]
    assert (
        listed(api, customer_id=PHONE_ID) == []
    )  # entries name the customer read, not the typed id


def open_stream(api: Client, customer_id: str) -> list[MutableMapping[str, Any]]:
    """What the app sends for the stream of the customer to an agent that leaves at once. The
    stream is endless, so the request goes to the app as ASGI, not through a TestClient."""
    path = f"/v1/customers/{customer_id}/stream"
    secret = api.secrets["agent"]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"authorization", f"Bearer {secret}".encode())],
        "client": ("testclient", 50000), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(api.platform.app(scope, receive, send))
    return sent


def test_opening_a_live_stream_is_recorded(api: Client, merged: None) -> None:
    # Recorded when the stream opens, before its first message.
    assert open_stream(api, PHONE_ID)[0]["status"] == 200
    (opened,) = listed(api)
    assert (opened["resource"], opened["customer_id"], opened["requested_id"]) == (
        "stream",
        api.home(EMAIL_ID),
        PHONE_ID,
    )


def test_a_language_the_console_does_not_speak_is_refused_before_the_customer_is_read(
    api: Client, merged: None
) -> None:
    # Refused by the parameter's validation, in the one error shape: the route never runs, so
    # nothing is read, no stream opens, and no read is recorded.
    for resource in ("timeline", "stream"):
        path = f"/v1/customers/{PHONE_ID}/{resource}"
        refused = api.call("GET", path, params={"lang": "fr"})
        assert refused.status_code == 422, resource
        error = refused.json()["error"]
        assert error["code"] == "invalid_request", resource
        assert [d["path"] for d in error["details"]] == ["query.lang"], resource
    assert listed(api) == []


def test_every_view_of_one_customer_is_recorded_and_searches_are_not(
    api: Client, merged: None
) -> None:
    for path, params in [
        (f"/v1/customers/{PHONE_ID}", {}),
        (f"/v1/customers/{PHONE_ID}/identities", {}),
        (f"/v1/customers/{PHONE_ID}/identity-history", {}),
        ("/v1/alerts", {"customer_id": PHONE_ID}),
        ("/v1/alerts", {}),  # every customer's alerts: not one customer's read
        ("/v1/customers", {"email": EMAIL}),  # a search hit list
    ]:
        assert api.call("GET", path, params=params).status_code == 200, path
    resources = [e["resource"] for e in listed(api)]
    assert resources == ["alerts", "identity_history", "identities", "profile"]
    assert {e["customer_id"] for e in listed(api)} == {api.home(EMAIL_ID)}


def test_reading_one_event_is_recorded_under_the_customer_it_belongs_to(
    api: Client, merged: None
) -> None:
    timeline = api.call("GET", f"/v1/customers/{PHONE_ID}/timeline").json()
    event_id = timeline["entries"][-1]["event_id"]
    assert api.call("GET", f"/v1/events/{event_id}").status_code == 200
    newest = listed(api)[0]
    assert (newest["resource"], newest["customer_id"], newest["requested_id"]) == (
        "event",
        api.home(EMAIL_ID),  # the phone's call, now the merged customer's
        event_id,
    )
    api.platform.app.state.access_audit = None
    refused = api.call("GET", f"/v1/events/{event_id}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "audit_unavailable")


def test_pages_and_csv(api: Client, merged: None) -> None:
    for _ in range(3):
        assert api.call("GET", f"/v1/customers/{EMAIL_ID}").status_code == 200
    first = api.call("GET", AUDIT, "admin", params={"limit": 2}).json()
    rest = api.call("GET", AUDIT, "admin", params={"cursor": first["next_cursor"]}).json()
    assert [len(first["entries"]), len(rest["entries"]), rest["next_cursor"]] == [2, 1, None]
    every = {e["entry_id"] for e in first["entries"] + rest["entries"]}
    download = api.call("GET", AUDIT, "admin", params={"format": "csv"})
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {r["entry_id"] for r in rows} == every and rows[0]["resource"] == "profile"
    bad = api.call("GET", AUDIT, "admin", params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")
    # a well-formed cursor whose time lies past year 9999
    forged = encode_cursor(Cursor(2**62, "00000000-0000-0000-0000-000000000000"))
    bad = api.call("GET", AUDIT, "admin", params={"cursor": forged})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")


def test_only_admins_list_and_only_their_tenants_entries(api: Client, merged: None) -> None:
    assert api.call("GET", f"/v1/customers/{EMAIL_ID}").status_code == 200
    for role in ("agent", "manager", "ingest"):
        answer = api.call("GET", AUDIT, role)
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "forbidden"), role
    manager, _, _ = person(api.platform, "manager")
    assert manager.get(AUDIT).status_code == 403
    admin, _, _ = person(api.platform, "admin")
    assert len(admin.get(AUDIT).json()["entries"]) == 1  # a person who is an admin may

    other = api.platform.keys.create("other-tenant", "admin")[1]
    answer = api.http.get(AUDIT, headers={"Authorization": f"Bearer {other}"})
    assert answer.json()["entries"] == []
    answer = api.http.get(
        AUDIT, params={"customer_id": EMAIL_ID}, headers={"Authorization": f"Bearer {other}"}
    )
    assert answer.json()["entries"] == []


class DownAudit:
    """An audit store that cannot take entries (its server gone)."""

    def record(self, entry: AccessEntry) -> None:
        raise PostgresUnavailable("PostgreSQL at db:5432/cem: connection refused")

    def entries(self, query: AccessQuery) -> list[AccessEntry]:
        raise PostgresUnavailable("PostgreSQL at db:5432/cem: connection refused")

    def check_writable(self) -> None:
        raise PostgresUnavailable("PostgreSQL at db:5432/cem: connection refused")


@pytest.mark.parametrize("store", ["closed", "down"])
def test_a_read_the_audit_cannot_record_answers_503_and_no_data(
    api: Client, merged: None, store: str
) -> None:
    if store == "closed":
        assert isinstance(api.platform.access_audit, SqliteAccessAudit)
        api.platform.access_audit.close()  # the real SQLite file's store, gone
    else:
        api.platform.app.state.access_audit = DownAudit()
    for path, params in [
        (f"/v1/customers/{EMAIL_ID}/timeline", {}),
        (f"/v1/customers/{EMAIL_ID}", {}),
        (f"/v1/customers/{EMAIL_ID}/identities", {}),
        ("/v1/alerts", {"customer_id": EMAIL_ID}),
    ]:
        answer = api.call("GET", path, params=params)
        assert answer.status_code == 503, path
        assert answer.json() == {
            "error": {
                "code": "audit_unavailable",
                "message": "the access audit cannot record this read right now; retry later",
                "details": [],
            }
        }
        assert answer.headers["retry-after"] == "5"
    started, body = open_stream(api, EMAIL_ID)[:2]
    assert started["status"] == 503 and b"audit_unavailable" in body["body"]
    assert api.call("GET", "/v1/alerts").status_code == 200  # no one customer's data: no entry
    listing = api.call("GET", AUDIT, "admin")
    assert (listing.status_code, listing.json()["error"]["code"]) == (503, "audit_unavailable")
    bad_inputs = [
        {"cursor": "nonsense"},
        {"limit": "0"},
        {"since": "2026-13-01"},
        {"since": "2026-02-01", "until": "2026-01-01"},  # nothing between: invalid_range
        {"format": "xml"},
    ]
    for bad in bad_inputs:  # refused before the store is asked: a 422, not its 503
        refused = api.call("GET", AUDIT, "admin", params=bad)
        assert (refused.status_code, refused.json()["error"]["details"][0]["path"]) == (
            422,
            f"query.{next(iter(bad))}",
        ), bad
    ready = api.http.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["access_audit"].startswith("unavailable")
    assert ready.json()["checks"]["warehouse"] == "ok"


@pytest.mark.postgres
def test_the_distributed_query_api_records_in_postgresql(
    warehouse: ChdbWarehouse, postgres_dsn: str
) -> None:
    ensure_tables(warehouse, [ProjectionsProjection(), SatisfactionProjection()])
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    customer = {"customer_id": f"cust-{uuid.uuid4().hex[:8]}"}
    store(warehouse, tenant, [{**raw, "customer": customer} for raw in ana_history()])
    keys = MemoryKeyStore()
    settings = QuerySettings(
        mode="distributed", identity="rule", postgres_dsn=SecretStr(postgres_dsn)
    )
    service = build_query_api(
        settings, warehouse=warehouse, keys=keys, publisher=MemoryPublisher(MemoryLog())
    )
    agent, admin = (keys.create(tenant, role)[1] for role in ("agent", "admin"))
    try:
        client = TestClient(service.app)
        path = f"/v1/customers/{customer['customer_id']}/timeline"
        assert client.get(path, headers={"Authorization": f"Bearer {agent}"}).status_code == 200
        answer = client.get(AUDIT, headers={"Authorization": f"Bearer {admin}"})
        (listed_entry,) = answer.json()["entries"]
        assert listed_entry["customer_id"] == customer["customer_id"]
    finally:  # the warehouse is the fixture's to drop: close only the PostgreSQL stores
        assert isinstance(service.users, PostgresUserStore)
        assert isinstance(service.access_audit, PostgresAccessAudit)
        service.users.close()
        service.access_audit.close()
        if service.calendars is not None:
            service.calendars.close()
    # In PostgreSQL, where every other replica reads it too.
    other_replica = PostgresAccessAudit(postgres_dsn)
    try:
        (stored,) = other_replica.entries(AccessQuery(tenant))
        assert (stored.resource, stored.actor_kind) == ("timeline", "key")
    finally:
        other_replica.close()

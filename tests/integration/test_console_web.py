"""People's sessions on the query API and the pages it serves, over chdb, as a browser sees them:
sign-in with its CSRF field, the session cookie on the API with the same roles and tenants as keys,
the CSRF header on writes, lock-out, sign-out, languages, and the customer search (S11, S01)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_access_audit import MemoryAccessAudit
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.memory_users import MemoryUserStore
from cem.runner import ensure_tables
from kernel.accounts import MAX_FAILURES, Accounts
from kernel.auth import SESSION_COOKIE
from kernel.ports import TOUCHPOINTS_TOPIC
from services.projections.projection import ProjectionsProjection
from services.query_api.app import create_app
from services.satisfaction.projection import SatisfactionProjection
from tests.integration.test_customers_router import ana_history, store

PASSWORD = "a long enough password"
ANA = {"customer_id": "cust-ana", "email": "ana.garcia@mercado.es", "phone": "+34 600 111 222"}


@pytest.fixture
def app(warehouse: ChdbWarehouse) -> FastAPI:
    ensure_tables(warehouse, [ProjectionsProjection(), SatisfactionProjection()])
    app = create_app(
        warehouse, MemoryKeyStore(), users=MemoryUserStore(), access_audit=MemoryAccessAudit()
    )
    store(warehouse, "acme", [{**raw, "customer": ANA} for raw in ana_history()])
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def person(app: FastAPI, role: str, tenant: str = "acme") -> str:
    accounts: Accounts = app.state.accounts
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    accounts.create(tenant, role, email, PASSWORD)
    return email


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the form carries a CSRF field"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> tuple[int, str]:
    page = client.get("/signin")
    answer = client.post(
        "/signin",
        data={"email": email, "password": password, "csrf": form_token(page.text)},
        follow_redirects=False,
    )
    return answer.status_code, answer.headers.get("set-cookie", "")


def csrf_of(client: TestClient) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text)
    assert found
    return found.group(1)


def test_sign_in_sets_a_fresh_http_only_strict_session_cookie(
    app: FastAPI, client: TestClient
) -> None:
    planted = "planted-by-an-attacker"
    client.cookies.set(SESSION_COOKIE, planted)
    status, cookie = sign_in(client, person(app, "agent"))
    assert status == 303
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert cookie.startswith(f"{SESSION_COOKIE}=") and planted not in cookie
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie.split(";")[0].split("=", 1)[1])
    assert client.get("/console").status_code == 200


def test_the_cookie_is_secure_behind_tls(
    warehouse: ChdbWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEM_BEHIND_TLS", "true")  # read when the app is assembled
    app = create_app(
        warehouse, MemoryKeyStore(), users=MemoryUserStore(), access_audit=MemoryAccessAudit()
    )
    with TestClient(app) as client:
        assert "Secure" in sign_in(client, person(app, "agent"))[1]


def test_an_oversized_sign_in_form_is_413_in_the_error_shape(client: TestClient) -> None:
    answer = client.post("/signin", data={"email": "a" * 20_000, "password": "x", "csrf": "x"})
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_sign_in_without_the_forms_token_is_refused(app: FastAPI, client: TestClient) -> None:
    email = person(app, "agent")
    client.get("/signin")
    answer = client.post("/signin", data={"email": email, "password": PASSWORD, "csrf": "forged"})
    assert answer.status_code == 403
    assert client.cookies.get(SESSION_COOKIE) is None


def test_wrong_password_then_lock_out(app: FastAPI, client: TestClient) -> None:
    email = person(app, "agent")
    assert sign_in(client, email, "wrong password")[0] == 401
    for _ in range(MAX_FAILURES - 1):
        sign_in(client, email, "wrong password")
    assert sign_in(client, email)[0] == 429  # the right password, but locked


def test_signing_in_while_the_account_store_is_down_is_a_page_saying_so(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The person at the sign-in form got the API's raw JSON 503, and it named the event log
    # (found by a review, with PostgreSQL stopped).
    from cem.adapters.postgres import PostgresUnavailable

    def down(*args: object) -> None:
        raise PostgresUnavailable("PostgreSQL at db:5432/cem: couldn't get a connection")

    email = person(app, "agent")
    monkeypatch.setattr(Accounts, "sign_in", down)
    page = client.get("/signin?next=%2Fdashboard")
    answer = client.post("/signin", data={"email": email, "password": PASSWORD, "next": "/dashboard",
                                          "csrf": form_token(page.text)})  # fmt: skip
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
    assert answer.headers["content-type"].startswith("text/html")
    assert "the account store does not answer" in answer.text
    assert form_token(answer.text)  # the form again, to try once it answers
    # with what she typed and where she was going (both were dropped: a review)
    assert f'value="{email}"' in answer.text
    assert '<input type="hidden" name="next" value="/dashboard">' in answer.text
    # and so do its language links (they were plain `?lang=es`), without the email
    assert 'href="?next=%2Fdashboard&amp;lang=es"' in answer.text


def test_a_page_while_the_account_store_is_down_says_so_not_json(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signed-in agent opening the console while PostgreSQL was down got the API's raw JSON
    # 503 (found by a review): the pages answer the sign-in page saying why.
    from cem.adapters.postgres import PostgresUnavailable

    assert sign_in(client, person(app, "agent"))[0] == 303

    def down(*args: object) -> None:
        raise PostgresUnavailable("PostgreSQL at db:5432/cem: couldn't get a connection")

    monkeypatch.setattr(Accounts, "session", down)
    for path in ("/console", "/dashboard", "/"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "the account store does not answer" in answer.text
        # The sign-in it offers leads back to the page asked for (the home page is the console).
        back = "/console" if path == "/" else path
        assert f'<input type="hidden" name="next" value="{back}">' in answer.text, path
    # An address that is no page still says so (a review got a 500 from its handler).
    missing = client.get("/dashbaord", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "There is no page at this address" in missing.text


def test_pages_need_a_session(client: TestClient) -> None:
    # to sign in, then back to the page asked for (the home page is the sign-in itself)
    for path, back in (("/console", "?next=%2Fconsole"), ("/dashboard", "?next=%2Fdashboard"),
                       ("/", "")):  # fmt: skip
        answer = client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, f"/signin{back}")


def test_the_dashboard_is_for_managers(app: FastAPI, client: TestClient) -> None:
    sign_in(client, person(app, "agent"))
    assert client.get("/dashboard").status_code == 403
    sign_in(client, person(app, "manager"))
    assert client.get("/dashboard").status_code == 200


def test_the_session_reads_the_api_with_its_tenant_only(app: FastAPI, client: TestClient) -> None:
    sign_in(client, person(app, "agent"))
    assert client.get("/v1/customers/cust-ana").json()["customer_id"] == "cust-ana"
    sign_in(client, person(app, "agent", tenant="other"))
    assert client.get("/v1/customers/cust-ana").status_code == 404
    assert client.get("/v1/customers/search", params={"q": "ana"}).json()["customers"] == []


def test_writes_with_the_cookie_need_the_csrf_header(app: FastAPI, client: TestClient) -> None:
    sign_in(client, person(app, "manager"))
    body = {"survivor_id": "cust-ana", "absorbed_id": "x", "reason": "same person"}
    refused = client.post("/v1/customers/merge", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_token_missing"
    # With the token the request passes authentication; this app has no identity service (503).
    passed = client.post(
        "/v1/customers/merge", json=body, headers={"X-CSRF-Token": csrf_of(client)}
    )
    assert passed.status_code == 503


def test_the_dashboard_and_settings_say_who_they_are_for(app: FastAPI, client: TestClient) -> None:
    """Found by a browser review: a manager refused the settings page read that the dashboard
    (which she may open) was for managers."""
    sign_in(client, person(app, "manager"))
    refused = client.get("/settings?lang=en")
    assert refused.status_code == 403 and "Settings are for administrators." in main(refused.text)
    assert "The CX dashboard is for" not in main(refused.text)
    sign_in(client, person(app, "agent"))
    assert "The CX dashboard is for managers" in main(client.get("/dashboard?lang=en").text)


def test_sign_out_needs_the_token_and_ends_the_session(app: FastAPI, client: TestClient) -> None:
    sign_in(client, person(app, "agent"))
    forged = client.post("/signout", data={"csrf": "forged"})
    assert forged.status_code == 403
    # A form from an earlier session (signed in again in another tab) is asked again, with a
    # button carrying this session's token, instead of a page about the dashboard.
    assert 'id="signout-confirm"' in forged.text and csrf_of(client) in forged.text
    assert "dashboard" not in main(forged.text).lower()
    # (These lines had slipped under `main`'s return, where they never ran.)
    assert client.get("/v1/customers/cust-ana").status_code == 200
    secret = client.cookies.get(SESSION_COOKIE) or ""
    client.post("/signout", data={"csrf": csrf_of(client)})
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, secret)
    assert client.get("/v1/customers/cust-ana").status_code == 401


def main(page: str) -> str:
    """What a page shows in its main element (its scripts carry every message besides)."""
    return page.split("<main", 1)[1].split("</main>", 1)[0]


def test_language_from_the_browser_switchable_and_remembered(client: TestClient) -> None:
    assert (
        "Iniciar sesión"
        in client.get("/signin", headers={"Accept-Language": "es-ES,es;q=0.9"}).text
    )
    assert "Sign in" in client.get("/signin", headers={"Accept-Language": "fr, en;q=0.5"}).text
    assert "Iniciar sesión" in client.get("/signin", params={"lang": "es"}).text
    assert "Iniciar sesión" in client.get("/signin").text  # the cookie remembers the choice


def test_the_spanish_console_names_channels_and_reads_spanish_summaries(
    app: FastAPI, client: TestClient
) -> None:
    sign_in(client, person(app, "agent"))
    page = client.get("/console", params={"lang": "es"}).text
    assert '<option value="phone">teléfono</option>' in page
    assert '<option value="mobile_app">app móvil</option>' in page
    assert '"channel_email": "correo"' in page  # the scripts' table names the icons and chips
    english = client.get("/console", params={"lang": "en"}).text
    assert '<option value="mobile_app">mobile app</option>' in english
    # What console.js asks for in Spanish: each timeline line worded in Spanish.
    timeline = client.get("/v1/customers/cust-ana/timeline", params={"lang": "es", "limit": 2})
    assert [e["summary"] for e in timeline.json()["entries"]] == [
        "CSAT 2/5 · delivery · “Too slow”",
        "Llamada finalizada · support_line · 7m12s de conversación · agente ana",
    ]


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    page = client.get("/signin")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "style=" not in page.text


@pytest.mark.parametrize(
    "typed, kind",
    [
        ("garcia@", "email"),
        ("600 111", "phone"),
        ("a-1", "order"),
        ("cust-an", "customer_id"),
        ("Ana García", "email"),  # a name as people write it, found in the email that spells it
        ("GARCÍA ana", "email"),
    ],
)
def test_search_finds_a_customer_by_what_an_agent_types(
    app: FastAPI, client: TestClient, typed: str, kind: str
) -> None:
    sign_in(client, person(app, "agent"))
    found = client.get("/v1/customers/search", params={"q": typed}).json()["customers"]
    assert [c["customer_id"] for c in found] == ["cust-ana"]
    assert kind in {m["kind"] for m in found[0]["matched"]}


@pytest.mark.parametrize(
    "typed", ["María José Núñez Ortega", "maria jose nunez", "NÚÑEZ ORTEGA", "mª josé"]
)
def test_search_finds_a_customer_by_the_name_a_touchpoint_carried(
    app: FastAPI, warehouse: ChdbWarehouse, client: TestClient, typed: str
) -> None:
    """The name a shop's order or a Segment identify carries (`payload.attributes`), as written
    or without its accents, whatever the email says (hers names nobody)."""
    order = {"order_id": "B-7", "amount": "10.00", "currency": "EUR", "items": 1}
    named = {**order, "attributes": {"first_name": "María José", "last_name": "Núñez Ortega"}}
    customer = {"customer_id": "cust-mj", "email": "mjno77@example.net"}
    store(warehouse, "acme", [{"channel": "web", "type": "order.placed", "touchpoint": "checkout",
                               "customer": customer, "payload": named}])  # fmt: skip
    sign_in(client, person(app, "agent"))
    found = client.get("/v1/customers/search", params={"q": typed}).json()["customers"]
    assert [c["customer_id"] for c in found] == ["cust-mj"]
    # As the touchpoint wrote it, not as the search index folds it (`maria jose nunez ortega`).
    assert {"kind": "name", "value": "María José Núñez Ortega"} in [
        {k: m[k] for k in ("kind", "value")} for m in found[0]["matched"]
    ]


def test_a_search_result_is_dated_by_the_customers_last_touchpoint_not_the_match(
    app: FastAPI, warehouse: ChdbWarehouse, client: TestClient
) -> None:
    # A result said when what matched was last seen: "3 months ago" of a customer who called
    # yesterday from her phone (a browser review). Each touchpoint is a minute after the one before.
    first, second = {"customer_id": "cust-r1", "email": "rosa.marin@x.es"}, {
        "customer_id": "cust-r2", "email": "rosa.marin@y.es"}  # fmt: skip
    view = {"channel": "web", "type": "page.viewed", "payload": {"url": "https://shop.example/"}}
    call = {"channel": "phone", "type": "call.ended", "touchpoint": "line",
            "payload": {"agent": "ana", "talk_s": 50}}  # fmt: skip
    # Twenty more Rosas after those two, each seen once by her email (08:02 to 08:21); then her
    # call, the last touchpoint of all (08:22). The results were the 20 matches seen last, so
    # she was cut before they were dated (a review).
    others = [{**view, "customer": {"customer_id": f"cust-o{n:02d}",
                                    "email": f"rosa.marin{n:02d}@z.es"}} for n in range(20)]  # fmt: skip
    store(warehouse, "acme", [
        {**view, "customer": first},  # 08:00, her email
        {**view, "customer": second},  # 08:01, the other Rosa's email
        *others,
        {**call, "customer": {"customer_id": "cust-r1"}},  # 08:22, her call: no email
    ])  # fmt: skip
    sign_in(client, person(app, "agent"))
    found = client.get("/v1/customers/search", params={"q": "rosa.marin"}).json()["customers"]
    assert len(found) == 20
    assert (found[0]["customer_id"], found[0]["last_seen"][11:16]) == ("cust-r1", "08:22"), found
    assert found[0]["matched"] == [{"kind": "email", "value": "rosa.marin@x.es"}]
    assert [c["last_seen"][11:16] for c in found[1:4]] == ["08:21", "08:20", "08:19"]
    assert "cust-r2" not in [c["customer_id"] for c in found]  # seen last at 08:01: 21st


@pytest.mark.parametrize("typed", ["Ana Pérez", "600 999", "garcía@example.org"])
def test_search_needs_every_word_of_a_name(app: FastAPI, client: TestClient, typed: str) -> None:
    sign_in(client, person(app, "agent"))
    assert client.get("/v1/customers/search", params={"q": typed}).json()["customers"] == []


def test_search_refuses_a_one_letter_query(app: FastAPI, client: TestClient) -> None:
    sign_in(client, person(app, "agent"))
    answer = client.get("/v1/customers/search", params={"q": "a"})
    assert answer.status_code == 422 and answer.json()["error"]["code"]


def test_an_erasure_asked_by_a_person_records_their_account_id_not_their_email(
    app: FastAPI, client: TestClient
) -> None:
    # The erasure's event stays readable for ever (the record of who asked): it names the
    # admin by account id, so erasing must not itself keep a staff email in the log.
    log = MemoryLog(partitions=1)
    app.state.publisher, app.state.bucket_key = MemoryPublisher(log), b"k" * 32
    accounts: Accounts = app.state.accounts
    email = f"dpo-{uuid.uuid4().hex[:6]}@example.com"
    admin = accounts.create("acme", "admin", email, PASSWORD)
    sign_in(client, email)
    answer = client.post(
        "/v1/customers/cust-ana/erase",
        json={"reason": "GDPR request #4711"},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert answer.status_code == 202, answer.text
    [record] = log.poll(TOUCHPOINTS_TOPIC, "reader", 10, 0)
    stored = orjson.loads(record.value)
    assert stored["payload"]["actor"] == f"user:{admin.user_id}"
    assert email.encode() not in record.value and b"dpo-" not in record.value


def test_a_mistyped_page_address_is_a_page_saying_so_while_the_api_keeps_its_json(
    app: FastAPI, client: TestClient
) -> None:
    # A person typing `/dashbaord` was shown the API's JSON error (a browser review).
    # (The account store down, the page still shows, as if signed out: a review got a 500.)
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8", "accept-language": "es"}
    missing = client.get("/dashbaord", headers=browser)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "No hay ninguna página en esta dirección" in missing.text
    assert 'href="/console"' in missing.text
    sign_in(client, person(app, "agent"))
    english = client.get("/dashbaord", headers={**browser, "accept-language": "en"})
    assert english.status_code == 404 and "There is no page at this address" in english.text
    assert "Sign out" in english.text or "signout" in english.text  # the page of one signed in
    for path, headers in (("/v1/nothing-here", browser), ("/dashbaord", {})):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found", path


def test_a_session_that_ended_brings_the_person_back_where_they_were_once_signed_in(
    app: FastAPI, client: TestClient
) -> None:
    # An expired session sent the agent to a bare sign-in page, then to an empty console: the
    # customer on the call was lost (a browser review).
    away = client.get("/dashboard", follow_redirects=False)
    assert away.headers["location"] == "/signin?next=%2Fdashboard"
    was = "/console#customer=cust-ana"
    page = client.get(
        "/signin", params={"ended": "1", "next": was}, headers={"accept-language": "en"}
    )
    assert "Your session ended: sign in again to go back where you were." in page.text
    assert f'name="next" value="{was}"' in page.text
    email = person(app, "agent")
    fields = {"email": email, "csrf": form_token(page.text), "next": was}
    wrong = client.post("/signin", data={**fields, "password": "not it"}, follow_redirects=False)
    assert wrong.status_code == 401  # what was typed stays, and where to go
    assert f'value="{email}"' in wrong.text and f'name="next" value="{was}"' in wrong.text
    # Switching language on the way keeps where to go (a review: the link dropped it).
    assert 'href="?ended=1&amp;next=%2Fconsole%23customer%3Dcust-ana&amp;lang=es"' in page.text
    fields["csrf"] = form_token(wrong.text)
    done = client.post("/signin", data={**fields, "password": PASSWORD}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, was)
    # Signing out, then in again, is the console (not `next=/signout`, a POST-only page: 405).
    out = client.post("/signout", data={"csrf": csrf_of(client)}, follow_redirects=False)
    assert out.headers["location"] == "/signin"


@pytest.mark.parametrize(
    "elsewhere",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "evil",
        "/console\r\nX: y",
        "/signout",
        "/v1/customers/cust-ana/export",
        "/..//evil.example",
    ],
)
def test_signing_in_never_leads_to_another_site(
    app: FastAPI, client: TestClient, elsewhere: str
) -> None:
    page = client.get("/signin", params={"next": elsewhere})
    fields = {"email": person(app, "agent"), "password": PASSWORD, "csrf": form_token(page.text)}
    done = client.post("/signin", data={**fields, "next": elsewhere}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/console")


def test_pages_name_their_scripts_and_styles_by_their_content(client: TestClient) -> None:
    # Static files are cached for an hour: a browser ran a cached common.js beside a new
    # console.js once both changed (a browser test run across the change). Each address holds a
    # hash of the file's content, so a changed file is a new address, served as before.
    html = client.get("/signin").text
    addresses = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert addresses and all(re.search(r"\?v=[0-9a-f]{12}$", a) for a in addresses), addresses
    for address in addresses:
        served = client.get(address)
        assert served.status_code == 200, address
        assert "max-age=3600" in served.headers["cache-control"]

"""Unified customer history, end to end in one process: events posted over HTTP, filed by identity
resolution, projected into chdb, read through the query API; merged and split through the identity
API. The platform is `cem.bootstrap.build` with its real SQLite log and identity store."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.bootstrap import Platform, build
from cem.replay import replay
from cem.sealing import opener_for
from kernel.customer_key import split_key
from kernel.ports import FILINGS_TOPIC, Record
from kernel.sealing import opening_decode
from kernel.settings import IngestSettings
from tests.events import event

TENANT = "acme"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
PHONE, EMAIL, DEVICE = "+34 617 34 56 78", "Ana@Shop.es", "web-ana"
# Keys of each channel's identifier: a customer id is opaque, so a test looks its customer up by
# them (`Client.home`) and addresses it by either (the API reads a key as the identifier's holder).
PHONE_ID, EMAIL_ID, WEB_ID = "phone:+34617345678", "email:ana@shop.es", "anon:web-ana"


class Client:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = TestClient(platform.app)
        self.secrets = {
            role: platform.keys.create(TENANT, role)[1]
            for role in ("ingest", "agent", "manager", "admin")
        }

    def call(self, method: str, path: str, role: str = "agent", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.secrets[role]}"}
        return self.http.request(method, path, headers=headers, **kwargs)

    def post(self, *events: dict[str, Any]) -> list[str]:
        answer = self.call("POST", "/v1/events", "ingest", json={"events": list(events)})
        assert answer.status_code in (200, 202), answer.text
        self.settle()
        return [e["event_id"] for e in events]

    def home(self, key: str) -> str:
        """The id of the customer an identifier key (`email:ana@shop.es`) was filed under: the
        one holding it, whatever it was merged into since."""
        assert self.platform.identity is not None
        [holder] = self.platform.identity.holders_of(TENANT, *split_key(key))
        return holder

    def settle(self, timeout_s: float = 60.0, group: str | None = None) -> None:
        """Wait until every consumer group (or only `group`) has processed everything."""
        deadline = time.monotonic() + timeout_s
        while any(n for g, n in self.platform.lag().items() if group in (None, g)):
            assert time.monotonic() < deadline, f"still lagging: {self.platform.lag()}"
            time.sleep(0.05)

    def timeline(self, customer_id: str) -> list[str]:
        answer = self.call("GET", f"/v1/customers/{customer_id}/timeline", params={"limit": 500})
        assert answer.status_code == 200, answer.text
        return [entry["event_id"] for entry in answer.json()["entries"]]

    def profile(self, customer_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/v1/customers/{customer_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def merge(self, survivor: str, absorbed: str, role: str = "manager", **extra: Any) -> Any:
        body = {"survivor_id": survivor, "absorbed_id": absorbed, "reason": "same person", **extra}
        return self.call("POST", "/v1/customers/merge", role, json=body)

    def split(self, customer: str, absorbed: str) -> Any:
        body = {"absorbed_id": absorbed, "reason": "two people after all"}
        return self.call("POST", f"/v1/customers/{customer}/split", "manager", json=body)


def touch(
    type_: str,
    channel: str,
    customer: dict[str, Any],
    minutes: int,
    payload: dict[str, Any],
    **envelope: Any,
) -> dict[str, Any]:
    return event(type_, channel, customer, START + timedelta(minutes=minutes), payload, **envelope)


@pytest.fixture
def platform(tmp_path: Path, warehouse: ChdbWarehouse) -> Iterator[Platform]:
    settings = IngestSettings(data_dir=tmp_path / "data", identity="eventsourced")
    running = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    running.start()
    yield running
    stop_keeping_warehouse(running)  # the warehouse is the fixture's to drop


def stop_keeping_warehouse(running: Platform) -> None:
    """Stops a platform's runners and closes its log and identity store, but not its warehouse
    (`Platform.stop` closes that too), which whoever made it drops."""
    for runner in running.runners:
        runner.stop()
    running.log.close()
    if running.identity is not None:
        running.identity.close()


@pytest.fixture
def api(platform: Platform) -> Client:
    return Client(platform)


def newest_first(ids: list[str]) -> list[str]:
    return ids[::-1]  # every helper posts oldest first


@pytest.fixture
def ana(api: Client) -> dict[str, list[str]]:
    """One person on three channels, never sharing an identifier: three customers until merged."""
    call = {"phone": PHONE}
    phone = api.post(
        touch("call.answered", "phone", call, 0, {"agent": "bob"}, correlation_id="call-1",
              touchpoint="support_line"),
        touch("call.ended", "phone", call, 7, {"agent": "bob", "talk_s": 400},
              correlation_id="call-1", touchpoint="support_line"),
    )  # fmt: skip
    email = api.post(
        touch("email.opened", "email", {"email": EMAIL}, 20, {"message_id": "m-1"}),
        touch("survey.answered", "survey", {"email": EMAIL}, 30, {"kind": "csat", "score": 2},
              correlation_id="call-1", touchpoint="support_line"),
    )  # fmt: skip
    web = api.post(
        touch("page.viewed", "web", {"anonymous_id": DEVICE}, 40, {"url": "https://shop.es/"}),
        touch("order.placed", "web", {"anonymous_id": DEVICE}, 45,
              {"order_id": "o-1", "amount": "59.90", "currency": "EUR", "items": 1},
              touchpoint="checkout"),
    )  # fmt: skip
    someone_else = api.post(
        touch("page.viewed", "web", {"anonymous_id": "web-zoe"}, 41, {"url": "https://shop.es/"}),
    )
    return {"phone": phone, "email": email, "web": web, "other": someone_else}


def test_before_any_merge_each_channel_is_its_own_opaque_customer(
    api: Client, ana: dict[str, list[str]]
) -> None:
    ids = {api.home(key) for key in (PHONE_ID, EMAIL_ID, WEB_ID)}
    assert len(ids) == 3 and all(re.fullmatch("c_[a-z2-7]{26}", i) for i in ids)
    assert api.timeline(PHONE_ID) == newest_first(ana["phone"])
    assert api.timeline(EMAIL_ID) == newest_first(ana["email"])
    assert api.timeline(WEB_ID) == newest_first(ana["web"])
    assert api.profile(EMAIL_ID)["members"] == [api.home(EMAIL_ID)]


def test_an_agent_cannot_merge_and_a_preview_changes_nothing(
    api: Client, ana: dict[str, list[str]]
) -> None:
    email, phone = api.home(EMAIL_ID), api.home(PHONE_ID)
    refused = api.merge(EMAIL_ID, PHONE_ID, role="agent")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    preview = api.merge(EMAIL_ID, PHONE_ID, preview=True)
    assert preview.status_code == 200, preview.text
    assert preview.json()["members"] == [email, phone]
    impact = preview.json()["impact"]
    events = {side: impact[side]["events"] for side in ("survivor", "absorbed", "merged")}
    assert events == {
        "survivor": len(ana["email"]),
        "absorbed": len(ana["phone"]),
        "merged": len(ana["email"]) + len(ana["phone"]),
    }
    assert impact["merged"]["members"] == [email, phone]
    assert (impact["survivor"]["latest_csat"], impact["absorbed"]["latest_csat"]) == (2, None)
    assert (impact["merged"]["survey_responses"], impact["merged"]["latest_csat"]) == (1, 2)
    assert api.timeline(EMAIL_ID) == newest_first(ana["email"])


def test_a_merged_customer_shows_every_absorbed_customers_history(
    api: Client, ana: dict[str, list[str]]
) -> None:
    email = api.home(EMAIL_ID)
    for absorbed in (PHONE_ID, WEB_ID):
        answer = api.merge(EMAIL_ID, absorbed)
        assert answer.status_code == 200, answer.text
    everything = sorted(ana["phone"] + ana["email"] + ana["web"])
    assert sorted(api.timeline(EMAIL_ID)) == everything
    profile = api.profile(EMAIL_ID)
    assert profile["customer_id"] == email
    assert profile["members"][0] == email
    assert sorted(profile["members"][1:]) == sorted([api.home(WEB_ID), api.home(PHONE_ID)])
    assert profile["events"] == 6
    assert {c["channel"] for c in profile["channels"]} == {"phone", "email", "survey", "web"}
    assert profile["satisfaction"]["csat"]["score"] == 2
    assert profile["orders"]["by_currency"][0]["amount"] == "59.90"
    # Absorbed ids still answer, for the survivor.
    for absorbed in (PHONE_ID, WEB_ID):
        assert sorted(api.timeline(absorbed)) == everything
        assert api.profile(absorbed)["customer_id"] == email
    found = api.call("GET", "/v1/customers", params={"phone": "+34617345678"}).json()
    assert [c["customer_id"] for c in found["customers"]] == [email]
    assert ana["other"][0] not in everything


def test_events_after_a_merge_join_the_history_and_a_split_restores_each_side(
    api: Client, ana: dict[str, list[str]]
) -> None:
    phone = api.home(PHONE_ID)
    assert api.merge(EMAIL_ID, PHONE_ID).status_code == 200
    later_call = api.post(touch("call.ended", "phone", {"phone": PHONE}, 90, {"talk_s": 60}))
    assert later_call[0] in api.timeline(EMAIL_ID)
    split = api.split(EMAIL_ID, phone)
    assert split.status_code == 200, split.text
    assert split.json()["absorbed_members"] == [phone]
    # Each side has exactly its own history back, with what was filed under it meanwhile.
    assert api.timeline(PHONE_ID) == newest_first(ana["phone"] + later_call)
    assert api.timeline(EMAIL_ID) == newest_first(ana["email"])
    assert api.profile(PHONE_ID)["customer_id"] == phone
    assert api.profile(EMAIL_ID)["satisfaction"]["csat"]["score"] == 2
    assert api.profile(PHONE_ID)["satisfaction"]["csat"] is None


def test_a_customer_stays_addressable_by_every_identifier_it_holds(api: Client) -> None:
    first = api.post(
        touch("page.viewed", "web", {"customer_id": "crm-42"}, 0, {"url": "https://s/"})
    )
    both = {"customer_id": "crm-42", "email": "luis@shop.es"}
    second = api.post(touch("order.placed", "web", both, 5,
                            {"order_id": "o-9", "amount": "10.00", "currency": "EUR"}))  # fmt: skip
    by_email = api.post(
        touch("email.opened", "email", {"email": "luis@shop.es"}, 9, {"message_id": "m-9"})
    )
    history = newest_first(first + second + by_email)
    assert api.timeline("crm-42") == history
    assert api.timeline("email:luis@shop.es") == history
    assert api.profile("email:luis@shop.es")["customer_id"] == "crm-42"
    assert api.call("GET", "/v1/customers/email:nobody@shop.es").status_code == 404


def test_both_consumers_and_a_replay_file_each_event_under_the_same_customer(
    api: Client, ana: dict[str, list[str]], platform: Platform, chdb_path: Path
) -> None:
    filed = {
        row["event_id"]: row["customer_id"]
        for row in platform.warehouse.select("SELECT event_id, customer_id FROM customer_timeline")
    }
    (survey,) = platform.warehouse.select("SELECT event_id, customer_id FROM survey_responses")
    assert filed[survey["event_id"]] == survey["customer_id"] == api.home(EMAIL_ID)
    again = replayed_tables(platform, chdb_path)["customer_timeline"]
    assert {(row["event_id"], row["customer_id"]) for row in again} == set(filed.items())


def test_a_replay_from_the_log_alone_rebuilds_the_live_tables_across_merges_and_splits(
    api: Client, ana: dict[str, list[str]], platform: Platform, chdb_path: Path
) -> None:
    assert api.merge(EMAIL_ID, PHONE_ID).status_code == 200
    assert api.merge(EMAIL_ID, WEB_ID).status_code == 200
    api.post(touch("call.ended", "phone", {"phone": PHONE}, 90, {"talk_s": 60}))
    api.post(touch("page.viewed", "web", {"anonymous_id": DEVICE}, 95, {"url": "https://s/"}))
    assert api.split(EMAIL_ID, api.home(PHONE_ID)).status_code == 200
    api.post(touch("survey.answered", "survey", {"phone": PHONE}, 99, {"kind": "nps", "score": 9}))
    live = tables(platform.warehouse)
    assert live["customer_timeline"] and live["survey_responses"]
    assert replayed_tables(platform, chdb_path) == live


def test_a_filing_redelivered_to_a_projection_counts_once(
    api: Client, ana: dict[str, list[str]], platform: Platform
) -> None:
    def profile() -> dict[str, Any]:
        body = api.profile(EMAIL_ID)
        body.get("value", {}).pop("as_of", None)  # the moment of the read
        return body

    before = profile()
    filings = platform.log.poll(FILINGS_TOPIC, f"again-{uuid.uuid4().hex}", 100_000, 0.0)
    platform.log.append(FILINGS_TOPIC, [Record(f.key, f.value, f.headers) for f in filings])
    api.settle()
    assert profile() == before
    assert api.timeline(EMAIL_ID) == newest_first(ana["email"])
    survey = platform.warehouse.select("SELECT event_id FROM survey_responses FINAL")
    assert len(survey) == 1


def tables(warehouse: ChdbWarehouse) -> dict[str, list[dict[str, Any]]]:
    """Every projected table's rows as a read sees them (one row per key: FINAL), in order."""
    names = [r["name"] for r in warehouse.select("SHOW TABLES") if r["name"] != "dead_letters"]
    return {name: sorted_rows(warehouse.select(f"SELECT * FROM {name} FINAL")) for name in names}


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: repr(sorted(row.items())))


def replayed_tables(platform: Platform, chdb_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table `cem replay` rebuilds from the log now (opening sealed records, the default,
    with keys of its own as the command's process has)."""
    rebuilt = ChdbWarehouse(chdb_path, database=f"r_{uuid.uuid4().hex[:12]}")
    opener = opener_for(platform.settings)
    try:
        replay(platform.log, rebuilt, platform.projections, decode_record=opening_decode(opener))
        return tables(rebuilt)
    finally:
        opener.close()
        rebuilt.drop_database()
        rebuilt.close()


def test_an_identifier_several_customers_hold_asks_which_one(api: Client) -> None:
    line = "+34 912 34 56 78"  # a household landline
    api.post(touch("call.ended", "phone", {"email": "dad@shop.es", "phone": line}, 0, {}))
    api.post(touch("call.ended", "phone", {"email": "kid@shop.es", "phone": line}, 5, {}))
    answer = api.call("GET", "/v1/customers/phone:+34912345678/timeline")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "ambiguous_customer"
    holders = sorted(api.home(key) for key in ("email:dad@shop.es", "email:kid@shop.es"))
    assert [d["message"] for d in error["details"]] == holders


def test_each_event_is_decoded_once_in_the_process(
    tmp_path: Path, warehouse: ChdbWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filing stage decodes a touchpoint; both projections take that event from the shared
    decoder when they read its filing (issue 14: decode a batch once per process)."""
    import kernel.processing
    import kernel.sealing

    decoded: list[object] = []
    real, real_parsed = kernel.sealing.decode, kernel.sealing.decode_parsed

    def counting(value: bytes) -> Any:
        decoded.append(value)
        return real(value)

    def counting_parsed(value: dict[str, Any]) -> Any:
        decoded.append(value)
        return real_parsed(value)

    # Every decode of the log's bytes goes through one of these: the shared decoder's, of a
    # clear record or of a sealed one once opened (sealing is the default), and the runner's.
    monkeypatch.setattr(kernel.sealing, "decode", counting)
    monkeypatch.setattr(kernel.sealing, "decode_parsed", counting_parsed)
    monkeypatch.setattr(kernel.processing, "decode", counting)
    settings = IngestSettings(data_dir=tmp_path / "data", identity="eventsourced")
    running = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    running.start()
    try:
        api = Client(running)
        ids = api.post(
            *(
                touch("page.viewed", "web", {"anonymous_id": "d-1"}, n, {"url": "https://s.es/"})
                for n in range(6)
            )
        )
        api.settle()
        assert len(api.timeline("anon:d-1")) == len(ids) == 6
        assert len(decoded) == 6
    finally:
        stop_keeping_warehouse(running)


def test_a_placeholder_phone_identity_ignores_is_no_identifier_nor_lookup_key(
    api: Client,
) -> None:
    """Review: two strangers' identifies with `+34 600 000 000` (a placeholder identity refuses)
    were both listed by a lookup of it, showed it on their profiles, and its key answered 409."""
    placeholder = "+34 600 000 000"
    for n, email in enumerate(("ph.a@shop.es", "ph.b@shop.es")):
        api.post(touch("call.ended", "phone", {"email": email, "phone": placeholder}, n, {}))
    found = api.call("GET", "/v1/customers", params={"phone": "+34600000000"})
    assert found.status_code == 200, found.text
    assert found.json()["customers"] == []
    profile = api.profile(api.home("email:ph.a@shop.es"))
    assert profile["identifiers"] == ["email:ph.a@shop.es"]
    [entry] = api.call("GET", f"/v1/customers/{profile['customer_id']}/timeline").json()["entries"]
    assert entry["identifiers"] == ["email:ph.a@shop.es"]
    assert api.call("GET", "/v1/customers/phone:+34600000000").status_code == 404


def test_a_phone_however_written_is_one_e164_identifier(api: Client) -> None:
    """Review: `(+34) 617-48-29-35` showed as `phone:34617482935` beside `phone:+34617482935`."""
    line = {"email": "lucia@shop.es"}
    api.post(
        touch("call.ended", "phone", {**line, "phone": "+34617482935"}, 0, {}),
        touch("message.received", "chat", {**line, "phone": "(+34) 617-48-29-35"}, 5, {}),
    )
    profile = api.profile(api.home("email:lucia@shop.es"))
    assert profile["identifiers"] == ["email:lucia@shop.es", "phone:+34617482935"]
    entries = api.call("GET", f"/v1/customers/{profile['customer_id']}/timeline").json()["entries"]
    assert [e["identifiers"] for e in entries] == [
        ["email:lucia@shop.es", "phone:+34617482935"]
    ] * 2
    found = api.call("GET", "/v1/customers", params={"phone": "617 48 29 35"}).json()
    assert [m["customer_id"] for m in found["customers"]] == [profile["customer_id"]]

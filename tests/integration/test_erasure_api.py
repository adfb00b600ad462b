"""`POST /v1/customers/{id}/erase` in one process (`cem.bootstrap.build`: the SQLite log, identity
store and key vault, chdb), with the log sealed (`CEM_SEAL_PERSONAL_DATA`) and without: the route's
answers and OpenAPI, what the filing stage's handler leaves live, and what a replay rebuilds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cem.adapters import sqlite_snapshot
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.bootstrap import Platform, build
from cem.erasure import ERASED_ROWS
from cem.replay import replay
from cem.runner import projection_runner
from cem.sealing import opener_for
from kernel.filings import FILING_STAGE, through_touchpoints
from kernel.ports import TOUCHPOINTS_TOPIC, Consumed
from kernel.sealing import opening_decode
from kernel.settings import IngestSettings
from kernel.shredding import sealed_key_id
from schemas.envelope import Event
from tests.integration.test_unified_history import (
    Client,
    stop_keeping_warehouse,
    tables,
    touch,
)
from tests.subject_export import open_export

EMAIL, PHONE = "lucia.perez@gmail.com", "+34 617 34 56 78"
OTHER = "bea.soto@yahoo.es"
WORDS, COMMENT = "mi pedido 4471 no ha llegado", "la entrega fue un desastre"
PROJECTIONS = "projections"  # the timeline's consumer group
SECRETS = ("lucia", "617345678", "617 34", "pedido 4471", "desastre")


@pytest.fixture(params=[True, False], ids=["sealed", "clear"])
def platform(
    request: pytest.FixtureRequest, tmp_path: Path, warehouse: ChdbWarehouse
) -> Iterator[Platform]:
    settings = IngestSettings(
        data_dir=tmp_path / "data", identity="eventsourced", seal_personal_data=request.param
    )
    running = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    running.start()
    yield running
    stop_keeping_warehouse(running)


@pytest.fixture
def api(platform: Platform) -> Client:
    return Client(platform)


def lucia(api: Client) -> tuple[str, dict[str, str]]:
    """Lucía's chat and survey answer, filed; her customer id and the events' ids."""
    chat, answer = api.post(
        touch("message.received", "chat", {"email": EMAIL, "phone": PHONE}, 0, {"text": WORDS}),
        touch("survey.answered", "survey", {"phone": PHONE}, 30,
              {"kind": "csat", "score": 2, "comment": COMMENT}),
    )  # fmt: skip
    return api.home(f"email:{EMAIL}"), {"chat": chat, "answer": answer}


def erase(api: Client, customer_id: str, role: str = "admin", **body: Any) -> Any:
    path = f"/v1/customers/{customer_id}/erase"
    return api.call("POST", path, role, content=orjson.dumps(body))


def replayed(platform: Platform, chdb_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table `cem replay` rebuilds from the log now, in a process that caches no key."""
    rebuilt = ChdbWarehouse(chdb_path, database=f"r_{uuid.uuid4().hex[:12]}")
    opener = opener_for(platform.settings)
    try:
        replay(platform.log, rebuilt, platform.projections, decode_record=opening_decode(opener))
        return tables(rebuilt)
    finally:
        opener.close()
        rebuilt.drop_database()
        rebuilt.close()


def test_the_route_checks_the_role_the_body_and_the_customer(api: Client) -> None:
    customer_id, _ = lucia(api)
    assert erase(api, customer_id, "manager", reason="GDPR").status_code == 403
    unauthenticated = api.http.post(f"/v1/customers/{customer_id}/erase", json={"reason": "x"})
    assert unauthenticated.status_code == 401
    missing = erase(api, customer_id)
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "invalid_request")
    assert erase(api, customer_id, reason="x", extra=1).status_code == 422
    path = f"/v1/customers/{customer_id}/erase"
    big = api.call("POST", path, "admin", content=b" " * 20_000)
    assert big.status_code == 413
    # The credential is judged before the body is read: a too-big body from a manager is a 403.
    assert api.call("POST", path, "manager", content=b" " * 20_000).status_code == 403
    assert api.http.post(path, content=b" " * 20_000).status_code == 401
    assert erase(api, "c_nobody", reason="GDPR").status_code == 404
    assert api.timeline(customer_id)  # nothing was erased by any of them


def test_the_openapi_document_lists_every_answer(api: Client) -> None:
    spec = api.http.get("/openapi.json").json()
    operation = spec["paths"]["/v1/customers/{customer_id}/erase"]["post"]
    assert set(operation["responses"]) == {
        "202", "400", "401", "403", "404", "409", "413", "422", "503"
    }  # fmt: skip
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["reason"]


def test_an_erased_customer_is_gone_live_and_its_export_says_so(
    api: Client, platform: Platform
) -> None:
    customer_id, _ = lucia(api)
    accepted = erase(api, customer_id, reason="GDPR art. 17 request #4711")
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert answer["customer_id"] == customer_id
    assert answer["log_sealed"] is platform.settings.seal_personal_data
    api.settle()
    assert api.timeline(customer_id) == [answer["event_id"]]  # the erasure's own entry only
    found = api.call("GET", "/v1/customers", params={"email": EMAIL})
    assert found.status_code == 200 and found.json()["customers"] == []
    again = erase(api, customer_id, reason="twice")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_erased")
    exported = api.call("GET", f"/v1/customers/{customer_id}/export", "admin")
    assert exported.status_code == 200, exported.text
    files, _ = open_export(exported.content)
    erasure = files["manifest"]["erasure"]
    assert files["manifest"]["erased"] is True
    assert (erasure["event_id"], erasure["reason"]) == (
        answer["event_id"],
        "GDPR art. 17 request #4711",
    )
    assert erasure["identity"] == {"members": 1, "identifiers": 2, "shared": 0}
    assert erasure["removed"]["customer_timeline"] == 2
    assert erasure["removed"]["survey_responses"] == 1
    assert files["identifiers"] == [] and files["survey_answers"] == []
    for secret in SECRETS:
        assert secret.encode() not in exported.content.lower(), secret


def test_the_preview_shows_the_group_and_the_erasure_takes_only_that_group(
    api: Client,
) -> None:
    customer_id, _ = lucia(api)
    api.post(touch("message.received", "chat", {"email": OTHER}, 60, {"text": "hola"}))
    bea = api.home(f"email:{OTHER}")
    merge = {"survivor_id": customer_id, "absorbed_id": bea, "reason": "one person, asked"}
    merged = api.call("POST", "/v1/customers/merge", "manager", json=merge)
    assert merged.status_code == 200, merged.text
    path = f"/v1/customers/{bea}/erasure"  # asked by the absorbed id: the group's preview
    assert api.call("GET", path, "manager").status_code == 403
    assert api.call("GET", "/v1/customers/c_nobody/erasure", "admin").status_code == 404
    preview = api.call("GET", path, "admin")
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert (shown["customer_id"], shown["erased"], shown["completed"]) == (
        customer_id,
        False,
        False,
    )
    members = {m["customer_id"]: m for m in shown["members"]}
    assert members[customer_id]["merge_reason"] is None
    assert members[bea]["merge_reason"] == "one person, asked"
    assert (members[customer_id]["events"], members[bea]["events"]) == (2, 1)
    assert {(i["kind"], i["value"], i["held_by"], i["key_destroyed"]) for i in
            shown["identifiers"]} == {
        ("email", "luciaperez@gmail.com", customer_id, True),  # as identity keeps it
        ("phone", "+34617345678", customer_id, True),
        ("email", OTHER, bea, True),
    }  # fmt: skip
    assert api.timeline(bea)  # nothing changed
    audit = api.call("GET", "/v1/audit/access", "admin").json()["entries"]
    assert [e["requested_id"] for e in audit if e["resource"] == "erasure_preview"] == [bea]
    # The group as the preview showed it, or no erasure: a stranger merged in since is not
    # erased with it unseen.
    stale = erase(api, customer_id, reason="GDPR", members=[customer_id])
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "group_changed")
    control = erase(api, customer_id, reason="GDPR", members=[customer_id, "c_x\nc_y"])
    assert control.status_code == 422, control.text  # ids as everywhere: no control characters
    accepted = erase(api, customer_id, reason="GDPR", members=[m["customer_id"] for m in
                                                                shown["members"]])  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    api.settle()
    after = api.call("GET", path, "admin").json()
    assert (after["erased"], after["completed"], after["identifiers"]) == (True, True, [])
    assert after["erasure_event_id"] == accepted.json()["event_id"]
    assert {m["customer_id"] for m in after["members"]} == {customer_id, bea}
    again = erase(api, customer_id, reason="again", members=[customer_id])
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_erased")


def test_a_replay_rebuilds_the_customer_anonymous_only_when_the_log_was_sealed(
    api: Client, platform: Platform, chdb_path: Path
) -> None:
    customer_id, ids = lucia(api)
    before = replayed(platform, chdb_path)
    assert erase(api, customer_id, reason="GDPR request").status_code == 202
    api.settle()
    after = replayed(platform, chdb_path)

    def hers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r.get("customer_id") == customer_id]

    # The anonymous facts are the same: the same events under the same customer, the same
    # answer with its score (the erasure adds its own entry).
    was = {r["event_id"]: r["type"] for r in hers(before["customer_timeline"])}
    now = {r["event_id"]: r["type"] for r in hers(after["customer_timeline"])}
    assert {k: v for k, v in now.items() if v != "customer.erased"} == was
    scores = {(r["event_id"], r["kind"], r["score"]) for r in after["survey_responses"]}
    assert (ids["answer"], "csat", 2) in scores
    text = orjson.dumps(after).lower()
    if platform.settings.seal_personal_data:
        for secret in SECRETS:
            assert secret.encode() not in text, secret
        [answer] = [r for r in after["survey_responses"] if r["event_id"] == ids["answer"]]
        assert answer["comment"] == ""
    else:  # the log holds the events in clear: a replay brings the personal fields back
        assert WORDS.encode() in text


def logged(platform: Platform, event_ids: set[str]) -> list[tuple[Any, Event]]:
    """These events' records on the log, each with the event a reader opens from it now."""
    decode = opening_decode(opener_for(platform.settings))
    chunks = sqlite_snapshot.log_records(
        platform.settings.data_dir / "log.sqlite", TOUCHPOINTS_TOPIC, 500
    )
    return [
        (r, decode(Consumed(TOUCHPOINTS_TOPIC, 0, 0, r.key, r.value, r.headers)))
        for chunk in chunks
        for r in chunk
        if orjson.loads(r.value)["event_id"] in event_ids
    ]


def test_the_logs_records_of_an_erased_customer_open_without_personal_data_when_sealed(
    api: Client, platform: Platform
) -> None:
    customer_id, ids = lucia(api)
    assert erase(api, customer_id, reason="GDPR request").status_code == 202
    api.settle()
    mine = logged(platform, set(ids.values()))
    assert len(mine) == 2
    for record, event in mine:
        if platform.settings.seal_personal_data:
            assert b"sealed" in record.value and b"lucia" not in record.value.lower()
            assert event.customer.email is None and event.customer.phone is None
        else:  # what the route's `log_sealed: false` warns of: the log still has her
            assert b"pedido 4471" in record.value or b"desastre" in record.value
            assert event.customer.phone is not None


def test_a_number_written_without_its_code_alone_is_erased_with_its_customer(
    api: Client, platform: Platform
) -> None:
    # Valentina calls from her Colombian mobile in full; then a chat carries only the number
    # written nationally (Colombian, Mexican or US?), which identity files under her. Erasing her
    # erases the chat too: it was sealed under the number's readings, which she carried.
    call, chat = api.post(
        touch("message.received", "chat", {"phone": "+57 316 951 3292"}, 0, {"text": "hola"}),
        touch("message.received", "chat", {"phone": "316 951 3292"}, 30, {"text": WORDS}),
    )
    customer_id = api.home("phone:+573169513292")
    assert set(api.timeline(customer_id)) == {call, chat}
    assert erase(api, customer_id, reason="GDPR request").status_code == 202
    api.settle()
    [(_, event)] = logged(platform, {chat})
    if platform.settings.seal_personal_data:
        assert event.customer.phone is None
        assert WORDS not in orjson.dumps(event.payload).decode()
    else:  # the log holds it in clear: what the route's `log_sealed: false` warns of
        assert event.customer.phone == "316 951 3292"


def test_a_live_customer_merged_into_an_erased_one_is_told_to_be_split_off_not_erased_already(
    api: Client, platform: Platform
) -> None:
    # Bea was merged into Lucía by mistake after Lucía's erasure: the erasure did not take her,
    # and her data is readable. Erasing Bea used to answer "erased already"; it names the way
    # out now, the preview lists her, and once split off she is erased on her own.
    customer_id, _ = lucia(api)
    assert erase(api, customer_id, reason="GDPR request").status_code == 202
    api.settle()
    [bea_event] = api.post(touch("message.received", "chat", {"email": "bea@x.es"}, 60, {}))
    bea = api.home("email:bea@x.es")
    merged = {"survivor_id": customer_id, "absorbed_id": bea, "reason": "same person (wrong)"}
    assert api.call("POST", "/v1/customers/merge", "admin", json=merged).status_code == 200
    refused = erase(api, bea, reason="GDPR request #2")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "merged_into_erased"
    assert f"/v1/customers/{customer_id}/split" in refused.json()["error"]["message"]
    preview = api.call("GET", f"/v1/customers/{bea}/erasure", "admin").json()
    assert preview["erased"] is True and preview["merged_since"] == [bea]
    split = {"absorbed_id": bea, "reason": "not her"}
    answer = api.call("POST", f"/v1/customers/{customer_id}/split", "admin", json=split)
    assert answer.status_code == 200, answer.text
    assert erase(api, bea, reason="GDPR request #2").status_code == 202
    api.settle()
    assert api.call("GET", f"/v1/customers/{bea}/erasure", "admin").json()["erased"] is True
    assert bea_event not in api.timeline(bea)


@pytest.fixture
def two_processes(tmp_path: Path, warehouse: ChdbWarehouse) -> Iterator[Platform]:
    """`cem up`'s default layout: the filing stage (and so the erasure's keys and identity) in
    a process of its own, which has no warehouse; this process projects and deletes the rows."""
    settings = IngestSettings(
        data_dir=tmp_path / "data", identity="eventsourced", seal_personal_data=True
    )
    running = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    running.start(filing_process=True)
    yield running
    assert running.filing_process is not None
    running.filing_process.stop()
    stop_keeping_warehouse(running)


def test_with_the_filing_process_the_main_process_deletes_the_erased_rows(
    two_processes: Platform, warehouse: ChdbWarehouse
) -> None:
    api = Client(two_processes)
    customer_id, ids = lucia(api)
    api.settle()
    assert set(api.timeline(customer_id)) == set(ids.values())
    accepted = erase(api, customer_id, reason="GDPR request")
    assert accepted.status_code == 202, accepted.text
    api.settle()  # the filing process erased; this process's `erased-rows` group deleted
    assert api.timeline(customer_id) == [accepted.json()["event_id"]]
    rows = tables(warehouse)
    hers = [r["event_id"] for r in rows["customer_timeline"] if r["customer_id"] == customer_id]
    assert hers == [accepted.json()["event_id"]]  # no replay: the rows are gone, not anonymous
    assert [r for r in rows["survey_responses"] if r["event_id"] == ids["answer"]] == []
    assert [r for r in rows["customer_identifiers"] if r["customer_id"] == customer_id] == []
    text = orjson.dumps(rows).lower()
    for secret in SECRETS:
        assert secret.encode() not in text, secret


def test_in_one_process_a_projection_behind_the_erasure_leaves_no_clear_row(
    api: Client, platform: Platform, warehouse: ChdbWarehouse
) -> None:
    # CEM_FILING_PROCESS=false: the timeline projection is behind when the erasure is filed.
    # Deleted by the filing stage at once, her rows would be inserted afterwards (in clear on a
    # clear log) when the projection caught up; the `erased-rows` group deletes them once it has.
    [behind] = [r for r in platform.runners if r.stage == PROJECTIONS]
    behind.stop()
    chat = touch("message.received", "chat", {"email": EMAIL}, 0, {"text": WORDS})
    answer = api.call("POST", "/v1/events", "ingest", json={"events": [chat]})
    assert answer.status_code in (200, 202), answer.text
    api.settle(group=FILING_STAGE)
    customer_id = api.home(f"email:{EMAIL}")
    accepted = erase(api, customer_id, reason="GDPR request")
    assert accepted.status_code == 202, accepted.text
    api.settle(group=FILING_STAGE)  # the erasure is carried out, its rows aside
    waited = platform.lag().get(ERASED_ROWS, 0)  # they wait for the projection behind
    caught_up = projection_runner(
        platform.log,
        platform.warehouse,
        next(p for p in platform.projections if p.name == PROJECTIONS),
        through_touchpoints(platform.decoder, TOUCHPOINTS_TOPIC),
    )
    platform.runners.append(caught_up)
    caught_up.start()
    api.settle()
    assert api.timeline(customer_id) == [accepted.json()["event_id"]]
    rows = tables(warehouse)
    assert [r for r in rows["customer_identifiers"] if r["customer_id"] == customer_id] == []
    text = orjson.dumps(rows).lower()
    for secret in SECRETS:
        assert secret.encode() not in text, secret
    assert waited
    exported = api.call("GET", f"/v1/customers/{customer_id}/export", "admin")
    files, _ = open_export(exported.content)
    assert files["manifest"]["erasure"]["removed"]["customer_timeline"] == 1


def test_with_the_filing_process_the_main_process_drops_the_destroyed_key_before_projecting(
    two_processes: Platform,
) -> None:
    """The filing process destroys an erased customer's keys in the vault; this process, which
    cached her key when it projected her events, drops it (and the events it opened with it)
    before its next projection batch, from the vault's destruction feed alone: its `erased-rows`
    group, which would also drop it on reading the erasure, is stopped here. Before, the key
    stayed in this process's cache for up to five minutes."""
    api = Client(two_processes)
    customer_id, ids = lucia(api)
    api.settle()
    records = two_processes.log.poll(TOUCHPOINTS_TOPIC, "probe", 500, 0.5)
    [chat] = [r for r in records if orjson.loads(r.value)["event_id"] == ids["chat"]]
    sealed = orjson.loads(chat.value)
    tenant, key_id = sealed["tenant_id"], sealed_key_id(sealed)
    assert key_id is not None
    opener = two_processes.decoder.opener
    assert opener is not None and opener.cache.get(tenant, key_id) is not None
    assert two_processes.decoder(chat).customer.email == EMAIL  # opened once, kept decoded
    [deleting] = [r for r in two_processes.runners if r.stage == ERASED_ROWS]
    deleting.stop()
    accepted = erase(api, customer_id, reason="GDPR request")
    assert accepted.status_code == 202, accepted.text
    api.settle(group=FILING_STAGE)  # the other process destroyed her keys
    api.settle(group=PROJECTIONS)  # this one projected the erasure's filing
    assert opener.cache.get(tenant, key_id) is None
    assert two_processes.decoder(chat).customer.email is None

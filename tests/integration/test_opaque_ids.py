"""Customer ids carry no personal data, end to end on the embedded platform: a demo population's
history is posted over HTTP, filed by identity and projected into chdb; then every customer id of
every table, and every key and header of every topic in the SQLite log, is searched for the
input's emails and phone numbers. (Touchpoint bodies hold them by design: issue 11's
crypto-shredding is about those.) Customers are found by looking their identifiers up."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest

from cem import cli
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.sqlite_log import SqliteLog
from cem.bootstrap import Platform, build
from cem.demo import Population, history
from cem.migrate_ids import migrate
from cem.platform_keys import shared_bucket_key
from cem.sealing import opener_for
from kernel.customer_key import customer_key
from kernel.partitioning import partition_key, touchpoint_key
from kernel.ports import Record
from kernel.sealing import decode_opened
from kernel.settings import CoreSettings, IngestSettings
from schemas.envelope import Event
from schemas.validate import accept, encode
from tests.integration import test_unified_history as unified
from tests.integration.test_unified_history import TENANT, Client, stop_keeping_warehouse, touch

OPAQUE = re.compile(r"c_[a-z2-7]{26}")
BATCH = 500

# The embedded platform with identity on, and its client: test_unified_history's fixtures.
platform, api = unified.platform, unified.api


@pytest.fixture
def demo(api: Client) -> tuple[Client, Population]:
    population = Population.generate(Random(5), 60)
    events = [e for e in history(population, Random(6), datetime.now(UTC), 20)]
    for start in range(0, len(events), BATCH):
        api.post(*events[start : start + BATCH])
    return api, population


def needles(population: Population) -> set[str]:
    """What would give a person away: each email, and each phone as written (E.164), without
    its `+` and as its national digits."""
    found: set[str] = set()
    for customer in population.customers:
        if customer.email:
            found |= {customer.email.lower(), customer.email.split("@")[0].lower()}
        if customer.phone:
            digits = customer.phone.lstrip("+")
            found |= {customer.phone, digits, digits[-9:]}
    return {n for n in found if len(n) >= 6}  # a 5-letter local part would match anything


def leaks(texts: set[str], population: Population) -> set[tuple[str, str]]:
    lowered = {t: t.lower() for t in texts}
    return {(t, n) for n in needles(population) for t, low in lowered.items() if n in low}


def customer_ids(warehouse: ChdbWarehouse) -> set[str]:
    """Every customer id any table holds, in a column named after one."""
    columns = warehouse.select(
        "SELECT table, name FROM system.columns WHERE database = currentDatabase() "
        "AND (name = 'customer_id' OR name LIKE 'member%' OR name LIKE '%customer_id')"
    )
    found: set[str] = set()
    for column in columns:
        sql = f"SELECT DISTINCT toString({column['name']}) AS id FROM {column['table']}"
        found |= {row["id"] for row in warehouse.select(sql)}
    return found


def log_keys_and_headers(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "log.sqlite") as db:
        rows = db.execute("SELECT topic, key, headers FROM records").fetchall()
    assert {topic for topic, _, _ in rows} >= {"touchpoints", "filings"}
    return {bytes(part).decode("utf-8", "replace") for row in rows for part in row[1:] if part}


def test_no_customer_id_topic_key_or_header_holds_an_email_or_phone(
    demo: tuple[Client, Population], platform: Platform, tmp_path: Path
) -> None:
    api, population = demo
    # The search finds what the readable ids held (`acme/email:…`, `phone:+34…`):
    sample = next(c for c in population.customers if c.email and c.phone)
    assert leaks({f"acme/email:{sample.email}", f"phone:{sample.phone}"}, population)
    ids = customer_ids(platform.warehouse)
    assert len(ids) >= 30  # the demo's customers were filed
    assert leaks(ids, population) == set()
    # Every id is opaque, or the explicit customer id the demo's own systems sent.
    sent = {c.customer_id for c in population.customers if c.customer_id}
    assert all(OPAQUE.fullmatch(i) or i in sent for i in ids - {""}), ids - sent
    assert any(OPAQUE.fullmatch(i) for i in ids)
    assert leaks(log_keys_and_headers(tmp_path / "data"), population) == set()
    # A touchpoint's key is its customer key's bucket under the platform's bucket key, so whoever
    # reads the topic cannot compute a guessed email's bucket (an unkeyed hash's) to look for it.
    with sqlite3.connect(tmp_path / "data" / "log.sqlite") as db:
        rows = db.execute("SELECT key, value FROM records WHERE topic = 'touchpoints'").fetchall()
    events = opened(platform.settings.data_dir, [value for _, value in rows])
    by_customer = {
        (e.tenant_id, customer_key(e.customer)): bytes(k)
        for (k, _), e in zip(rows, events, strict=True)
    }
    assert len(by_customer) >= 30
    assert all(
        key == touchpoint_key(platform.bucket_key, tenant, customer)
        for (tenant, customer), key in by_customer.items()
    )
    unkeyed = sum(key == _unkeyed_bucket(*customer) for customer, key in by_customer.items())
    assert unkeyed < len(by_customer) / 10  # ~1 in 65,536 each by chance


def opened(data_dir: Path, values: list[bytes]) -> list[Event]:
    """The stored events, opened with the data directory's keys (personal data is sealed by
    default)."""
    opener = opener_for(CoreSettings(data_dir=data_dir))
    try:
        return [decode_opened(bytes(value), opener) for value in values]
    finally:
        opener.close()


def _unkeyed_bucket(tenant: str, customer: str) -> bytes:
    """The bucket of the release before keyed buckets: anyone could compute it."""
    return partition_key(tenant, hashlib.sha256(customer.encode()).digest()[:2].hex())


def test_a_customer_is_found_by_looking_its_email_up_and_addressed_by_its_opaque_id(
    demo: tuple[Client, Population],
) -> None:
    api, population = demo
    customer = next(c for c in population.customers if c.email and not c.customer_id)
    answer = api.call("GET", "/v1/customers", params={"email": customer.email})
    assert answer.status_code == 200, answer.text
    [found] = answer.json()["customers"]
    assert OPAQUE.fullmatch(found["customer_id"])
    profile: dict[str, Any] = api.profile(found["customer_id"])  # the URL holds the opaque id
    assert f"email:{customer.email.lower()}" in {i.lower() for i in profile["identifiers"]}
    # A key typed as an identifier is looked up, for old links: the same customer.
    assert api.profile(f"email:{customer.email}")["customer_id"] == profile["customer_id"]


# --- migrating a data directory of readable ids ---------------------------------------------------
def readable_keys(data_dir: Path) -> None:
    """Key the touchpoints as ingest did when ids were readable (`acme/email:ana@shop.es`)."""
    with sqlite3.connect(data_dir / "log.sqlite") as db:
        rows = db.execute("SELECT rowid, value FROM records WHERE topic = 'touchpoints'")
        found = rows.fetchall()
        for (rowid, _), event in zip(found, opened(data_dir, [v for _, v in found]), strict=True):
            key = f"{event.tenant_id}/{customer_key(event.customer)}".encode()
            db.execute("UPDATE records SET key = ? WHERE rowid = ?", (key, rowid))


def test_migrate_ids_refiles_a_data_directory_under_the_same_opaque_ids(
    api: Client, platform: Platform, tmp_path: Path, chdb_path: Path
) -> None:
    customers = ({"email": "Ana@Shop.es"}, {"phone": "+34 617 34 56 78"}, {"anonymous_id": "d-1"})
    posted = [
        api.post(*(touch("page.viewed", "web", c, n, {"url": "https://s.es/"}) for n in range(3)))
        for c in customers
    ]
    keys = ("email:ana@shop.es", "phone:+34617345678", "anon:d-1")
    before = {key: (api.home(key), sorted(api.timeline(key))) for key in keys}
    old = tmp_path / "data"
    readable_keys(old)
    with sqlite3.connect(old / "log.sqlite") as db:
        assert db.execute("SELECT count(*) FROM records WHERE key LIKE '%ana@shop.es'").fetchone()

    # One merge by hand, among registrations, links and filings made by the resolver.
    assert platform.identity is not None
    ana, phone = before["email:ana@shop.es"][0], before["phone:+34617345678"][0]
    platform.identity.merge(TENANT, ana, phone, "same person", "user:ops")
    files = _contents(old)

    new = tmp_path / "migrated"
    done = migrate(old, new)
    assert (done.touchpoints, done.undecodable) == (9, 0)
    assert done.hand_made == {"merges": 1}
    assert _contents(old) == files  # the old directory is only read
    warehouse = ChdbWarehouse(chdb_path, database=f"m_{uuid.uuid4().hex[:12]}")
    settings = IngestSettings(data_dir=new, identity="eventsourced")
    migrated = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    # The platform key was copied: the bucket key, like the id key, is the old platform's.
    assert migrated.bucket_key == platform.bucket_key
    migrated.start()
    try:
        again = Client(migrated)
        again.settle()
        after = {key: (again.home(key), sorted(again.timeline(key))) for key in keys}
    finally:
        stop_keeping_warehouse(migrated)
        warehouse.drop_database()
        warehouse.close()
    # Same platform key, same first identifiers: the same opaque ids, the same histories.
    assert after == before
    assert sorted(e for ids in posted for e in ids) == sorted(
        e for _, t in after.values() for e in t
    )
    assert all(OPAQUE.fullmatch(customer_id) for customer_id, _ in after.values())
    with sqlite3.connect(new / "log.sqlite") as db:
        rows = db.execute("SELECT key, headers FROM records").fetchall()
        touchpoints = db.execute("SELECT key, value FROM records WHERE topic='touchpoints'")
        rekeyed = touchpoints.fetchall()
    assert not any(b"shop.es" in key or b"617345678" in key for key, _ in rows)
    # Re-keyed as the migrated platform's ingest keys new touchpoints (its bucket key).
    assert [key for key, _ in rekeyed] == [
        touchpoint_key(migrated.bucket_key, TENANT, customer_key(event.customer))
        for event in opened(new, [value for _, value in rekeyed])
    ]


def test_an_alert_action_is_filed_with_the_opaque_customer_it_is_about(
    api: Client, platform: Platform
) -> None:
    answer = {"kind": "csat", "score": 1}
    [survey] = api.post(touch("survey.answered", "survey", {"email": "eva@shop.es"}, 0, answer))
    eva = api.home("email:eva@shop.es")
    found = api.call("GET", "/v1/alerts", params={"customer_id": eva}).json()["alerts"]
    [alert] = [a for a in found if a["event_id"] == survey]
    path = f"/v1/alerts/{alert['alert_id']}/resolve"
    acted = api.call("POST", path, "manager", json={"note": "called back"})
    assert acted.status_code == 200, acted.text
    api.settle()
    assert acted.json()["event_id"] in api.timeline(eva)
    filed = api.call("GET", f"/v1/events/{acted.json()['event_id']}").json()
    assert filed["customer_id"] == eva  # not a new customer named after the id it was sent
    # Its record is keyed as the ingest keys touchpoints: a bucket under the platform's key.
    records = platform.log.poll("touchpoints", "action-keys", 10_000, 0)
    [(key, stored)] = [
        (r.key, e)
        for r, e in zip(
            records, opened(platform.settings.data_dir, [r.value for r in records]), strict=True
        )
        if str(e.event_id) == acted.json()["event_id"]
    ]
    expected = touchpoint_key(platform.bucket_key, TENANT, customer_key(stored.customer))
    assert key == expected


def test_the_migrate_ids_command_copies_and_rekeys_the_touchpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    log = SqliteLog(old / "log.sqlite")
    sent = touch("page.viewed", "web", {"email": "ana@shop.es"}, 0, {"url": "https://s.es/"})
    stored, _ = accept(sent, "acme", datetime.now(UTC))
    readable = Record(b"acme/email:ana@shop.es", encode(stored), (("tenant_id", b"acme"),))
    log.append("touchpoints", [readable, Record(b"acme/x", b"\x00garbage", ())])
    log.close()
    assert cli.main(["migrate-ids", "--data-dir", str(old), "--into", str(new)]) == 0
    said = capsys.readouterr().out
    assert "copied 2 touchpoints" in said and "1 of them do not decode" in said
    with sqlite3.connect(new / "log.sqlite") as db:
        keys = sorted(k for (k,) in db.execute("SELECT key FROM records WHERE topic='touchpoints'"))
    # Keyed with the bucket key `cem up --data-dir NEW` ingests with. The undecodable record's
    # key is bucketed too: it held the readable customer key.
    bucket_key = shared_bucket_key(IngestSettings(data_dir=new))
    assert keys == sorted(
        [
            touchpoint_key(bucket_key, "acme", "email:ana@shop.es"),
            touchpoint_key(bucket_key, "acme", "x"),
        ]
    )
    assert cli.main(["migrate-ids", "--data-dir", str(old), "--into", str(new)]) == 1  # exists


def _contents(directory: Path) -> dict[str, bytes]:
    """Every file's bytes; not SQLite's shared-memory index (-shm) nor an empty -wal file (a
    reader creates them), nor the directory's lock."""
    return {
        p.name: data
        for p in directory.iterdir()
        if p.is_file() and not p.name.endswith(("-shm", ".lock"))
        if (data := p.read_bytes()) or not p.name.endswith("-wal")
    }

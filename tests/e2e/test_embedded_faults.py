"""Faults of the embedded deployment, driven from outside like an operator would (F11, F13).

These tests stop and SIGKILL their deployment, so they run on a private one, not the session's.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.deployments import (
    LIVE_DATABASE,
    TENANT_A,
    TENANT_B,
    Api,
    EmbeddedDeployment,
    new_tag,
    story,
    survey,
)
from tests.e2e.test_fcr_and_drift import a_csat_drop, drift_alerts
from tests.events import event, iso

pytestmark = pytest.mark.slow

PROCESSED_WITHIN_S = 120.0
ACKED = ("accepted", "duplicate")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDeployment]:
    running = EmbeddedDeployment(tmp_path_factory.mktemp("faults") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def api(embedded: EmbeddedDeployment) -> Iterator[Api]:
    if not embedded.running:  # a failed test may have left it stopped
        embedded.start()
    client = Api(embedded.base_url)
    yield client
    client.close()


# --- F11 --------------------------------------------------------------------------------------
class Poster(threading.Thread):
    """A client posting batches as fast as it is answered, until the server goes away.

    It records every event id the server acknowledged (a 2xx item result) and keeps the batches
    whose fate it does not know (no answer, or not a 2xx), to retry them as a real client would.
    """

    def __init__(self, url: str, key: str, customers: list[str], batch_size: int = 50) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.customers, self.batch_size = url, key, customers, batch_size
        self.rng = random.Random()
        self.submitted: dict[str, str] = {}  # event id -> customer id
        self.acked: set[str] = set()
        self.unanswered: list[list[dict[str, Any]]] = []
        self.batches_acked = 0

    def _event(self, at: datetime) -> dict[str, Any]:
        customer = self.rng.choice(self.customers)
        body = event("page.viewed", "web", {"customer_id": customer}, at, {"url": "https://s/p"})
        self.submitted[body["event_id"]] = customer
        return body

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        start = datetime.now(UTC) - timedelta(hours=1)
        with httpx.Client(base_url=self.url, timeout=30.0, headers=headers) as http:
            while True:
                offset = timedelta(milliseconds=len(self.submitted))
                batch = [self._event(start + offset) for _ in range(self.batch_size)]
                try:
                    response = http.post("/v1/events", json={"events": batch})
                except httpx.HTTPError:
                    self.unanswered.append(batch)
                    return
                if response.status_code != 200:
                    self.unanswered.append(batch)
                    return
                results = response.json()["results"]
                self.acked |= {r["event_id"] for r in results if r["status"] in ACKED}
                self.batches_acked += 1


def stored_counts(api: Api, key: str, customers: list[str]) -> Counter[str]:
    """How many times each event id shows on the customers' timelines."""
    seen: Counter[str] = Counter()
    for customer in customers:
        entries = api.timeline(key, customer, limit=500)
        seen.update(e["event_id"] for e in entries)
        profile = api.profile(key, customer)
        if entries:
            assert profile.json()["events"] == len(entries), customer
    return seen


def kill_while_posting(embedded: EmbeddedDeployment, poster: Poster) -> None:
    poster.start()
    deadline = time.monotonic() + 120
    while poster.batches_acked < 3 and poster.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert poster.batches_acked >= 3, "the poster never got going"
    time.sleep(random.uniform(0, 0.3))  # land anywhere in a request
    embedded.kill()
    poster.join(60)
    assert not poster.is_alive()


def test_f11_sigkill_during_ingest_loses_and_duplicates_nothing_acknowledged(
    embedded: EmbeddedDeployment, api: Api
) -> None:
    ingest, agent = embedded.key(TENANT_A, "ingest"), embedded.key(TENANT_A, "agent")
    customers = [f"f11-{new_tag()}" for _ in range(8)]
    submitted: dict[str, str] = {}
    for _round in range(2):
        poster = Poster(embedded.base_url, ingest, customers)
        kill_while_posting(embedded, poster)
        embedded.start()
        embedded.wait_processed(PROCESSED_WITHIN_S)
        submitted |= poster.submitted

        seen = stored_counts(api, agent, customers)
        assert poster.acked, "nothing was acknowledged before the kill"
        assert {i for i in poster.acked if seen[i] != 1} == set(), "acked but not stored once"
        assert {i for i, n in seen.items() if n != 1} == set(), "stored more than once"
        assert set(seen) <= set(submitted), "stored but never sent"

        # The client retries what it got no answer for: each item is new or a duplicate.
        for batch in poster.unanswered:
            results = api.post_ok(ingest, batch)["results"]
            assert {r["status"] for r in results} <= set(ACKED), results
        embedded.wait_processed(PROCESSED_WITHIN_S)
        assert stored_counts(api, agent, customers) == Counter(set(submitted))


# --- F13 --------------------------------------------------------------------------------------
def post_traffic(api: Api, embedded: EmbeddedDeployment, start: datetime) -> list[str]:
    """A varied mix for both tenants: stories, out-of-order arrival, a duplicate, a conflict and
    rejections. Returns the tags (customer ids are `cust-<tag>`)."""
    tags = [new_tag() for _ in range(4)]
    for tenant, tag in zip((TENANT_A, TENANT_A, TENANT_A, TENANT_B), tags, strict=True):
        ingest = embedded.key(tenant, "ingest")
        events = story({"customer_id": f"cust-{tag}", "email": f"{tag}@mercado.es"}, tag, start)
        if tag == tags[1]:
            for one in reversed(events):
                api.post_ok(ingest, one)
        else:
            api.post_ok(ingest, events)
        api.post_ok(ingest, events[:2])  # duplicates
        conflict = {**events[-1], "payload": {"kind": "csat", "score": 1}}
        assert api.post(ingest, conflict).status_code == 409
    extra = [
        survey({"customer_id": f"cust-{tags[0]}"}, kind, score, start, f"line-{tags[0]}")
        for kind, score in (("nps", 9), ("nps", 4), ("ces", 7), ("ces", 3), ("csat", 1))
    ]
    extra.append(survey({"customer_id": f"cust-{tags[0]}"}, "csat", 9, start, "x"))  # rejected
    assert api.post_ok(embedded.key(TENANT_A, "ingest"), extra)["rejected"] == 1
    return tags


def what_users_see(
    api: Api, embedded: EmbeddedDeployment, tags: list[str], start: datetime
) -> dict[str, Any]:
    window = {"since": iso(start - timedelta(days=2)), "until": iso(start + timedelta(days=2))}
    seen: dict[str, Any] = {}
    for tenant in (TENANT_A, TENANT_B):
        agent, manager = embedded.key(tenant, "agent"), embedded.key(tenant, "manager")
        for tag in tags:
            customer_id = f"cust-{tag}"
            seen[f"{tenant} timeline {tag}"] = api.timeline(agent, customer_id)
            profile = api.profile(agent, customer_id).json()
            profile.get("value", {}).pop("as_of", None)  # the moment of the read
            seen[f"{tenant} profile {tag}"] = profile
            seen[f"{tenant} lookup {tag}"] = api.get(
                "/v1/customers", agent, email=f"{tag}@mercado.es"
            ).json()
        for bucket in ("hour", "day"):
            seen[f"{tenant} satisfaction {bucket}"] = api.get(
                "/v1/satisfaction/touchpoints", manager, bucket=bucket, **window
            ).json()
        seen[f"{tenant} alerts"] = api.get("/v1/alerts", agent, limit=1000).json()
        fcr = api.get("/v1/service/fcr", manager, bucket="day", **window).json()
        fcr.pop("as_of")  # the moment of the read; the figures are the log's
        seen[f"{tenant} fcr"] = fcr
    return seen


def resolve_one_alert(api: Api, embedded: EmbeddedDeployment, customer_id: str) -> str:
    manager = embedded.key(TENANT_A, "manager")
    alert = api.get("/v1/alerts", manager, customer_id=customer_id).json()["alerts"][0]
    path = f"/v1/alerts/{alert['alert_id']}/resolve"
    assert api.command(manager, path, {"note": "called back"}).status_code == 200
    return str(alert["alert_id"])


def resolve_the_drift_alert(api: Api, embedded: EmbeddedDeployment, touchpoint: str) -> str:
    manager = embedded.key(TENANT_A, "manager")
    [alert] = drift_alerts(api, manager, touchpoint)
    path = f"/v1/alerts/{alert['alert_id']}/resolve"
    assert api.command(manager, path, {"note": "rota fixed"}).status_code == 200
    return str(alert["alert_id"])


def test_f13_replay_into_fresh_tables_gives_identical_results(
    embedded: EmbeddedDeployment, api: Api
) -> None:
    start = (datetime.now(UTC) - timedelta(hours=12)).replace(microsecond=0)
    tags = post_traffic(api, embedded, start)
    desk, drop, _ = a_csat_drop(new_tag())  # a touchpoint's drift alert, evaluated on read
    api.post_ok(embedded.key(TENANT_A, "ingest"), drop)
    embedded.wait_processed(PROCESSED_WITHIN_S)
    resolved = resolve_one_alert(api, embedded, f"cust-{tags[0]}")
    drift = resolve_the_drift_alert(api, embedded, desk)
    embedded.wait_processed(PROCESSED_WITHIN_S)
    live = what_users_see(api, embedded, tags, start)
    assert len(live[f"{TENANT_A} alerts"]["alerts"]) >= 3
    statuses = {a["alert_id"]: a["status"] for a in live[f"{TENANT_A} alerts"]["alerts"]}
    assert statuses[resolved] == "resolved"  # a manager's action is on the log: replayed too
    assert statuses[drift] == "resolved"  # a drift alert's too, though it has no customer
    assert live[f"{TENANT_B} timeline {tags[3]}"], "tenant B's traffic was not stored"
    assert live[f"{TENANT_A} fcr"]["buckets"], "no contacts in the FCR figures"

    embedded.stop()
    try:
        embedded.replay("fresh")
        live_tables = embedded.table_rows(LIVE_DATABASE)
        replayed_tables = embedded.table_rows("fresh")
        assert sorted(replayed_tables) == sorted(live_tables)
        for table, rows in live_tables.items():
            assert replayed_tables[table] == rows, table
        with embedded.serve_database("fresh") as url:
            replayed_api = Api(url)
            replayed = what_users_see(replayed_api, embedded, tags, start)
            replayed_api.close()
    finally:
        embedded.start()
    assert replayed == live

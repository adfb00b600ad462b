"""Faults of the distributed deployment on the real engines, driven from outside (F01, F02).

The broker is the session's: it is SIGKILLed and restarted here, and always left running and
healthy for the tests after this one. The deployment is the package's `distributed_deployment`
(the only one a broker can hold, see `tests.e2e.distributed`); its processes are not touched,
they must ride out the broker's restarts on their own.

Processor kills, rebalances and ClickHouse outages (F03, F04, F05, F08) are run against the
workers directly in `tests/integration/test_faust_workers.py`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import selected_kinds
from tests.e2e.deployments import TENANT_A, Api, new_tag
from tests.e2e.distributed import WORKERS, DistributedDeployment
from tests.engines import Engines
from tests.events import event

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kafka,
    pytest.mark.clickhouse,
    pytest.mark.postgres,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        "distributed" not in selected_kinds(), reason="CEM_E2E_DEPLOYMENTS leaves it out"
    ),
]

BROKER_KILLS = 2
DOWN_S = 4.0
ACKED_BEFORE_KILL = 400  # events acked before a kill, and again after each restart
MAX_EVENTS = 3000
BATCH = 25
PACE_S = 0.2  # between batches: ~125 events/s at most, the suite stays lean
RETRY_AFTER_CAP_S = 1.0  # honour Retry-After, but keep the test short
F01_BOUND_S = 15.0  # a 503 comes within the publish timeout (3 s) plus the claims' round trips
WAIT_S = 120.0
ACKED = ("accepted", "duplicate")


@dataclass
class Answer:
    """One response the client got: when, after how long, and what it said."""

    at: float
    took_s: float
    status: int
    accepted: int = 0
    retry_after: str | None = None


class Client(threading.Thread):
    """A channel system posting batches to the ingest at a steady pace until told to stop.

    It retries a batch until it gets a 2xx (after a 503 or 429 it waits as Retry-After says, and
    after no answer at all briefly), so it ends with every batch it made answered. It records
    every event id the ingest acknowledged (a 2xx item result) and every answer.
    """

    def __init__(self, url: str, key: str, customers: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.customers = url, key, customers
        self.stop = threading.Event()
        self.submitted: set[str] = set()
        self.acked: set[str] = set()
        self.answers: list[Answer] = []
        self.failures: list[str] = []
        self.rng = random.Random()
        self.start_at = datetime.now(UTC) - timedelta(hours=2)

    def new_batch(self) -> list[dict[str, Any]]:
        batch = []
        for _ in range(BATCH):
            customer = {"customer_id": self.rng.choice(self.customers)}
            at = self.start_at + timedelta(milliseconds=len(self.submitted))
            sent = event("page.viewed", "web", customer, at, {"url": "https://shop.example/p"})
            self.submitted.add(sent["event_id"])
            batch.append(sent)
        return batch

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30.0) as http:
            while not self.stop.is_set() and len(self.submitted) < MAX_EVENTS:
                self.post_until_acked(http, self.new_batch())
                time.sleep(PACE_S)

    def post_until_acked(self, http: httpx.Client, batch: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + 2 * WAIT_S
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = http.post("/v1/events", json={"events": batch})
            except httpx.HTTPError:  # no answer: the batch's fate is unknown, so send it again
                time.sleep(0.2)
                continue
            if self.record(response, started):
                return
        self.failures.append(f"a batch was not acknowledged within {2 * WAIT_S}s")

    def record(self, response: httpx.Response, started: float) -> bool:
        """Note the answer; True once the batch is acknowledged."""
        now = time.monotonic()
        answer = Answer(now, now - started, response.status_code)
        self.answers.append(answer)
        if response.status_code in (200, 202):
            results = response.json()["results"]
            done = [r["event_id"] for r in results if r["status"] in ACKED]
            answer.accepted = sum(r["status"] == "accepted" for r in results)
            self.acked.update(done)
            if len(done) != len(results):
                self.failures.append(f"items not acknowledged: {response.text[:500]}")
            return True
        if response.status_code in (429, 503):
            answer.retry_after = response.headers.get("retry-after")
            time.sleep(min(float(answer.retry_after or 1), RETRY_AFTER_CAP_S))
            return False
        self.failures.append(f"unexpected {response.status_code}: {response.text[:500]}")
        return True


@dataclass
class Outage:
    """When the broker was down: from its SIGKILL until its restart began."""

    killed_at: float
    restarting_at: float = 0.0


class Broker:
    """The session's broker, for SIGKILL and restart; remembers whether it is down."""

    def __init__(self, engines: Engines) -> None:
        self.engines, self.down = engines, False

    def kill(self) -> None:
        self.engines.kill("kafka")
        self.down = True

    def restart(self) -> None:
        self.engines.restart("kafka")  # returns once the broker is registered and unfenced
        self.down = False


@pytest.fixture
def broker(engines: Engines) -> Iterator[Broker]:
    """The broker, left running and healthy for later tests whatever happened in this one."""
    engines.endpoint("kafka")
    bouncer = Broker(engines)
    yield bouncer
    if bouncer.down:
        bouncer.restart()


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s}s: {what}")


def stored_event_ids(api: Api, key: str, customers: list[str]) -> Counter[str]:
    """Every event id the query API shows in the customers' timelines, with how often."""
    seen: Counter[str] = Counter()
    for customer in customers:
        seen.update(e["event_id"] for e in api.timeline(key, customer, limit=500))
    return seen


def bounce_broker(broker: Broker, client: Client) -> Outage:
    """SIGKILL the broker under load, keep it down a while, restart it, and wait until events
    are acknowledged again."""
    wait_for(lambda: len(client.acked) >= ACKED_BEFORE_KILL, WAIT_S, "acks before the kill")
    broker.kill()
    outage = Outage(time.monotonic())
    unavailable = len([a for a in client.answers if a.status == 503])
    time.sleep(DOWN_S)
    wait_for(
        lambda: len([a for a in client.answers if a.status == 503]) > unavailable,
        F01_BOUND_S,
        "a 503 while the broker is down",
    )
    outage.restarting_at = time.monotonic()
    broker.restart()
    acked = len(client.acked)
    wait_for(lambda: len(client.acked) >= acked + ACKED_BEFORE_KILL, WAIT_S, "acks after restart")
    return outage


def answers_during(client: Client, outage: Outage) -> list[Answer]:
    # A request acked just before the SIGKILL may be answered a moment after it.
    return [a for a in client.answers if outage.killed_at + 1.0 < a.at < outage.restarting_at]


def test_every_acked_event_is_stored_once_across_broker_kills_under_load(
    distributed_deployment: DistributedDeployment, broker: Broker
) -> None:
    deployment = distributed_deployment
    tag = new_tag()
    customers = [f"cust-{tag}-{i}" for i in range(20)]
    client = Client(deployment.ingest_url, deployment.key(TENANT_A, "ingest"), customers)
    client.start()
    try:
        outages = [bounce_broker(broker, client) for _ in range(BROKER_KILLS)]
    finally:
        client.stop.set()
        client.join(2 * WAIT_S + 30)
    assert not client.is_alive(), "the client is still waiting for an acknowledgement"
    assert client.failures == []

    for outage in outages:  # F01: nothing acked without the broker; 503 + Retry-After in time
        during = answers_during(client, outage)
        refused = [a for a in during if a.status == 503]
        assert [a for a in during if a.accepted] == []
        assert refused and all(a.retry_after for a in refused), during
        assert max(a.took_s for a in refused) < F01_BOUND_S, refused
    deployment.wait_processed(WAIT_S)

    api = Api(deployment.base_url, deployment.ingest_url)
    try:
        stored = stored_event_ids(api, deployment.key(TENANT_A, "agent"), customers)
    finally:
        api.close()
    assert len(client.acked) >= (BROKER_KILLS + 1) * ACKED_BEFORE_KILL
    assert sorted(client.acked - set(stored)) == []  # F02: nothing acked is lost
    assert [e for e, n in stored.items() if n > 1] == []  # ... or shown twice
    assert set(stored) <= client.submitted
    for service in WORKERS:  # the workers rode out the restarts and still answer their probe
        assert deployment.running(service)
        health = deployment.health(service)
        assert (health.status_code, health.json()) == (200, {"status": "ok", "service": service})
        ready = httpx.get(f"{deployment.urls[service]}/ready", timeout=5.0)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "checks": {}})
    # The query API publishes erasures and alert actions: its readiness reports Kafka too (not
    # gating on it: its reads do not need it).
    ready = httpx.get(f"{deployment.base_url}/ready", timeout=5.0)
    assert ready.status_code == 200 and ready.json()["checks"]["kafka"] == "ok", ready.text

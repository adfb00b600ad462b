"""The traffic driver against a small ingest served on 127.0.0.1 by uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from random import Random
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cem.demo import Population, history
from cem.simulate import (
    SimulationError,
    SimulationReport,
    live_traffic,
    post_history,
    retry_after_s,
    simulate,
)
from schemas.validate import InvalidEvent, accept

KEY = "sk-test-demo"


@dataclass
class Ingest:
    """What the test server stored and how it should misbehave next."""

    stored: dict[str, str] = field(default_factory=dict)  # event_id -> fingerprint
    requests: int = 0
    batches: list[list[str]] = field(default_factory=list)  # event ids of each request
    # Answers to give before handling requests normally: (status, Retry-After, store first?)
    script: list[tuple[int, str | None, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.stored.clear()
            self.batches.clear()
            self.script.clear()
            self.requests = 0

    def handle(self, events: list[Any]) -> dict[str, Any]:
        results = [self.one(i, raw) for i, raw in enumerate(events)]
        counts = Counter(r["status"] for r in results)
        return {"results": results, "accepted": counts["accepted"]}

    def one(self, index: int, raw: Any) -> dict[str, Any]:
        try:
            event, fingerprint = accept(raw, "demo", datetime.now(UTC))
        except InvalidEvent as exc:
            return {
                "index": index,
                "status": "rejected",
                "errors": [v.as_dict() for v in exc.violations],
            }
        known = self.stored.get(str(event.event_id))
        if known is None:
            self.stored[str(event.event_id)] = fingerprint
            return {"index": index, "status": "accepted"}
        return {"index": index, "status": "duplicate" if known == fingerprint else "conflict"}


def make_app(ingest: Ingest) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/events")
    async def events(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"error": {"code": "unauthorized"}}, status_code=401)
        body = await request.json()
        with ingest.lock:
            ingest.requests += 1
            ingest.batches.append([e.get("event_id") for e in body["events"]])
            if ingest.script:
                status, retry_after, store_first = ingest.script.pop(0)
                if store_first:  # stored, but the answer is lost: the client cannot tell
                    ingest.handle(body["events"])
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                return JSONResponse(
                    {"error": {"code": "busy"}}, status_code=status, headers=headers
                )
            return JSONResponse(ingest.handle(body["events"]))

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Ingest]]:
    ingest = Ingest()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(make_app(ingest), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", ingest
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def ingest(server: tuple[str, Ingest]) -> Ingest:
    server[1].reset()
    return server[1]


@pytest.fixture
def url(server: tuple[str, Ingest]) -> str:
    return server[0]


def demo_events(count: int, seed: int = 1) -> list[dict[str, Any]]:
    population = Population.generate(Random(seed), 60)
    events = list(history(population, Random(seed), datetime.now(UTC), 20))
    assert len(events) >= count
    return events[:count]


def settled(report: SimulationReport) -> int:
    return report.accepted + report.duplicates + report.conflicts + report.rejected + report.errors


# --- live traffic ---------------------------------------------------------------------------------
def test_simulate_sends_paced_live_traffic_that_is_stored(url: str, ingest: Ingest):
    report = simulate(url, KEY, rate=200, customers=40, duration_s=1.5, batch_size=25)
    assert report.sent > 0
    assert report.accepted == report.sent == len(ingest.stored)
    assert report.duplicates == report.rejected == report.errors == report.conflicts == 0
    assert 100 <= report.sent <= 450  # about 200/s for 1.5 s; generous for a loaded machine
    assert max(len(b) for b in ingest.batches) <= 25
    assert report.requests == ingest.requests == len(ingest.batches)
    assert len(report.latencies_ms) == report.requests
    assert report.as_dict()["latency_p50_ms"] > 0


def test_low_rates_send_small_batches_several_times_a_second(url: str, ingest: Ingest):
    report = simulate(url, KEY, rate=20, customers=10, duration_s=1.2, batch_size=100)
    assert report.accepted == report.sent == len(ingest.stored)
    # Batches of about rate/4, not one batch of 100 every 5 s (counted by size: how many went
    # in 1.2 s depends on how fast a loaded machine answers).
    assert max(len(b) for b in ingest.batches) <= 5
    assert 10 <= report.sent <= 60


def test_live_traffic_runs_until_stopped_from_another_thread(url: str, ingest: Ingest):
    population = Population.generate(Random(8), 30)
    stop = threading.Event()
    reports: list[SimulationReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(live_traffic(url, KEY, population, Random(8), 100, stop))
    )
    worker.start()
    deadline = time.monotonic() + 30
    while len(ingest.stored) <= 20:  # a second's traffic at least, however loaded the machine
        assert time.monotonic() < deadline, len(ingest.stored)
        time.sleep(0.05)
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    (report,) = reports
    assert report.sent > 20 and report.accepted == report.sent == len(ingest.stored)
    assert f"{report.accepted} accepted" in str(report)


def test_two_runs_with_one_seed_are_new_traffic_not_conflicts(url: str, ingest: Ingest):
    first = simulate(url, KEY, rate=100, customers=10, duration_s=0.5, seed=3)
    second = simulate(url, KEY, rate=100, customers=10, duration_s=0.5, seed=3)
    assert first.accepted == first.sent and second.accepted == second.sent
    assert second.conflicts == second.duplicates == 0
    assert len(ingest.stored) == first.sent + second.sent


def test_retry_after_429_and_503_resends_the_same_batch(url: str, ingest: Ingest):
    ingest.script += [(429, "0", False), (503, "0", False)]
    events = demo_events(250)
    report = post_history(url, KEY, events, batch_size=100)
    assert report.retries == 2
    assert report.requests == 5
    assert ingest.batches[0] == ingest.batches[1] == ingest.batches[2]  # the same batch, resent
    assert report.accepted == report.sent == 250 == len(ingest.stored)
    assert report.errors == 0


def test_a_retry_of_a_batch_stored_before_the_answer_was_lost_is_stored_once(
    url: str, ingest: Ingest
):
    ingest.script.append((503, "0", True))
    report = post_history(url, KEY, demo_events(100), batch_size=50)
    assert report.retries == 1
    assert report.duplicates == 50 and report.accepted == 50  # the resent batch dedups
    assert len(ingest.stored) == 100


def test_retry_after_is_waited_for(url: str, ingest: Ingest):
    ingest.script.append((429, "1", False))
    started = time.monotonic()
    report = post_history(url, KEY, demo_events(10), batch_size=10)
    assert time.monotonic() - started >= 0.9
    assert report.retries == 1 and report.accepted == 10


def test_simulate_stops_retrying_at_the_end_of_its_duration(url: str, ingest: Ingest):
    ingest.script += [(503, "30", False)] * 50
    started = time.monotonic()
    report = simulate(url, KEY, rate=50, customers=5, duration_s=1.0)
    assert time.monotonic() - started < 10  # not 30 s per Retry-After
    assert report.errors == report.sent > 0
    assert report.accepted == 0 and not ingest.stored


# --- seeding --------------------------------------------------------------------------------------
def test_post_history_counts_duplicates_and_rejections(url: str, ingest: Ingest):
    events = demo_events(120)
    first = post_history(url, KEY, events, batch_size=50)
    again = post_history(url, KEY, events, batch_size=50)
    assert first.accepted == 120 and first.requests == 3
    assert again.duplicates == 120 and again.accepted == 0

    bad_score = {**events[0], "event_id": "00000000-0000-4000-8000-000000000001",
                 "type": "survey.answered", "channel": "survey",
                 "payload": {"kind": "csat", "score": 11}}  # fmt: skip
    nobody = {**events[1], "event_id": "00000000-0000-4000-8000-000000000002", "customer": {}}
    changed = {**events[2], "touchpoint": "somewhere_else"}  # same id, different content
    mixed = post_history(url, KEY, [bad_score, nobody, changed, *demo_events(5, seed=2)])
    assert (mixed.rejected, mixed.conflicts, mixed.accepted) == (2, 1, 5)
    assert settled(mixed) == mixed.sent == 8
    assert any("payload.score" in str(p) for p in mixed.problems)


def test_post_history_streams_a_generator(url: str, ingest: Ingest):
    population = Population.generate(Random(4), 30)
    report = post_history(url, KEY, history(population, Random(4), datetime.now(UTC), 5), 200)
    assert report.sent == report.accepted == len(ingest.stored) > 0


def test_a_refused_key_stops_the_run(url: str, ingest: Ingest):
    with pytest.raises(SimulationError) as refused:
        post_history(url, "sk-wrong", demo_events(10))
    assert refused.value.report.errors == 10
    assert "401" in str(refused.value) and "sk-wrong" not in str(refused.value)
    assert not ingest.stored


def test_ctrl_c_ends_the_run_with_a_settled_report(url: str, ingest: Ingest):
    batches = []

    def interrupt_after_three(report: SimulationReport) -> None:
        batches.append(report.sent)
        if len(batches) == 3:
            raise KeyboardInterrupt

    report = simulate(url, KEY, rate=400, customers=10, duration_s=None, batch_size=20,
                      on_progress=interrupt_after_three)  # fmt: skip
    assert report.interrupted
    assert report.sent == 60 == settled(report) == report.accepted


def test_an_unreachable_server_counts_errors_within_the_duration():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    started = time.monotonic()
    report = simulate(f"http://127.0.0.1:{port}", KEY, rate=40, customers=5, duration_s=1.0)
    assert time.monotonic() - started < 10
    assert report.errors == report.sent > 0 and report.accepted == 0
    assert report.problems and "Connect" in report.problems[0]["error"]


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        simulate("ftp://127.0.0.1/", KEY, rate=10, customers=5, duration_s=1)
    with pytest.raises(ValueError):
        simulate("http://127.0.0.1:9", KEY, rate=0, customers=5, duration_s=1)
    with pytest.raises(ValueError):
        simulate("http://127.0.0.1:9", KEY, rate=10, customers=5, duration_s=0)
    with pytest.raises(ValueError):
        post_history("http://127.0.0.1:9", KEY, [], batch_size=0)


# --- Retry-After ---------------------------------------------------------------------------------
def test_retry_after_parses_seconds_and_http_dates():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_s("5") == 5.0
    assert retry_after_s("0.5") == 0.5
    assert retry_after_s("-3") == 0.0
    assert retry_after_s("86400") == 60.0  # capped
    assert retry_after_s(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=7), usegmt=True), now) == 0.0
    assert retry_after_s(None) is None
    assert retry_after_s("soon") is None
    assert retry_after_s("nan") is None

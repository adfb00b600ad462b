"""What the benches post and read, shared by every bench module (no bench module imports another
bench runner): demo events, posting a body until the log acknowledges it, a customer's newest event.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import Any, Protocol

import httpx

from cem import demo
from cem.simulate import retry_after_s

DEMO_DAYS = 180
DEMO_EVENTS_PER_CUSTOMER_DAY = 0.3  # what cem.demo yields on average (measured)


def demo_events(seed: int, count: int, customers: int | None = None) -> Iterator[dict[str, Any]]:
    """`count` raw demo events (producer format), recent ones, over as many passes as needed."""
    customers = customers or max(200, round(count / (DEMO_DAYS * DEMO_EVENTS_PER_CUSTOMER_DAY)))
    population = demo.Population.generate(Random(seed), customers)
    now = datetime.now(UTC)
    passes = (
        demo.history(population, Random(seed + n), now, DEMO_DAYS) for n in itertools.count(1)
    )
    return itertools.islice(itertools.chain.from_iterable(passes), count)


def post(http: httpx.Client, body: bytes) -> tuple[int, int]:
    """Post until the log acknowledges; (events accepted or duplicate, events rejected)."""
    for attempt in range(100):
        response = http.post("/v1/events", content=body)
        if response.status_code in (429, 503):
            wait = retry_after_s(response.headers.get("retry-after"))
            time.sleep(min(1.0, 0.1 if wait is None else wait) + attempt * 0.01)
            continue
        if response.status_code == 202:
            return 1, 0
        if response.status_code in (200, 422) and "submitted" in (data := response.json()):
            return data["accepted"] + data["duplicates"], data["rejected"] + data["conflicts"]
        raise RuntimeError(f"POST /v1/events: {response.status_code} {response.text[:500]}")
    raise RuntimeError("POST /v1/events kept answering 429/503")


def newest_event(http: httpx.Client, customer: str) -> str | None:
    response = http.get(f"/v1/customers/{customer}/timeline", params={"limit": 1})
    if response.status_code == 404:
        return None
    response.raise_for_status()
    entries = response.json()["entries"]
    return entries[0]["event_id"] if entries else None


class Client(Protocol):
    """What posting needs of a deployment: an HTTP client per role."""

    def client(self, role: str) -> httpx.Client: ...


Poster = Callable[[httpx.Client, bytes], tuple[int, int]]


@dataclass(frozen=True)
class Posted:
    """What concurrent clients posted: events accepted or duplicate, rejected, and the clock."""

    accepted: int
    rejected: int
    began: float  # perf_counter when every client was ready and the first post went
    acked: float  # perf_counter when the last client had its last answer


def post_concurrently(
    target: Client, shares: Sequence[Sequence[bytes]], poster: Poster = post
) -> Posted:
    """One ingest client per share posts its bodies in order, all starting together; a client's
    failure is raised once every client is done."""
    counts = [[0, 0] for _ in shares]
    errors: list[BaseException] = []
    start = threading.Barrier(len(shares) + 1)

    def run(index: int) -> None:
        try:
            with target.client("ingest") as http:
                start.wait()
                for body in shares[index]:
                    ok, bad = poster(http, body)
                    counts[index][0] += ok
                    counts[index][1] += bad
        except BaseException as exc:  # reported once the other clients are done
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(shares))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    acked = time.perf_counter()
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}") from errors[0]
    return Posted(sum(c[0] for c in counts), sum(c[1] for c in counts), began, acked)

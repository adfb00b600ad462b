"""What the agent console costs and how live it is, measured over HTTP against any deployment.

- **Console first page**: the calls the console makes when an agent opens a customer — the
  profile header (`GET /v1/customers/{id}`) and the first 50 timeline entries
  (`GET /v1/customers/{id}/timeline?limit=50`) — timed together, one page after the other.
- **SSE delivery**: `streams` consoles keep `GET /v1/customers/{id}/stream` open on as many
  customers while a load runs (the batched load; the sustained 50% phase); a prober posts single
  events to those customers at a modest rate and each latency runs from the ingest's 2xx to the
  message reaching its stream. Lost and repeated messages are counted too; `stop(since=)` counts
  only the events posted once the load began.

Numbers only; nothing here asserts a time (HOUSE_STYLE).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson

from bench.common import Latency

FIRST_PAGE = 50
OPEN_TIMEOUT_S = 120.0
# How long stopping waits for messages still in flight (the pipeline may lag under load).
DRAIN_S = 30.0


def first_page_latency(
    url: str, read_key: str, customer_id: str, count: int, warmup: int = 10
) -> dict[str, Any]:
    """Profile + first timeline page, sequentially, `count` times (after a warm-up)."""
    samples: list[float] = []
    headers = {"authorization": f"Bearer {read_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60.0) as http:
        entries = 0
        for n in range(warmup + count):
            started = time.perf_counter()
            profile = http.get(f"/v1/customers/{customer_id}")
            page = http.get(f"/v1/customers/{customer_id}/timeline", params={"limit": FIRST_PAGE})
            elapsed = time.perf_counter() - started
            profile.raise_for_status()
            page.raise_for_status()
            entries = len(page.json()["entries"])
            if n >= warmup:
                samples.append(elapsed)
    return asdict(Latency.of(samples)) | {"entries": entries}


@dataclass
class SseProbe:
    """Open streams on `streams` customers, post to them, time each delivery (module docstring).

    `make_event(customer_id)` returns a valid raw event of that customer with a fresh event id.
    Runs its streams on an event loop in a thread of its own, and its prober in another.
    """

    url: str  # the ingest's
    read_url: str  # the query API's (the same server when embedded)
    ingest_key: str
    read_key: str
    make_event: Callable[[str], dict[str, Any]]
    streams: int = 200
    rate: float = 10.0
    run: str = field(default_factory=lambda: f"sse-{uuid.uuid4().hex[:8]}")
    acked: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    repeated: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def customers(self) -> list[str]:
        return [f"{self.run}-{i}" for i in range(self.streams)]

    def start(self) -> None:
        """Create the customers and open every stream (`probe` then starts posting to them)."""
        self._post([self.make_event(c) for c in self.customers])
        self.loop_thread = threading.Thread(target=self._run_streams, daemon=True)
        self.loop_thread.start()
        if not self.ready.wait(OPEN_TIMEOUT_S) or self.errors:
            raise RuntimeError(f"streams did not open: {self.errors[:1]!r}")

    def probe(self) -> None:
        """Post an event to one of the streams' customers `rate` times a second, until `stop`."""
        self.prober = threading.Thread(target=self._probe, daemon=True)
        self.prober.start()

    def stop(self, since: float | None = None) -> dict[str, Any]:
        """Stop probing, let late messages arrive, close the streams; the figures, of the events
        acknowledged from `since` (a `time.perf_counter()`) on when given: the prober starts
        once the streams are open, which may be before the load it is to be timed under."""
        self.stopping.set()
        if prober := getattr(self, "prober", None):  # none when it never began probing
            prober.join()
        deadline = time.monotonic() + DRAIN_S
        while set(self.acked) - set(self.received) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.loop_thread.join(DRAIN_S + 5)
        acked = {e: at for e, at in self.acked.items() if since is None or at >= since}
        delays = [self.received[e] - at for e, at in acked.items() if e in self.received]
        if not delays:
            raise RuntimeError(f"no stream message arrived ({len(acked)} events posted)")
        missing = len(set(acked) - set(self.received))
        return asdict(Latency.of(delays)) | {
            "streams": self.streams,
            "posted": len(acked),
            "missing": missing,
            "repeated": self.repeated,
            "rate": self.rate,
        }

    # --- the prober ---------------------------------------------------------------------------
    def _post(self, events: list[dict[str, Any]]) -> None:
        headers = {"authorization": f"Bearer {self.ingest_key}", "content-type": "application/json"}
        body = orjson.dumps(events[0] if len(events) == 1 else {"events": events})
        response = httpx.post(f"{self.url}/v1/events", content=body, headers=headers, timeout=60)
        response.raise_for_status()

    def _probe(self) -> None:
        customers, n = self.customers, 0
        while not self.stopping.is_set():
            started = time.perf_counter()
            event = self.make_event(customers[n % len(customers)])
            try:
                self._post([event])
            except httpx.HTTPError as exc:  # counted as lost by nobody: not posted
                self.errors.append(exc)
            else:
                self.acked[event["event_id"]] = time.perf_counter()
            n += 1
            time.sleep(max(0.0, 1 / self.rate - (time.perf_counter() - started)))

    # --- the streams --------------------------------------------------------------------------
    def _run_streams(self) -> None:
        try:
            asyncio.run(self._streams())
        except BaseException as exc:
            self.errors.append(exc)
            self.ready.set()

    async def _streams(self) -> None:
        limits = httpx.Limits(max_connections=self.streams + 10)
        timeout = httpx.Timeout(60.0, read=None)
        headers = {"authorization": f"Bearer {self.read_key}"}
        async with httpx.AsyncClient(
            base_url=self.read_url, limits=limits, timeout=timeout, headers=headers
        ) as http:
            opened = [asyncio.Event() for _ in self.customers]
            tasks = [
                asyncio.create_task(self._listen(http, customer, event))
                for customer, event in zip(self.customers, opened, strict=True)
            ]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), OPEN_TIMEOUT_S)
            self.ready.set()
            while not (self.stopping.is_set() and self._drained()):
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _drained(self) -> bool:
        return not (set(self.acked) - set(self.received)) or self._drain_over()

    def _drain_over(self) -> bool:
        if not hasattr(self, "_drain_deadline"):
            self._drain_deadline = time.monotonic() + DRAIN_S
        return time.monotonic() > self._drain_deadline

    async def _listen(self, http: httpx.AsyncClient, customer: str, opened: asyncio.Event) -> None:
        path = f"/v1/customers/{customer}/stream"
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while True:  # the customer's first event may not be processed yet: 404 until it is
            async with http.stream("GET", path) as response:
                if response.status_code == 404 and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    continue
                response.raise_for_status()
                await self._read(response, opened)
                return

    async def _read(self, response: httpx.Response, opened: asyncio.Event) -> None:
        data: str | None = None
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                opened.set()  # the first id says the stream is live
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif not line and data is not None:
                self._record(orjson.loads(data)["event_id"])
                data = None

    def _record(self, event_id: str) -> None:
        if event_id in self.received:
            self.repeated += 1
        else:
            self.received[event_id] = time.perf_counter()

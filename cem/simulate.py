"""Drive a running instance with demo traffic over HTTP: paced live events, or a bulk seed.

Only the URL given is ever contacted: redirects are not followed and proxy settings from the
environment are ignored, so demo traffic cannot wander to another host.

What the ingest answers is read leniently, so that the driver works with any v1 ingest:
- 2xx with `{"results": [{"status": "accepted" | "duplicate" | "conflict" | "rejected"}, ...]}`
  (one result per submitted event), or with counts `{"accepted": n, "duplicates": n,
  "conflicts": n, "rejected": n}`; a 2xx without either counts every event as accepted;
- 400/413/415/422 reject the whole batch unless the body carries per-item `results`;
- 429/503 are retried after `Retry-After`; 401/403 stop the run (`SimulationError`);
- anything else, or a batch whose retries run out, counts its events as errors.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from itertools import islice
from random import Random
from typing import Any

import httpx
import orjson

from cem.demo import Population, live

EVENTS_PATH = "/v1/events"
MAX_RETRY_AFTER_S = 60.0  # a server asking for longer is treated as asking for this long
_REJECTING = frozenset({400, 413, 415, 422})
_BACKPRESSURE = frozenset({429, 503})
_STATUS_FIELD = {"accepted": "accepted", "duplicate": "duplicates", "conflict": "conflicts",
                 "rejected": "rejected", "invalid": "rejected"}  # fmt: skip
_COUNT_KEYS = {
    "accepted": ("accepted",), "duplicates": ("duplicates", "duplicate"),
    "conflicts": ("conflicts", "conflict"), "rejected": ("rejected", "invalid"),
}  # fmt: skip
Progress = Callable[["SimulationReport"], None]


class SimulationError(RuntimeError):
    """The run cannot go on (the key was refused); `report` holds what happened until then."""

    def __init__(self, message: str, report: SimulationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class SimulationReport:
    """What a run sent and how the server answered. Every sent event ends in exactly one of
    accepted, duplicates, conflicts, rejected or errors."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    errors: int = 0
    requests: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    problems: list[dict[str, Any]] = field(default_factory=list, repr=False)  # first few, to debug

    @property
    def rate(self) -> float:
        """Events sent per second over the run."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, quantile: float) -> float:
        """A request-latency quantile (nearest rank), 0 when nothing was sent."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]

    def as_dict(self) -> dict[str, Any]:
        counts = ("sent", "accepted", "duplicates", "conflicts", "rejected", "errors", "requests",
                  "retries", "interrupted")  # fmt: skip
        summary: dict[str, Any] = {name: getattr(self, name) for name in counts}
        summary.update(elapsed_s=round(self.elapsed_s, 3), events_per_s=round(self.rate, 1))
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
            summary[f"latency_{name}_ms"] = round(self.latency_ms(q), 1)
        return summary

    def __str__(self) -> str:
        return (
            f"sent {self.sent} events in {self.elapsed_s:.1f} s ({self.rate:.1f}/s): "
            f"{self.accepted} accepted, {self.duplicates} duplicates, {self.conflicts} conflicts, "
            f"{self.rejected} rejected, {self.errors} errors; {self.requests} requests, "
            f"{self.retries} retries; latency p50 {self.latency_ms(0.5):.1f} ms, "
            f"p99 {self.latency_ms(0.99):.1f} ms" + (" (interrupted)" if self.interrupted else "")
        )

    def note(self, problem: dict[str, Any]) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem)


def simulate(
    url: str,
    key: str,
    rate: float,
    customers: int,
    duration_s: float | None,
    batch_size: int = 100,
    seed: int = 0,
    *,
    on_progress: Progress | None = None,
) -> SimulationReport:
    """Send live demo traffic to `url` at about `rate` events/s until `duration_s` has passed
    (None: until Ctrl+C). The population is the seed's, so it matches a history seeded with the
    same seed; the events are fresh on every run, so a second run is new traffic, not conflicts.
    """
    _check(url, rate=rate, batch_size=batch_size, customers=customers, duration_s=duration_s)
    population = Population.generate(Random(seed), customers)
    with _Sender(url, key, patience_s=30.0, on_progress=on_progress) as sender:
        return sender.paced(_fresh_live(population, Random(seed)), rate, batch_size, duration_s)


def live_traffic(
    url: str,
    key: str,
    population: Population,
    rng: Random,
    rate: float,
    stop: threading.Event,
    batch_size: int = 100,
    *,
    on_progress: Progress | None = None,
) -> SimulationReport:
    """Live traffic of `population` at about `rate` events/s until `stop` is set (for a thread,
    e.g. `cem up --demo` after seeding the history)."""
    _check(url, rate=rate, batch_size=batch_size)
    with _Sender(url, key, patience_s=30.0, on_progress=on_progress, stop=stop) as sender:
        return sender.paced(_fresh_live(population, rng), rate, batch_size, None)


def _fresh_live(population: Population, rng: Random) -> Iterator[dict[str, Any]]:
    # Event ids come from the generator's rng. Mixing in fresh entropy makes a rerun with the same
    # seed new traffic; replaying the same ids at new times would be conflicts, not events.
    stream_rng = Random(f"{rng.getrandbits(64)}-{secrets.token_hex(8)}")
    return live(population, stream_rng, lambda: datetime.now(UTC))


def post_history(
    url: str,
    key: str,
    events: Iterable[dict[str, Any]],
    batch_size: int = 100,
    *,
    on_progress: Progress | None = None,
) -> SimulationReport:
    """Send `events` (e.g. `demo.history(...)`) as fast as the server takes them, in order."""
    _check(url, batch_size=batch_size)
    with _Sender(url, key, patience_s=300.0, on_progress=on_progress) as sender:
        return sender.bulk(iter(events), batch_size)


def _check(url: str, *, batch_size: int, rate: float = 1.0, customers: int = 1,
           duration_s: float | None = None) -> None:  # fmt: skip
    target = httpx.URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise ValueError(f"url must be an http(s) URL with a host, got {url!r}")
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError("rate must be a positive number of events per second")
    if batch_size < 1 or customers < 1:
        raise ValueError("batch_size and customers must be at least 1")
    if duration_s is not None and not duration_s > 0:
        raise ValueError("duration_s must be positive, or None to run until interrupted")


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


class _Sender:
    """One HTTP client, one batch at a time, with retries; fills the report."""

    def __init__(self, url: str, key: str, patience_s: float, on_progress: Progress | None,
                 stop: threading.Event | None = None) -> None:  # fmt: skip
        self.report = SimulationReport()
        self.patience_s, self.on_progress = patience_s, on_progress
        self.stop_at: float | None = None  # monotonic deadline of a run with a duration
        self.stop = stop or threading.Event()  # set by another thread to end the run
        self.client = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=httpx.Timeout(30.0, connect=5.0),
            follow_redirects=False,
            trust_env=False,
        )

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def paced(self, stream: Iterator[dict[str, Any]], rate: float, batch_size: int,
              duration_s: float | None) -> SimulationReport:  # fmt: skip
        # Small batches at low rates, so that live views update several times a second.
        per_batch = max(1, min(batch_size, math.ceil(rate / 4)))
        started = time.monotonic()
        self.stop_at = started + duration_s if duration_s is not None else None
        schedule = started  # when the next batch is due
        try:
            while not self._stopped():
                now = time.monotonic()
                if schedule > now:
                    self._sleep(min(schedule - now, self._remaining(now)))
                    continue
                if now - schedule > 1.0:
                    schedule = now  # fell behind a slow server: do not burst to catch up
                self.send(list(islice(stream, per_batch)))
                schedule += per_batch / rate
        except KeyboardInterrupt:
            self._interrupted()
        finally:
            self.report.elapsed_s = time.monotonic() - started
        return self.report

    def bulk(self, events: Iterator[dict[str, Any]], batch_size: int) -> SimulationReport:
        started = time.monotonic()
        try:
            while batch := list(islice(events, batch_size)):
                self.send(batch)
        except KeyboardInterrupt:
            self._interrupted()
        finally:
            self.report.elapsed_s = time.monotonic() - started
        return self.report

    def _interrupted(self) -> None:
        # A batch cut off mid-request may or may not be stored: count it as errors, so that every
        # sent event still ends in exactly one bucket.
        r = self.report
        r.interrupted = True
        r.errors += r.sent - (r.accepted + r.duplicates + r.conflicts + r.rejected + r.errors)

    def _stopped(self) -> bool:
        return self.stop.is_set() or (self.stop_at is not None and time.monotonic() >= self.stop_at)

    def _remaining(self, now: float) -> float:
        return math.inf if self.stop_at is None else max(0.0, self.stop_at - now)

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a sleep that ends early when the run is stopped

    def send(self, batch: list[dict[str, Any]]) -> None:
        """POST one batch until it gets an answer that is not backpressure, or patience runs out.

        Retrying the very same batch is safe: the server deduplicates by (tenant, event_id), so
        an attempt that was stored before its answer got lost comes back as duplicates, never as
        a second copy.
        """
        report, body = self.report, orjson.dumps({"events": batch})
        report.sent += len(batch)
        give_up_at, attempt = time.monotonic() + self.patience_s, 0
        while (wait := self._attempt(body, len(batch), attempt)) is not None:
            resume = time.monotonic() + wait
            ends = self.stop.is_set() or (self.stop_at is not None and resume > self.stop_at)
            if resume > give_up_at or ends:
                report.errors += len(batch)
                break
            report.retries += 1
            attempt += 1
            self._sleep(wait)
        if self.on_progress is not None:
            self.on_progress(report)

    def _attempt(self, body: bytes, size: int, attempt: int) -> float | None:
        """One request. Returns how long to wait before retrying, or None when the batch is done."""
        report, backoff = self.report, min(10.0, 0.25 * 2**attempt)
        started = time.perf_counter()
        try:
            response = self.client.post(EVENTS_PATH, content=body)
        except httpx.TransportError as exc:
            report.note({"error": type(exc).__name__, "message": str(exc)})
            return backoff
        finally:
            report.requests += 1
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        if status in _BACKPRESSURE:
            waited = retry_after_s(response.headers.get("retry-after"))
            # A server that keeps saying "retry now" is not hammered in a tight loop.
            return backoff if waited is None else max(waited, min(1.0, 0.05 * attempt))
        if status in (401, 403):
            report.errors += size
            raise SimulationError(f"the server refused the key (HTTP {status})", report)
        _tally(report, status, _json(response), size)
        return None


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None


def _tally(report: SimulationReport, status: int, body: Any, size: int) -> None:
    results = body.get("results") if isinstance(body, dict) else None
    if isinstance(results, list) and (200 <= status < 300 or status in _REJECTING):
        _tally_results(report, results, size)
    elif 200 <= status < 300:
        _tally_counts(report, body if isinstance(body, dict) else {}, size)
    elif status in _REJECTING:
        report.rejected += size
        report.note({"status": status, "body": body})
    else:
        report.errors += size
        report.note({"status": status, "body": body})


def _tally_results(report: SimulationReport, results: list[Any], size: int) -> None:
    for result in results[:size]:
        status = result.get("status") if isinstance(result, dict) else None
        name = _STATUS_FIELD.get(status) if isinstance(status, str) else None
        if name is None:
            report.errors += 1
            report.note({"result": result})
            continue
        setattr(report, name, getattr(report, name) + 1)
        if name == "rejected":
            report.note({"result": result})
    report.errors += size - min(size, len(results))  # events the server said nothing about


def _tally_counts(report: SimulationReport, body: dict[str, Any], size: int) -> None:
    found = {name: _count(body, keys) for name, keys in _COUNT_KEYS.items()}
    if all(n is None for n in found.values()):
        report.accepted += size  # a bare 2xx: the server took the batch
        return
    total = 0
    for name, n in found.items():
        take = min(n or 0, size - total)
        setattr(report, name, getattr(report, name) + take)
        total += take
    report.errors += size - total  # events the server said nothing about


def _count(body: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return max(0, value)
        if isinstance(value, list):
            return len(value)
    return None

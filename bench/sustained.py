"""The load a client makes, and what the pipeline does under it: the measurements both benches
share (`bench/embedded.py`, `bench/distributed.py`), driven only over HTTP.

- the realistic mix: the identity bench's population (`bench/identity/`), emails and phones as
  people write them, anonymous ids that later identify, devices households share; built apart
  from the identity rules and never tuned to them. Beside it the demo generator's events, every
  one with an explicit `customer_id` (identity's easy case);
- maximum end-to-end throughput: pre-encoded batches of 500 posted by a few clients as fast as
  the ingest takes them; the clock stops when every consumer group has committed them all (a
  group inserts a batch before it commits it, so nothing is left to show);
- sustained load at a fixed share (50%, 90%) of that maximum, paced, while probes post single
  events and time each from its 2xx until the query API shows it, and the backlog is sampled;
  freshness is taken *during* the load, not after it drains.

The pure helpers come first (tested in tests/unit/test_bench_sustained.py); nothing here asserts
a time (HOUSE_STYLE).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson

from bench.common import Latency, per_second
from bench.workload import post, post_concurrently

BATCH = 500  # events per request, as a client batches them
SHARES = (0.5, 0.9)  # of the measured maximum, for the sustained phases
PEOPLE_PER_EVENT = 1 / 5  # the identity population makes ~5.8 touchpoints per person
Lag = Callable[[], dict[str, int]]


class LiveStreams(Protocol):
    """Live streams timed during a phase (`bench.console.SseProbe`)."""

    def start(self) -> None: ...

    def probe(self) -> None: ...

    def stop(self, since: float | None = None) -> dict[str, Any]: ...


class HttpTarget(Protocol):
    """What the drivers need of a deployment: a client per role (`bench.embedded.Target`)."""

    def client(self, role: str) -> httpx.Client: ...


# --- pure helpers ----------------------------------------------------------------------------
def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def phase_rates(maximum: float, shares: Sequence[float] = SHARES) -> list[tuple[float, float]]:
    """(share, events per second) of each sustained phase; refuses a maximum that is no rate."""
    if not math.isfinite(maximum) or maximum <= 0:
        raise ValueError(f"no sustained phase without a measured maximum (got {maximum})")
    return [(share, share * maximum) for share in shares]


def schedule(rate: float, seconds: float, per_body: int) -> list[float]:
    """When each request is due, in seconds from the start, to post `rate` events/s for
    `seconds`; at least one request."""
    if rate <= 0 or per_body <= 0:
        raise ValueError("a schedule needs a positive rate and batch")
    count = max(1, round(rate * seconds / per_body))
    interval = per_body / rate
    return [n * interval for n in range(count)]


def backlog(lag: dict[str, int]) -> int:
    """The pipeline's backlog: the slowest consumer group's lag."""
    return max(lag.values(), default=0)


def lag_trend(samples: Sequence[tuple[float, int]], edge: float = 0.2) -> dict[str, Any]:
    """Whether the backlog grew over a phase: the mean of its first and last fifth, and the
    least-squares slope in events per second over every sample ((seconds, backlog) pairs).

    `grew` when the end exceeds the start by more than one batch and the slope is positive: a
    paced load leaves up to a batch in flight, which is not growth."""
    if not samples:
        return {"samples": 0, "start": None, "end": None, "max": None, "slope": None, "grew": None}
    width = max(1, int(len(samples) * edge))
    start = sum(v for _, v in samples[:width]) / width
    end = sum(v for _, v in samples[-width:]) / width
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread if spread else 0.0
    grew = end - start > BATCH and slope > 0
    return {
        "samples": n,
        "start": start,
        "end": end,
        "max": max(v for _, v in samples),
        "slope": slope,
        "grew": grew,
    }


def people_for(events: int) -> int:
    """How many people the identity population needs to make `events` touchpoints (a first
    guess; `identity_bodies` draws more while they make too few)."""
    return max(200, math.ceil(events * PEOPLE_PER_EVENT))


def encode_batches(events: Sequence[dict[str, Any]], per_body: int = BATCH) -> list[bytes]:
    """Request bodies as a client sends them: `{"events": [...]}` of `per_body` each."""
    return [
        orjson.dumps({"events": list(events[i : i + per_body])})
        for i in range(0, len(events), per_body)
    ]


# --- the mixes -------------------------------------------------------------------------------
def identity_events(events: int, seed: int) -> list[dict[str, Any]]:
    """The first `events` touchpoints, in time order, of an identity population of seed `seed`
    (as `bench.stages.identity_mix` draws them): more people while they make too few."""
    from bench.identity.population import generate

    people = people_for(events)
    touches = generate(people, seed)
    while len(touches) < events:
        people *= 2
        touches = generate(people, seed)
    return [touch.event for touch in touches[:events]]


def demo_mix_events(events: int, seed: int) -> list[dict[str, Any]]:
    """The demo generator's history (explicit `customer_id`s, clean E.164 phones)."""
    from bench.workload import demo_events

    return list(demo_events(seed, events))


MIXES: dict[str, Callable[[int, int], list[dict[str, Any]]]] = {
    "identity": identity_events,
    "demo": demo_mix_events,
}


# --- posting ---------------------------------------------------------------------------------
def _split(items: Sequence[Any], clients: int) -> list[list[Any]]:
    return [list(items[c::clients]) for c in range(clients)]


def wait_drained(lag: Lag, timeout_s: float = 1800.0, every_s: float = 0.2) -> float:
    """Until every consumer group has committed everything; the perf_counter when it had."""
    deadline = time.monotonic() + timeout_s
    while backlog(lag()) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the pipeline did not drain within {timeout_s:.0f} s")
        time.sleep(every_s)
    return time.perf_counter()


def maximum(
    target: HttpTarget, bodies: Sequence[bytes], events: int, lag: Lag, clients: int = 4
) -> dict[str, Any]:
    """As fast as the ingest takes them: `clients` threads post their share of the bodies; the
    clock runs from the first post until every group has committed every event."""
    wait_drained(lag)
    before = load_average()
    posted = post_concurrently(target, _split(bodies, clients))
    drained = wait_drained(lag)
    accepted, rejected, began, acked = posted.accepted, posted.rejected, posted.began, posted.acked
    return {
        "events": events,
        "accepted": accepted,
        "rejected": rejected,
        "requests": len(bodies),
        "clients": clients,
        "seconds": drained - began,
        "rate": per_second(accepted, drained - began),
        "acknowledged_seconds": acked - began,
        "acknowledged_rate": per_second(accepted, acked - began),
        "load_before": before,
        "load_after": load_average(),
    }


# --- sustained load with probes --------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """A single event posted for a customer of its own, then its timeline polled until the
    event is its newest entry: from the 2xx to the response that shows it."""

    template: dict[str, Any]
    # One probe a second, polled every 100 ms: each poll is a query the server answers on the
    # cores the pipeline uses, so faster polling (10 ms, two probes at once) slowed the very
    # pipeline it measured (a first run: the 90% phase's backlog grew 620 ev/s).
    rate: float = 1.0  # probes per second, over `workers` threads
    workers: int = 1
    timeout_s: float = 60.0
    poll_s: float = 0.1


def probe_event(template: dict[str, Any], customer: str) -> dict[str, Any]:
    event = {k: v for k, v in template.items() if k != "sent_at"}
    event["event_id"] = str(uuid.uuid4())
    event["customer"] = {"customer_id": customer}
    event["occurred_at"] = datetime.now(UTC).isoformat()
    return event


def open_live(streams: LiveStreams, lag: Lag, timeout_s: float = 1800.0) -> LiveStreams:
    """Open the streams (their customers' first events created), wait for the pipeline to take
    those, then start the streams' prober. In that order: while the prober posts, a pipeline
    that commits its offsets periodically (the distributed workers) never shows an empty
    backlog, and a drain wait begun after it would never end."""
    streams.start()
    wait_drained(lag, timeout_s)
    streams.probe()
    return streams


def sustained(
    target: HttpTarget,
    read_target: HttpTarget,
    bodies: Sequence[bytes],
    rate: float,
    seconds: float,
    lag: Lag,
    probe: Probe,
    per_body: int = BATCH,
    clients: int = 4,
    name: str = "sustained",
    live: Callable[[], LiveStreams] | None = None,
) -> dict[str, Any]:
    """Post `bodies` paced at `rate` events/s for `seconds` (as many bodies as the schedule
    takes), probing freshness and sampling the backlog until the last body is posted; then wait
    until the pipeline drains and say how long that took. `live`: live streams (bench/console.py)
    opened before the load and timed while it runs (events posted to them before it left out)."""
    due = schedule(rate, seconds, per_body)
    if len(due) > len(bodies):
        raise ValueError(f"{len(due)} requests scheduled, only {len(bodies)} bodies made")
    wait_drained(lag)
    streams = open_live(live(), lag) if live is not None else None
    before = load_average()
    stop = threading.Event()
    counts, errors = [[0, 0] for _ in range(clients)], []
    late: list[float] = []
    lags: list[tuple[float, int]] = []
    fresh: list[tuple[float, float]] = []  # (seconds into the phase, 2xx → visible)
    timeouts: list[str] = []
    began = time.perf_counter() + 0.5  # every thread ready before the first request is due
    run = f"probe-{name}-{uuid.uuid4().hex[:6]}"

    def post_share(index: int) -> None:
        try:
            with target.client("ingest") as http:
                for n in range(index, len(due), clients):
                    wait = began + due[n] - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    else:
                        late.append(-wait)
                    ok, bad = post(http, bodies[n])
                    counts[index][0] += ok
                    counts[index][1] += bad
        except BaseException as exc:
            errors.append(exc)

    def sample_lag() -> None:
        while not stop.is_set():
            try:
                lags.append((time.perf_counter() - began, backlog(lag())))
            except Exception as exc:  # a slow health page is not a failed run
                errors.append(exc)
                return
            stop.wait(0.5)

    def measure(worker: int) -> None:
        interval = probe.workers / probe.rate
        with target.client("ingest") as ingest, read_target.client("read") as read:
            for n in itertools.count(worker, probe.workers):
                if stop.is_set():
                    return
                started = time.perf_counter()
                event = probe_event(probe.template, f"{run}-{n}")
                post(ingest, orjson.dumps(event))
                acked = time.perf_counter()
                if _visible(read, event, probe):
                    fresh.append((acked - began, time.perf_counter() - acked))
                else:
                    timeouts.append(event["event_id"])
                stop.wait(max(0.0, interval - (time.perf_counter() - started)))

    posters = [threading.Thread(target=post_share, args=(i,), daemon=True) for i in range(clients)]
    others = [threading.Thread(target=sample_lag, daemon=True)] + [
        threading.Thread(target=measure, args=(w,), daemon=True) for w in range(probe.workers)
    ]
    try:
        for thread in [*posters, *others]:
            thread.start()
        for thread in posters:
            thread.join()
        posted = time.perf_counter()
        stop.set()
    finally:  # the streams' prober never runs on into the next phase
        # Timed from the load's start: the prober began when the streams opened, before it.
        delivery = streams.stop(since=began) if streams is not None else None
    for thread in others:
        thread.join(probe.timeout_s + 5)
    if errors:
        raise RuntimeError(f"{name}: {errors[0]!r}") from errors[0]
    drained = wait_drained(lag)
    load_seconds = posted - began
    accepted = sum(c[0] for c in counts)
    during = [f for t, f in fresh if t <= load_seconds]
    half = [f for t, f in fresh if load_seconds / 2 < t <= load_seconds]
    return {
        "target_rate": rate,
        "seconds_planned": seconds,
        "load_seconds": load_seconds,
        "accepted": accepted,
        "rejected": sum(c[1] for c in counts),
        "achieved_rate": per_second(accepted, load_seconds),
        "requests": len(due),
        "requests_late": len(late),
        "most_late_s": max(late, default=0.0),
        "freshness": None if not during else asdict(Latency.of(during)),
        "freshness_second_half": None if not half else asdict(Latency.of(half)),
        "sse": delivery,
        "probe_timeouts": len(timeouts),
        "probe_timeout_s": probe.timeout_s,
        "lag": lag_trend(lags),
        "drain_after_load_s": drained - posted,
        "load_before": before,
        "load_after": load_average(),
    }


def _visible(read: httpx.Client, event: dict[str, Any], probe: Probe) -> bool:
    from bench.workload import newest_event

    customer, deadline = event["customer"]["customer_id"], time.perf_counter() + probe.timeout_s
    while newest_event(read, customer) != event["event_id"]:
        if time.perf_counter() > deadline:
            return False
        time.sleep(probe.poll_s)
    return True


# --- the timeline, beside its SQL in the same phase ------------------------------------------
def interleaved_latency(
    api_call: Callable[[], Any],
    raw_call: Callable[[], float | None],
    count: int,
    warmup: int = 10,
) -> dict[str, Any]:
    """The API request and the same SQL sent to the engine, alternately, `count` times each, so
    both see the same load and the same caches. `raw_call` returns its own duration in seconds
    (timed where the engine runs) or None when it is not available."""
    for _ in range(warmup):
        api_call()
        raw_call()
    api, raw = [], []
    for _ in range(count):
        started = time.perf_counter()
        api_call()
        api.append(time.perf_counter() - started)
        seconds = raw_call()
        if seconds is not None:
            raw.append(seconds)
    return {
        "api": asdict(Latency.of(api)),
        "raw": asdict(Latency.of(raw)) if raw else None,
    }


# --- the whole realistic run, for either deployment ------------------------------------------
RawSql = Callable[[str, dict[str, Any]], float | None]


@dataclass(frozen=True)
class Sizes:
    """How much each measurement posts or asks (from the bench's plan)."""

    max_events: int
    sustained_seconds: float
    probe_rate: float
    timeline_requests: int
    satisfaction_requests: int
    seed: int
    clients: int = 4


def realistic(
    target: HttpTarget,
    read_target: HttpTarget,
    sizes: Sizes,
    probe_template: dict[str, Any],
    lag: Lag,
    raw_sql: RawSql,
    heavy_customer: str,
    tenant: str,
    say: Callable[[str], None],
    live: Callable[[], LiveStreams] | None = None,
) -> dict[str, Any]:
    """Maximum throughput of both mixes, then sustained load at 50% and 90% of the realistic
    mix's maximum with freshness probes (and, at 50%, `live` streams timed), then the timeline
    and satisfaction queries beside the same SQL sent to the engine in the same phase."""
    result: dict[str, Any] = {"maximum": {}, "sustained": []}
    for offset, mix in enumerate(("identity", "demo")):
        events = MIXES[mix](sizes.max_events, sizes.seed + offset)
        bodies = encode_batches(events)
        say(f"  maximum end-to-end, {mix} mix: {len(events):,} events in {len(bodies)} batches")
        result["maximum"][mix] = maximum(target, bodies, len(events), lag, sizes.clients) | {
            "mix": mix
        }
        say(f"    {result['maximum'][mix]['rate']:,.0f} ev/s end to end")
    top = result["maximum"]["identity"]["rate"]
    probe = Probe(probe_template, rate=sizes.probe_rate)
    for n, (share, rate) in enumerate(phase_rates(top), start=2):
        needed = len(schedule(rate, sizes.sustained_seconds, BATCH)) * BATCH
        bodies = encode_batches(identity_events(needed, sizes.seed + n))
        say(f"  sustained {share:.0%} of the maximum: {rate:,.0f} ev/s for "
            f"{sizes.sustained_seconds:.0f} s, probing freshness")  # fmt: skip
        phase = sustained(
            target, read_target, bodies, rate, sizes.sustained_seconds, lag, probe,
            clients=sizes.clients, name=f"{round(share * 100)}",
            live=live if share <= 0.5 else None,
        )  # fmt: skip
        result["sustained"].append(phase | {"share": share, "mix": "identity"})
        fresh = phase["freshness"] or {}
        say(f"    freshness p99 {fresh.get('p99', float('nan')):.3f} s, lag {phase['lag']}")
    say(f"  timeline of {heavy_customer} and satisfaction, API beside the same SQL, alternately")
    result.update(query_latencies(read_target, sizes, raw_sql, heavy_customer, tenant))
    return result


def query_latencies(
    read_target: HttpTarget, sizes: Sizes, raw_sql: RawSql, customer: str, tenant: str
) -> dict[str, Any]:
    from datetime import timedelta

    from kernel.processing import to_micros
    from services.projections.sql import timeline_query
    from services.projections.timeline import DEFAULT_PAGE, TimelineFilter
    from services.satisfaction.sql import TouchpointQuery, touchpoint_metrics_sql

    sql, params = timeline_query(tenant, customer, TimelineFilter(), None, DEFAULT_PAGE)
    now = datetime.now(UTC)
    query = TouchpointQuery(tenant, to_micros(now - timedelta(days=30)), to_micros(now), "day")
    found: dict[str, Any] = {}
    with read_target.client("read") as http:

        def get(path: str, params: dict[str, Any]) -> Callable[[], Any]:
            def call() -> Any:
                response = http.get(path, params=params)
                response.raise_for_status()
                return response

            return call

        before = load_average()
        found["timeline"] = interleaved_latency(
            get(f"/v1/customers/{customer}/timeline", {}),
            lambda: raw_sql(sql, params),
            sizes.timeline_requests,
        ) | {"load_before": before, "load_after": load_average(), "customer": customer}
        before = load_average()
        found["satisfaction"] = interleaved_latency(
            get("/v1/satisfaction/touchpoints", {"bucket": "day"}),
            lambda: raw_sql(touchpoint_metrics_sql("day"), query.params()),
            sizes.satisfaction_requests,
        ) | {"load_before": before, "load_after": load_average()}
    return found


def rows(api: dict[str, Any], e2e_goal: float, baseline: str, baseline_rate: float) -> list[Any]:
    """The table's lines for `realistic`'s result, each with the load average around it."""
    from bench.common import Goal, Row

    found = []
    for mix, label in (("identity", "realistic identifiers"), ("demo", "explicit customer_id")):
        m = api["maximum"][mix]
        load = (m["load_before"][0], m["load_after"][0])
        found += [
            Row(f"max end-to-end, {label} ({m['accepted']:,} ev, 500/request)", m["rate"], "ev/s",
                Goal("at_least", e2e_goal), baseline, baseline_rate, load),
            Row(f"  of which ingest 2xx, {label}", m["acknowledged_rate"], "ev/s", load=load),
        ]  # fmt: skip
    for phase in api["sustained"]:
        load = (phase["load_before"][0], phase["load_after"][0])
        share, lag = f"{phase['share']:.0%}", phase["lag"]
        fresh = phase["freshness"]
        found.append(
            Row(f"sustained {share} of max: achieved rate (target {phase['target_rate']:,.0f})",
                phase["achieved_rate"], "ev/s", load=load)
        )  # fmt: skip
        if fresh:
            goal = Goal("at_most", 1.0) if phase["share"] <= 0.5 else None
            found += [
                Row(f"  freshness p50 during {share} load ({fresh['count']} probes)",
                    fresh["p50"], "s", load=load),
                Row(f"  freshness p99 during {share} load", fresh["p99"], "s", goal, load=load),
            ]  # fmt: skip
        if sse := phase.get("sse"):
            found += [
                Row(f"  SSE delivery p50 during {share} load ({sse['streams']} streams, "
                    f"{sse['count']} events)", sse["p50"], "s", load=load),
                Row(f"  SSE delivery p99 during {share} load", sse["p99"], "s",
                    Goal("at_most", 1.0), load=load),
                Row(f"  SSE events lost or shown twice, {share} load",
                    sse["missing"] + sse["repeated"], "count", load=load),
            ]  # fmt: skip
        found += [
            Row(f"  probes not visible within {phase['probe_timeout_s']:.0f} s, {share} load",
                phase["probe_timeouts"], "count", load=load),
            Row(f"  backlog, mean of the first fifth of the {share} load", lag["start"] or 0,
                "count", load=load),
            Row(f"  backlog, mean of the last fifth (grew: {lag['grew']})", lag["end"] or 0,
                "count", load=load),
            Row(f"  backlog growth over the {share} load, least squares", lag["slope"] or 0,
                "ev/s", load=load),
            Row(f"  drain after the {share} load stopped", phase["drain_after_load_s"], "s",
                load=load),
        ]  # fmt: skip
    for name, goal in (("timeline", Goal("at_most", 0.015)), ("satisfaction", None)):
        q = api[name]
        load = (q["load_before"][0], q["load_after"][0])
        raw = q["raw"] or {}
        for p in ("p50", "p99"):
            found.append(
                Row(f"{name} {p} (API; raw = same SQL, same process and phase)", q["api"][p], "s",
                    goal if p == "p99" else None, "raw SQL", raw.get(p), load)
            )  # fmt: skip
    return found

"""`cem bench`: the embedded platform measured end to end, beside the raw engines, in one run.

Three phases, each in its own process, because chdb lets one process own a data path at a time:
1. raw limits (child process): sqlite3 appends, `SqliteLog.append`, `SqlitePublisher.publish`,
   chdb JSONEachRow inserts and point queries — in a scratch database of the same chdb path;
2. background load (child process): ≥1M demo events, with one "heavy" customer of ~1,000, through
   the platform's own publisher and runners; then the timeline and satisfaction queries straight
   through the warehouse (the raw-engine side of the API latencies);
3. the real server (`python -m cem.cli up`) driven over HTTP from this process: end-to-end
   throughput (an event counts once the query API shows it), freshness, API latencies, peak RSS.

Everything lives in a fresh `<data_dir>/bench-<timestamp>`, never the user's live data directory.
Numbers are printed and written as JSON; nothing here asserts a time (HOUSE_STYLE).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty
from random import Random
from typing import Any

import httpx
import orjson

from bench.common import (
    Goal,
    Latency,
    Row,
    bench_parser,
    child_pids,
    peak_rss,
    per_second,
    render_table,
    write_json,
)
from bench.console import SseProbe, first_page_latency
from bench.segment import post_segment, segment_bodies
from bench.sustained import Sizes, load_average, realistic
from bench.sustained import rows as realistic_rows
from bench.workload import demo_events, newest_event, post, post_concurrently
from cem.adapters.sqlite_keys import SqliteKeyStore
from cem.adapters.sqlite_log import INSERT_RECORD, LOG_SCHEMA, SqliteLog, SqlitePublisher
from cem.serving import free_port, stop_processes, wait_until_serving
from kernel.partitioning import touchpoint_bucket_key
from kernel.private_files import private_dir
from kernel.processing import to_micros
from kernel.settings import IngestSettings
from schemas.validate import accept, decode
from services.ingest.batch import to_outgoing
from services.projections.sql import timeline_query
from services.projections.timeline import DEFAULT_PAGE, TimelineFilter, to_timeline_rows
from services.satisfaction.sql import TouchpointQuery, touchpoint_metrics_sql

REPO = Path(__file__).resolve().parents[1]
TENANT = "bench"
BUCKET_KEY = touchpoint_bucket_key(b"bench platform key")
LOG_BATCH = 1_000
CHDB_BATCH = 10_000


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the plan --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """Sizes of every measurement. With the defaults a 1M run took 12–16 minutes on 2 shared
    cores, most of it loading the background through the platform itself."""

    events: int = 1_000_000
    heavy_events: int = 1_000
    raw_log_rows: int = 200_000
    raw_publish_rows: int = 100_000
    raw_chdb_rows: int = 500_000
    point_queries: int = 1_000
    batched_events: int = 200_000
    batch_size: int = 500
    batched_clients: int = 4
    batched_customers: int = 100
    single_events: int = 5_000
    single_clients: int = 8
    single_customers: int = 40
    freshness_samples: int = 300
    freshness_rate: float = 20.0
    timeline_requests: int = 500
    satisfaction_requests: int = 150
    console_requests: int = 300
    sse_streams: int = 200
    sse_rate: float = 10.0
    seed: int = 7
    # The realistic run (bench/sustained.py): each mix's maximum, then 50% and 90% of it.
    max_events: int = 20_000
    sustained_seconds: float = 120.0
    probe_rate: float = 1.0
    stage_events: int = 10_000
    extras: bool = True  # Segment batches, single events, console page, live streams
    quick: bool = False

    @classmethod
    def quick_plan(cls) -> Plan:
        """`--quick`: 100,000 background events, 10,000 per maximum, 45 s sustained phases, no
        extras; about 8 minutes on 2 shared cores."""
        return replace(
            cls.for_events(100_000),
            max_events=10_000,
            sustained_seconds=45.0,
            stage_events=3_000,
            timeline_requests=300,
            satisfaction_requests=30,
            extras=False,
            quick=True,
        )

    def sizes(self) -> Sizes:
        return Sizes(
            self.max_events,
            self.sustained_seconds,
            self.probe_rate,
            self.timeline_requests,
            self.satisfaction_requests,
            self.seed,
        )

    def describe(self) -> str:
        return (
            f"{'quick' if self.quick else 'full'} size: {self.events:,} background events; "
            f"{self.max_events:,} events per maximum run; sustained phases of "
            f"{self.sustained_seconds:.0f} s; {self.stage_events:,} events for the stage costs"
        )

    @classmethod
    def for_events(cls, events: int) -> Plan:
        """Scale the side measurements down for quick runs; never above the defaults."""
        d = cls()
        return cls(
            events=events,
            heavy_events=min(d.heavy_events, max(10, events // 100)),
            raw_log_rows=_clamp(events // 5, 10_000, d.raw_log_rows),
            raw_publish_rows=_clamp(events // 10, 5_000, d.raw_publish_rows),
            raw_chdb_rows=_clamp(events // 2, 20_000, d.raw_chdb_rows),
            batched_events=_clamp(events // 5, 2_000, d.batched_events),
            single_events=_clamp(events // 200, 200, d.single_events),
            freshness_samples=_clamp(events // 1_000, 50, d.freshness_samples),
        )

    @property
    def heavy_customer(self) -> str:
        return f"heavy-{self.seed}"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


# --- demo events -----------------------------------------------------------------------------
def validated(raws: Sequence[dict[str, Any]]) -> list[Any]:
    """Outgoing records exactly as the ingest router would publish them."""
    received = datetime.now(UTC)
    return [to_outgoing(*accept(raw, TENANT, received), BUCKET_KEY) for raw in raws]


def batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


# --- phase 1: raw limits ---------------------------------------------------------------------
def raw_limits(plan: Plan, run_dir: Path) -> dict[str, Any]:
    say("phase 1: raw limits")
    outgoing = validated(list(demo_events(plan.seed + 100, 2_000)))
    scratch = run_dir / "raw"
    result = {
        "sqlite_append": raw_sqlite_append(scratch / "raw.sqlite", outgoing, plan.raw_log_rows),
        "sqlitelog_append": sqlitelog_append(scratch / "log.sqlite", outgoing, plan.raw_log_rows),
        "publisher_publish": publisher_publish(
            scratch / "publish.sqlite", outgoing, plan.raw_publish_rows
        ),
        **raw_chdb(run_dir / "warehouse", outgoing, plan),
    }
    for file in scratch.glob("*"):
        file.unlink()
    result["peak_rss_bytes"] = peak_rss()
    return result


def _timed(work: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def raw_sqlite_append(path: Path, outgoing: Sequence[Any], rows: int) -> dict[str, Any]:
    """sqlite3 alone, the log's table and index, WAL, one transaction per 1,000-row batch: the
    ceiling for any SQLite log on this disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(LOG_SCHEMA)
    now, elapsed = time.time_ns() // 1000, 0.0
    for start in range(0, rows, LOG_BATCH):
        batch = [
            ("touchpoints", i % 12, i // 12, o.record.key, o.record.value, None, now)
            for i, o in ((i, outgoing[i % len(outgoing)]) for i in range(start, start + LOG_BATCH))
        ]
        elapsed += _timed(_write_transaction, conn, INSERT_RECORD, batch)
    conn.close()
    return {"rows": rows, "batch": LOG_BATCH, "seconds": elapsed, "rate": per_second(rows, elapsed)}


def _write_transaction(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql, rows)
    conn.execute("COMMIT")


def sqlitelog_append(path: Path, outgoing: Sequence[Any], rows: int) -> dict[str, Any]:
    log = SqliteLog(path)
    records = [outgoing[i % len(outgoing)].record for i in range(LOG_BATCH)]
    elapsed = sum(_timed(log.append, "touchpoints", records) for _ in range(rows // LOG_BATCH))
    log.close()
    return {"rows": rows, "batch": LOG_BATCH, "seconds": elapsed, "rate": per_second(rows, elapsed)}


def publisher_publish(path: Path, outgoing: Sequence[Any], rows: int) -> dict[str, Any]:
    """The idempotent publish that ingest calls: claims and append in one transaction."""
    log = SqliteLog(path)
    publisher, elapsed = SqlitePublisher(log), 0.0
    for start in range(0, rows, LOG_BATCH):
        # Fresh event ids, so that every event is a new claim rather than a duplicate.
        fresh = [
            replace(outgoing[i % len(outgoing)], event_id=str(uuid.uuid4()))
            for i in range(start, start + LOG_BATCH)
        ]
        elapsed += _timed(publisher.publish, fresh)
    log.close()
    return {"rows": rows, "batch": LOG_BATCH, "seconds": elapsed, "rate": per_second(rows, elapsed)}


RAW_DB = "bench_raw"
RAW_TABLE = """CREATE TABLE IF NOT EXISTS raw_timeline (
    tenant_id String, customer_id String, derived_at Int64, event_id String,
    channel String, type String, touchpoint String, source_id String, correlation_id String,
    occurred_at Int64, received_at Int64, clock_corrected UInt8,
    summary String, payload_json String, identifiers Array(String)
) ENGINE = MergeTree ORDER BY (tenant_id, customer_id, derived_at, event_id)"""
POINT_QUERY = """SELECT * FROM raw_timeline
WHERE tenant_id = {tenant_id:String} AND customer_id = {customer_id:String}"""


def raw_chdb(path: Path, outgoing: Sequence[Any], plan: Plan) -> dict[str, Any]:
    """JSONEachRow inserts of timeline-shaped rows, then point queries on the sorting key, in a
    scratch database of the platform's own chdb path (one path per process), on a chdb session
    (the engine alone: not the warehouse adapter's pool nor its decoding of rows)."""
    from chdb import session as chdb_session  # chdb only in the phases that own it

    engine = chdb_session.Session(str(private_dir(path).resolve()))
    engine.query(f"CREATE DATABASE IF NOT EXISTS {RAW_DB}")
    engine.query(f"USE {RAW_DB}")
    engine.query(RAW_TABLE)
    templates = [to_timeline_rows(decode(o.record.value))[0] for o in outgoing]
    customers = max(1, plan.raw_chdb_rows // 20)
    elapsed = 0.0
    for start in range(0, plan.raw_chdb_rows, CHDB_BATCH):
        body = _raw_rows_body(
            templates, start, min(CHDB_BATCH, plan.raw_chdb_rows - start), customers
        )
        sql = "INSERT INTO raw_timeline FORMAT JSONEachRow\n" + body
        elapsed += _timed(engine.query, sql)
    # A raw limit is the engine's best case: merged parts, as a table settles to when idle.
    engine.query("OPTIMIZE TABLE raw_timeline FINAL")
    rng = Random(plan.seed)
    keys = [
        {"tenant_id": TENANT, "customer_id": f"c{rng.randrange(customers)}"}
        for _ in range(plan.point_queries)
    ]
    latencies = [
        _timed(lambda k: engine.query(POINT_QUERY, "JSONEachRow", params=k), key) for key in keys
    ]
    engine.query(f"DROP DATABASE IF EXISTS {RAW_DB}")
    engine.close()
    return {
        "chdb_insert": {
            "rows": plan.raw_chdb_rows,
            "batch": CHDB_BATCH,
            "seconds": elapsed,
            "rate": per_second(plan.raw_chdb_rows, elapsed),
        },
        "chdb_point_query": asdict(Latency.of(latencies)) | {"rows_per_key": 20},
    }


def _raw_rows_body(
    templates: Sequence[dict[str, Any]], start: int, count: int, customers: int
) -> str:
    rows = []
    for i in range(start, start + count):
        row = dict(templates[i % len(templates)])
        row.update(customer_id=f"c{i % customers}", event_id=str(uuid.UUID(int=i)))
        row["derived_at"] += i
        rows.append(orjson.dumps(row))
    return b"\n".join(rows).decode()


# --- phase 2: background load ----------------------------------------------------------------
def produce(plan: Plan, queue: Any) -> None:
    """Generate and validate the background in its own process (a core of its own), one
    publishable batch at a time; every k-th event is re-filed under the heavy customer."""
    every = max(1, plan.events // plan.heavy_events)
    raws = demo_events(plan.seed, plan.events)
    for n, chunk in enumerate(batched(raws, LOG_BATCH)):
        for i, raw in enumerate(chunk, start=n * LOG_BATCH):
            if i % every == every - 1 and i // every < plan.heavy_events:
                raw["customer"] = {"customer_id": plan.heavy_customer}
        queue.put(validated(chunk))
    queue.put(None)
    queue.put({"producer_peak_rss_bytes": peak_rss()})


def load_background(plan: Plan, run_dir: Path) -> dict[str, Any]:
    from cem.bootstrap import build
    from kernel.collector import settle_collector

    say(f"phase 2: loading {plan.events:,} background events through publisher + runners")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    producer = ctx.Process(target=produce, args=(plan, queue), name="bench-producer")
    producer.start()
    platform = build(IngestSettings(data_dir=run_dir))
    platform.start()
    settle_collector()  # as `cem up` does once started
    try:
        loaded = _publish_all(platform, queue, producer)
        loaded.update(queue.get(timeout=60))
        producer.join(60)
        loaded.update(raw_queries(platform.warehouse, plan))
        loaded["timeline_rows"] = platform.warehouse.select(
            "SELECT count() AS n FROM customer_timeline"
        )[0]["n"]
    finally:
        platform.stop()
        if producer.is_alive():
            producer.terminate()
    loaded["peak_rss_bytes"] = peak_rss()
    return loaded


def _publish_all(platform: Any, queue: Any, producer: Any) -> dict[str, Any]:
    """Publish every batch the producer makes, then wait until both consumer groups are done.
    The clock starts at the first batch, so the producer's start-up is not counted."""
    batch = _next_batch(queue, producer)
    published, publishing = 0, 0.0
    started = last_report = time.perf_counter()
    while batch is not None:
        publishing += _timed(platform.publisher.publish, batch)
        published += len(batch)
        if time.perf_counter() - last_report > 15:
            last_report = time.perf_counter()
            say(f"  published {published:,}, lag {platform.lag()}")
        batch = _next_batch(queue, producer)
    done_publishing = time.perf_counter()
    while any(platform.lag().values()):
        time.sleep(0.05)
    drained = time.perf_counter()
    say(f"  loaded {published:,} events in {drained - started:.0f} s")
    return {
        "events": published,
        "seconds": drained - started,
        "rate": per_second(published, drained - started),
        "publish_seconds": publishing,
        "publish_rate": per_second(published, publishing),
        "drain_after_publish_seconds": drained - done_publishing,
    }


def _next_batch(queue: Any, producer: Any) -> list[Any] | None:
    while True:
        try:
            batch: list[Any] | None = queue.get(timeout=5)
            return batch
        except Empty:
            if not producer.is_alive():
                raise RuntimeError(f"the producer died (exit {producer.exitcode})") from None


def raw_queries(warehouse: Any, plan: Plan) -> dict[str, Any]:
    """The API's two queries run straight through the warehouse, for the ratios."""
    sql, params = timeline_query(TENANT, plan.heavy_customer, TimelineFilter(), None, DEFAULT_PAGE)
    heavy = warehouse.select(
        "SELECT count() AS n FROM customer_timeline WHERE tenant_id = {t:String} "
        "AND customer_id = {c:String}",
        {"t": TENANT, "c": plan.heavy_customer},
    )[0]["n"]
    timeline = _latencies(lambda: warehouse.select(sql, params), plan.timeline_requests)
    now = datetime.now(UTC)
    query = TouchpointQuery(TENANT, to_micros(now - timedelta(days=30)), to_micros(now), "day")
    satisfaction = _latencies(
        lambda: warehouse.select(touchpoint_metrics_sql("day"), query.params()),
        plan.satisfaction_requests,
    )
    return {
        "heavy_customer": plan.heavy_customer,
        "heavy_customer_events": heavy,
        "raw_timeline_query": asdict(timeline),
        "raw_satisfaction_query": asdict(satisfaction),
    }


def _latencies(call: Callable[[], Any], count: int, warmup: int = 10) -> Latency:
    for _ in range(warmup):
        call()
    return Latency.of([_timed(call) for _ in range(count)])


# --- phase 3: the real server over HTTP ------------------------------------------------------
class Server:
    """`cem up` as a subprocess on a free port, with keys created beforehand in its key store."""

    def __init__(self, run_dir: Path, env: dict[str, str] | None = None) -> None:
        """`env`: settings of this server only (`CEM_FILING_PROCESS`…), over this process's."""
        keys = SqliteKeyStore(run_dir / "keys.sqlite")
        ingest_key = keys.create(TENANT, "ingest", name="bench ingest")[1]
        read_key = keys.create(TENANT, "manager", name="bench reader")[1]
        keys.close()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.target = Target(self.url, ingest_key, read_key)
        self.log_path = run_dir / "server.log"
        # The quota protects a shared server from one key; here it would cap what is measured.
        env = os.environ | {
            "CEM_INGEST_QUOTA_RATE_PER_S": "1e9",
            "CEM_INGEST_QUOTA_BURST": "1000000000",
            **(env or {}),
        }
        self.raw_url = f"http://127.0.0.1:{free_port()}"
        served = ["-m", "bench.served", "--raw-port", self.raw_url.rsplit(":", 1)[1]]
        command = [sys.executable, *served, "up", "--data-dir", str(run_dir)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=log
            )

    def wait_healthy(self, timeout_s: float = 180.0) -> None:
        def still_starting() -> None:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.process.returncode}); see {self.log_path}"
                )

        wait_until_serving(self.url, timeout_s, still_starting)

    def wait_idle(self, timeout_s: float = 900.0) -> None:
        """Until every consumer group has processed everything (the health route's lag)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lag = httpx.get(f"{self.url}/health", timeout=10).json().get("lag", {})
            if not any(lag.values()):
                return
            time.sleep(0.2)
        raise RuntimeError("the server did not catch up with its log")

    def lag(self) -> dict[str, int]:
        """Each consumer group's backlog, as the health route reports it."""
        lag: dict[str, int] = httpx.get(f"{self.url}/health", timeout=30).json().get("lag", {})
        return lag

    def raw_sql(self, sql: str, params: dict[str, Any]) -> float | None:
        """The SQL run by the server's own chdb engine (bench/served.py), timed there; None
        when the side port is not open."""
        try:
            answer = httpx.post(self.raw_url, content=orjson.dumps({"sql": sql, "params": params}))
        except httpx.TransportError:
            return None
        seconds: float = answer.json()["seconds"]
        return seconds

    def stop(self) -> None:
        stop_processes([self.process], timeout_s=60, stop_signal=signal.SIGINT)


@dataclass(frozen=True)
class Target:
    """Where the HTTP measurements below point: any deployment with an ingest and a reader key
    (the distributed bench can drive its load balancer with the same functions)."""

    url: str
    ingest_key: str
    read_key: str

    def client(self, role: str) -> httpx.Client:
        key = self.ingest_key if role == "ingest" else self.read_key
        return httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
            timeout=60.0,
        )


@dataclass
class Workload:
    """Request bodies per client thread, and each customer's last event id.

    Each customer belongs to one client, which posts its events in order with increasing
    `occurred_at`, so that its last event is the newest entry of its timeline.
    """

    bodies: list[list[bytes]]
    last_event: dict[str, str]
    events: int


def make_workload(
    templates: Sequence[dict[str, Any]],
    run: str,
    events: int,
    per_request: int,
    clients: int,
    customers: int,
) -> Workload:
    base_ms = int(time.time() * 1000) - 6 * 3_600_000
    names = [f"{run}-{i}" for i in range(customers)]
    groups = [names[c::clients] for c in range(clients)]
    bodies: list[list[bytes]] = []
    last: dict[str, str] = {}
    for c, group in enumerate(groups):
        share = events // clients + (1 if c < events % clients else 0)
        made = []
        for i in range(share):
            customer = group[i % len(group)]
            made.append(_event(templates[i % len(templates)], customer, base_ms + i))
            last[customer] = made[-1]["event_id"]
        chunks = batched(iter(made), per_request)
        bodies.append([orjson.dumps(c[0] if per_request == 1 else {"events": c}) for c in chunks])
    return Workload(bodies, last, events)


def _event(template: dict[str, Any], customer: str, occurred_ms: int) -> dict[str, Any]:
    event = {k: v for k, v in template.items() if k != "sent_at"}
    event["event_id"] = str(uuid.uuid4())
    event["customer"] = {"customer_id": customer}
    event["occurred_at"] = datetime.fromtimestamp(occurred_ms / 1000, UTC).isoformat()
    return event


def end_to_end(
    target: Target,
    work: Workload,
    poster: Callable[[httpx.Client, bytes], tuple[int, int]] = post,
) -> dict[str, Any]:
    """Clients post concurrently; the clock stops when the query API shows every event.

    An event is visible once its customer's newest timeline entry is that customer's last event:
    a customer's events share a partition, the runner processes a partition in offset order and
    inserts a batch before committing it, and each customer's events were posted in order by one
    client — so the last one visible means all of them are. The check runs in rounds over the
    customers still pending, so the clock stops at most one round (a few hundred ms) late.
    """
    posted = post_concurrently(target, work.bodies, poster)
    visible = _wait_visible(target, work.last_event)
    accepted, rejected, began, acked = posted.accepted, posted.rejected, posted.began, posted.acked
    return {
        "events": accepted,
        "rejected": rejected,
        "requests": sum(len(b) for b in work.bodies),
        "clients": len(work.bodies),
        "customers": len(work.last_event),
        "seconds": visible - began,
        "rate": per_second(accepted, visible - began),
        "acknowledged_seconds": acked - began,
        "acknowledged_rate": per_second(accepted, acked - began),
    }


def _wait_visible(target: Target, last_event: dict[str, str], timeout_s: float = 1800.0) -> float:
    pending, seen = dict(last_event), time.perf_counter()
    deadline = time.monotonic() + timeout_s
    with target.client("read") as http:
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} customers never showed their last event")
            for customer, event_id in list(pending.items()):
                if newest_event(http, customer) == event_id:
                    del pending[customer]
                    seen = time.perf_counter()
            if pending:
                time.sleep(0.02)
    return seen


def measure_server(plan: Plan, run_dir: Path) -> dict[str, Any]:
    say("phase 4: the real server over HTTP")
    templates = list(demo_events(plan.seed + 200, 1_000, customers=300))
    server = Server(run_dir)
    try:
        server.wait_healthy()
        server.wait_idle()
        result = drive(server.target, plan, templates, server.wait_idle, server.lag, server.raw_sql)
        result["peak_rss_bytes"] = peak_rss(server.process.pid)
        # `cem up`'s filing process (CEM_FILING_PROCESS, on by default), if it has one.
        children = [peak_rss(p) or 0 for p in child_pids(server.process.pid)]
        result["filing_peak_rss_bytes"] = max(children, default=None)
    finally:
        server.stop()
    return result


def drive(
    target: Target,
    plan: Plan,
    templates: Sequence[dict[str, Any]],
    wait_idle: Callable[[], None],
    lag: Callable[[], dict[str, int]],
    raw_sql: Callable[[str, dict[str, Any]], float | None],
) -> dict[str, Any]:
    """Every HTTP measurement in turn: the realistic run (bench/sustained.py), then, in a full
    run, the extras; `wait_idle` lets the pipeline drain between them."""
    result: dict[str, Any] = {"url": target.url}
    result |= realistic(
        target, target, plan.sizes(), templates[0], lag, raw_sql, plan.heavy_customer, TENANT, say,
        live=lambda: sse_probe(target, plan, templates[0], "the 50% load"),
    )  # fmt: skip
    if not plan.extras:
        return result
    wait_idle()
    say(f"  end-to-end, batched, synthetic customer ids: {plan.batched_events:,} events")
    work = make_workload(
        templates, "e2e-batch", plan.batched_events, plan.batch_size,
        plan.batched_clients, plan.batched_customers,
    )  # fmt: skip
    # Consoles stay open on other customers during the batched load (bench/console.py).
    probe = sse_probe(target, plan, templates[0], "the batched load")
    probe.start()
    probe.probe()
    result["batched"] = end_to_end(target, work) | {"batch_size": plan.batch_size}
    result["sse"] = probe.stop()
    wait_idle()  # the satisfaction group may still be behind the timeline
    say(f"  end-to-end, Segment /v1/batch: {plan.batched_events:,} events")
    bodies, last = segment_bodies(
        "e2e-segment", plan.batched_events, plan.batch_size,
        plan.batched_clients, plan.batched_customers,
    )  # fmt: skip
    work = Workload(bodies, last, plan.batched_events)
    segment = end_to_end(target, work, post_segment) | {"batch_size": plan.batch_size}
    result["segment_batched"] = segment
    wait_idle()
    say(f"  end-to-end, single events: {plan.single_events:,}")
    work = make_workload(
        templates, "e2e-single", plan.single_events, 1, plan.single_clients, plan.single_customers
    )
    result["single"] = end_to_end(target, work)
    wait_idle()
    say("  console first page (profile + 50 timeline entries)")
    result["console_first_page"] = first_page_latency(
        read_url(target), target.read_key, plan.heavy_customer, plan.console_requests
    )
    return result


def sse_probe(target: Target, plan: Plan, template: dict[str, Any], during: str) -> SseProbe:
    say(f"  {plan.sse_streams} live streams open during {during}")

    def make_event(customer: str) -> dict[str, Any]:
        return _event(template, customer, int(time.time() * 1000))

    return SseProbe(
        target.url,
        read_url(target),
        target.ingest_key,
        target.read_key,
        make_event,
        plan.sse_streams,
        plan.sse_rate,
    )


def read_url(target: Target) -> str:
    """Where reads go: the query API of a routed (distributed) target, else the one server."""
    routed: str = getattr(target, "read_url", "")
    return routed or target.url


# --- per-event CPU by stage ---
def stage_costs(plan: Plan, run_dir: Path) -> dict[str, Any]:
    """bench/stages.py over the realistic mix, in a process of its own (it opens its own chdb
    path): CPU per event of validate, publish, file, project and insert."""
    from bench.stages import measure

    say(f"phase 3: CPU per event by stage ({plan.stage_events:,} events, identity mix)")
    root = run_dir / "stages"
    root.mkdir()
    try:
        return measure("identity", plan.stage_events, 2_000, 500, plan.seed, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stage_rows(stages: dict[str, Any]) -> list[Row]:
    """The five stages' CPU per event as rows (µs shown as seconds), or one line saying why not."""
    if "error" in stages:
        return [Row(f"stage costs not measured: {stages['error'][:80]}", 0, "count")]
    load = (stages["load_before"][0], stages["load_after"][0])
    found = stages["summary_cpu_us_per_event"]
    total = sum(found.values())
    return [
        Row(f"CPU per event, {name} ({stages['mix']} mix, 500/batch)", us / 1e6, "s", load=load)
        for name, us in found.items()
    ] + [Row("CPU per event, all five stages (one core's limit = 1 / this)", total / 1e6, "s",
             load=load)]  # fmt: skip


def stage_costs_or_error(plan: Plan, run_dir: Path) -> dict[str, Any]:
    """The stage costs; a failure there (the stages bench uses the pipeline's own modules, which
    other work changes) is reported, not fatal to the run."""
    try:
        return in_child(stage_costs, plan, run_dir)
    except RuntimeError as exc:
        say(f"stage costs failed: {str(exc)[-400:]}")
        return {"error": str(exc).strip().splitlines()[-1]}


# --- running the phases ----------------------------------------------------------------------
def _child(
    phase: Callable[[Plan, Path], dict[str, Any]], plan: Plan, run_dir: Path, conn: Any
) -> None:
    try:
        conn.send(("ok", phase(plan, run_dir)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise


def in_child(
    phase: Callable[[Plan, Path], dict[str, Any]], plan: Plan, run_dir: Path
) -> dict[str, Any]:
    """Run a phase in a fresh process: it owns the chdb path while it runs, releases it on exit,
    and its peak RSS is its own."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(phase, plan, run_dir, send), name=phase.__name__)
    process.start()
    send.close()
    try:
        status, value = receive.recv()
    except EOFError:
        status, value = "error", f"{phase.__name__} died (exit {process.exitcode})"
    process.join()
    if status != "ok":
        raise RuntimeError(f"{phase.__name__} failed:\n{value}")
    result: dict[str, Any] = value
    return result


def fresh_run_dir(data_dir: str | Path) -> Path:
    run_dir = Path(data_dir) / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    return run_dir.resolve()


# --- the results -----------------------------------------------------------------------------
def summary_rows(
    raw: dict[str, Any], load: dict[str, Any], api: dict[str, Any], stages: dict[str, Any]
) -> list[Row]:
    sqlite_rate = raw["sqlite_append"]["rate"]
    point = raw["chdb_point_query"]
    rows = [
        Row("raw SQLite append (sqlite3, 1,000/txn)", sqlite_rate, "ev/s", load=raw["load"]),
        Row("SqliteLog.append (1,000/call)", raw["sqlitelog_append"]["rate"], "ev/s",
            raw_name="raw SQLite", raw_value=sqlite_rate, load=raw["load"]),
        Row("SqlitePublisher.publish (1,000/call)", raw["publisher_publish"]["rate"], "ev/s",
            raw_name="raw SQLite", raw_value=sqlite_rate, load=raw["load"]),
        Row("raw chdb insert (JSONEachRow, 10k/batch)", raw["chdb_insert"]["rate"], "rows/s",
            load=raw["load"]),
        Row("raw chdb point query p99 (scratch table)", point["p99"], "s", load=raw["load"]),
        Row(f"background load ({load['events']:,} demo events, publisher + runners)",
            load["rate"], "ev/s", raw_name="raw SQLite", raw_value=sqlite_rate,
            load=load["load"]),
        *realistic_rows(api, 20_000, "raw SQLite", sqlite_rate),
        *stage_rows(stages),
        *extra_rows(api, sqlite_rate),
        Row("peak RSS, server", api["peak_rss_bytes"] or 0, "bytes"),
        *([Row("peak RSS, server's filing process", api["filing_peak_rss_bytes"], "bytes")]
          if api.get("filing_peak_rss_bytes") else []),
        Row("peak RSS, bench loader", load["peak_rss_bytes"] or 0, "bytes"),
    ]  # fmt: skip
    return rows


def extra_rows(api: dict[str, Any], sqlite_rate: float) -> list[Row]:
    """A full run's extras: synthetic-id batches with live streams open, Segment, single events
    and the console's first page."""
    if "batched" not in api:
        return []
    b, s, c, sse = api["batched"], api["single"], api["console_first_page"], api["sse"]
    return [
        Row(f"end-to-end batched, synthetic ids ({b['batch_size']}/request)", b["rate"], "ev/s",
            raw_name="raw SQLite", raw_value=sqlite_rate),
        *segment_rows(api),
        Row("end-to-end single event/request", s["rate"], "ev/s",
            raw_name="raw SQLite", raw_value=sqlite_rate),
        Row("console first page p50 (profile + 50 entries)", c["p50"], "s"),
        Row("console first page p99 (profile + 50 entries)", c["p99"], "s", Goal("at_most", 0.3)),
        Row(f"SSE delivery p50 ({sse['streams']} streams, batched load)", sse["p50"], "s"),
        Row(f"SSE delivery p99 ({sse['streams']} streams, batched load)", sse["p99"], "s",
            Goal("at_most", 1.0)),
        Row("SSE messages undelivered 30 s after the load / repeated",
            sse["missing"] + sse["repeated"], "count"),
    ]  # fmt: skip


def segment_rows(api: dict[str, Any]) -> list[Row]:
    """The Segment batch path beside the native one (goal: at least 80% of it)."""
    if "segment_batched" not in api:
        return []
    native, segment = api["batched"]["rate"], api["segment_batched"]
    return [
        Row(f"end-to-end Segment /v1/batch ({segment['batch_size']}/request)", segment["rate"],
            "ev/s", Goal("at_least", 0.8 * native), "native batch", native),
        Row("  of which ingest 2xx, Segment", segment["acknowledged_rate"], "ev/s",
            raw_name="native 2xx", raw_value=api["batched"]["acknowledged_rate"]),
    ]  # fmt: skip


def plan_for(args: argparse.Namespace) -> Plan:
    if getattr(args, "quick", False):
        return Plan.quick_plan()
    return Plan.for_events(10_000_000 if getattr(args, "ten_million", False) else int(args.events))


def commit() -> str:
    done = subprocess.run(
        ["git", "log", "-1", "--format=%h %cs"], cwd=REPO, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def heading(kind: str, plan: Plan, started_at: datetime, revision: str) -> str:
    """What a table is of: the commit (taken when the run started), the date, the machine, the
    size, the load."""
    one, five, fifteen = load_average()
    # Sealing (the default since 2026-12-06) costs per event: every table says which it measured.
    personal = "sealed" if IngestSettings().sealing else "in clear"
    return (
        f"cem bench {kind} · commit {revision} · {started_at:%Y-%m-%d %H:%M} UTC · "
        f"{os.cpu_count()} cores · load average now {one} {five} {fifteen} · "
        f"personal data {personal}\n{plan.describe()}"
    )


def with_load(phase: Callable[[Plan, Path], dict[str, Any]]) -> Callable[[Plan, Path], Any]:
    def run(plan: Plan, run_dir: Path) -> dict[str, Any]:
        before = load_average()[0]
        return in_child(phase, plan, run_dir) | {"load": (before, load_average()[0])}

    return run


def main(args: argparse.Namespace) -> int:
    plan = plan_for(args)
    run_dir = fresh_run_dir(args.data_dir)
    say(f"data in {run_dir}; {plan.describe()}")
    started, started_at, revision = time.perf_counter(), datetime.now(UTC), commit()
    try:
        raw = with_load(raw_limits)(plan, run_dir)
        load = with_load(load_background)(plan, run_dir)
        stages = stage_costs_or_error(plan, run_dir)
        api = measure_server(plan, run_dir)
    except RuntimeError as exc:
        say(f"failed: {exc}\n(the data is kept in {run_dir})")
        return 1
    rows = summary_rows(raw, load, api, stages)
    table = heading("(embedded)", plan, started_at, revision) + "\n" + render_table(rows)
    print(table, flush=True)
    if "text" in stages:
        print("\n" + stages["text"], flush=True)
    report = {
        "benchmark": "embedded",
        "started_at": started_at.isoformat(),
        "commit": revision,
        "wall_seconds": time.perf_counter() - started,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "run_dir": str(run_dir),
        "run_dir_bytes": sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()),
        "plan": asdict(plan),
        "metrics": [row.as_dict() for row in rows],
        "raw": raw,
        "load": load,
        "stages": stages,
        "api": api,
        "table": table,
    }
    say(f"results written to {write_json(args.out, report)}")
    if getattr(args, "keep", False):
        say(f"data kept in {run_dir}")
    else:
        # A 1M-event run leaves gigabytes; `python -m bench.embedded --keep` keeps them.
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.embedded`, the same as `cem bench`."""
    return main(
        bench_parser("python -m bench.embedded", "bench-results/embedded.json").parse_args(argv)
    )


if __name__ == "__main__":
    raise SystemExit(cli())

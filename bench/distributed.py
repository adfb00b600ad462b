"""`cem bench --distributed`: the distributed platform measured end to end, beside the raw engines,
in one run.

1. engines: private Kafka, ClickHouse and PostgreSQL from `deploy/engines.py`, their state in the
   run directory (or the CEM_TEST_* endpoints, when set: see `Engines`);
2. raw limits, before any service runs: kafka-python producing ingest-shaped records (~620 bytes)
   with the ingest's own producer settings, 1,000 records per acknowledged batch as one ingest
   request does; clickhouse-driver native inserts of timeline-shaped rows into a scratch table,
   and point queries on its sorting key;
3. the four services as subprocesses (`cem serve ingest|query-api|projections|satisfaction`), one
   of each, so each worker owns every partition of the topic;
4. background load through the ingest's own publisher (Kafka + PostgreSQL claims) while the real
   workers consume; cut short by a time budget so the run stays near 15 minutes on 2 cores, and
   then labelled with what was actually loaded;
5. the embedded bench's HTTP measurements (`bench.embedded.drive`) against the ingest and the
   query API: end-to-end throughput, freshness, timeline and satisfaction latency; then the peak
   RSS of every service and engine process.

Every process and engine started here is stopped, also on failure. Numbers are printed and written
as JSON; nothing here asserts a time (HOUSE_STYLE).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from bench import kafka_perf
from bench.common import (
    Latency,
    Row,
    bench_parser,
    peak_rss,
    per_second,
    render_table,
    write_json,
)
from bench.embedded import (
    LOG_BATCH,
    POINT_QUERY,
    RAW_TABLE,
    REPO,
    TENANT,
    Plan,
    Target,
    _clamp,
    _next_batch,
    _timed,
    batched,
    commit,
    drive,
    extra_rows,
    fresh_run_dir,
    heading,
    plan_for,
    raw_queries,
    say,
    stage_costs_or_error,
    stage_rows,
    validated,
)
from bench.sustained import load_average
from bench.sustained import rows as realistic_rows
from bench.workload import demo_events
from cem.serving import free_port, stop_processes, wait_until_serving
from kernel.partitioning import partition_for
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, Record
from kernel.settings import IngestSettings
from schemas.validate import decode
from services.projections.timeline import to_timeline_rows

DEFAULT_OUT = "bench-results/distributed.json"
PARTITIONS = 12  # the platform's default (CEM_PARTITIONS)
INSERT_BATCH = 10_000
RUN_BUDGET_S = 1200.0  # the whole run: ~20 minutes on 2 shared cores
# Kept for what follows the load: the HTTP phase and the shutdown took ~190 s after a 1M load
# (100,000 batched events); the rest is margin for a busier machine.
AFTER_LOAD_S = 480.0  # the realistic run: two maximum runs, two sustained phases, the queries
MIN_LOAD_S = 60.0
CHECK_EVERY_S = 5.0
HEAVY_EVERY = 10
START_WITHIN_S = 180.0
WORKERS = ("filing", "projections", "satisfaction")  # each one's consumer group is its name
# What each worker group reads: the filing stage the touchpoints, the projections its filings.
SOURCE_TOPIC = {
    "filing": TOUCHPOINTS_TOPIC,
    "projections": FILINGS_TOPIC,
    "satisfaction": FILINGS_TOPIC,
}
HTTP_SERVICES = ("ingest", "query-api")
EMBEDDED_ONLY = ("raw_log_rows", "raw_publish_rows", "raw_chdb_rows")  # plan sizes unused here
ENDPOINTS = {"kafka": "KAFKA_BOOTSTRAP", "clickhouse": "CLICKHOUSE_URL", "postgres": "POSTGRES_DSN"}


@dataclass(frozen=True)
class DistributedPlan(Plan):
    """The embedded bench's plan plus the sizes of the raw Kafka and ClickHouse measurements.

    The batched end-to-end run is at most 100,000 events, not the embedded 200,000: on 2 shared
    cores the distributed pipeline moves ~1,500 events/s, and 100,000 already take a minute.
    """

    batched_events: int = 100_000
    raw_produce_rows: int = 200_000
    raw_insert_rows: int = 500_000

    perf_records: int = 300_000  # Kafka's own producer perf tool

    @classmethod
    def quick_plan(cls) -> DistributedPlan:
        """`--quick`: the embedded quick plan's sizes with the raw Kafka and ClickHouse ones, and
        half its background (the heavy customer's 1,000 events come in its first 10,000)."""
        quick = asdict(Plan.quick_plan()) | {"events": 50_000}
        return cls(
            **quick | {"batched_events": min(quick["batched_events"], cls.batched_events)},
            raw_produce_rows=20_000,
            raw_insert_rows=50_000,
            perf_records=150_000,
        )

    @classmethod
    def for_events(cls, events: int) -> DistributedPlan:
        d, base = cls(), asdict(Plan.for_events(events))
        return cls(
            **base | {"batched_events": min(base["batched_events"], d.batched_events)},
            raw_produce_rows=_clamp(events // 5, 10_000, d.raw_produce_rows),
            raw_insert_rows=_clamp(events // 2, 20_000, d.raw_insert_rows),
        )


# --- pure helpers ----------------------------------------------------------------------------
def parse_endpoint(printed: str) -> dict[str, str]:
    """`NAME=value` lines, as `deploy/engines.py start --prefix ''` prints them."""
    return dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)


def with_database(url: str, database: str) -> str:
    """The ClickHouse URL naming `database` (the services read and write the URL's path)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def service_env(
    environ: Mapping[str, str], endpoints: Mapping[str, str], clickhouse_url: str, data_dir: Path
) -> dict[str, str]:
    """The services' environment: the platform's defaults on these engines, except the per-key
    ingest quota, which protects a shared ingest from one key but here would cap what is measured.
    The caller's own CEM_* settings are dropped: they may name a live deployment."""
    inherited = {k: v for k, v in environ.items() if not k.startswith("CEM_")}
    return inherited | {
        "CEM_MODE": "distributed",
        "CEM_DATA_DIR": str(data_dir),
        "CEM_KAFKA_BOOTSTRAP": endpoints["kafka"],
        "CEM_CLICKHOUSE_URL": clickhouse_url,
        "CEM_POSTGRES_DSN": endpoints["postgres"],
        "CEM_PARTITIONS": str(PARTITIONS),
        "CEM_INGEST_QUOTA_RATE_PER_S": "1e9",
        "CEM_INGEST_QUOTA_BURST": "1000000000",
    }


def load_budget(elapsed_s: float) -> float:
    """Seconds the background load may take, publishing and draining: what is left of the run's
    budget after `elapsed_s` once the rest of the run is reserved, and never under a minute."""
    return max(MIN_LOAD_S, RUN_BUDGET_S - AFTER_LOAD_S - elapsed_s)


def past_budget(elapsed_s: float, published: int, lag: Mapping[str, int], budget_s: float) -> bool:
    """Whether to stop publishing: the slowest group's backlog, drained at the rate that group
    processed so far, would end past the budget. Before any group processed anything the drain
    time is unknown, so publishing stops at half the budget at the latest."""
    if elapsed_s >= budget_s:
        return True
    backlog = max(lag.values(), default=0)
    processed = published - backlog
    if processed <= 0:
        return elapsed_s >= budget_s / 2
    return elapsed_s + backlog * elapsed_s / processed >= budget_s


def timeline_columns(
    templates: Sequence[Mapping[str, Any]], start: int, count: int, customers: int
) -> list[list[Any]]:
    """Rows start..start+count of the raw insert, as native column blocks: the templates' rows
    under `customers` ids (20 rows each on average) with unique event ids."""
    columns: list[list[Any]] = [[] for _ in templates[0]]
    for i in range(start, start + count):
        row = dict(templates[i % len(templates)])
        row.update(customer_id=f"c{i % customers}", event_id=str(uuid.UUID(int=i)))
        row["derived_at"] += i
        for column, value in zip(columns, row.values(), strict=True):
            column.append(value)
    return columns


# --- engines ---------------------------------------------------------------------------------
def _engines_script(*args: str) -> subprocess.CompletedProcess[str]:
    script = REPO / "deploy" / "engines.py"
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300
    )


class Engines:
    """Kafka, ClickHouse and PostgreSQL: each engine's CEM_TEST_* endpoint when set, else a
    private instance with its state under `state_dir`, stopped (and purged) by `stop`.

    The live CEM_* endpoints are never used: the ingest always publishes to `touchpoints` and the
    workers join the groups `projections` and `satisfaction`, so a bench there would mix its
    events into a live topic and take partitions from live workers. For the same reason a
    CEM_TEST_ broker must not serve the e2e suite's distributed deployment at the same time.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.endpoints: dict[str, str] = {}
        self.started: list[str] = []

    def start(self) -> None:
        for engine, name in ENDPOINTS.items():
            given = os.environ.get(f"CEM_TEST_{name}")
            self.endpoints[engine] = given or self._start(engine)
            say(f"  {engine}: {self.endpoints[engine]}{' (CEM_TEST_)' if given else ''}")

    def _start(self, engine: str) -> str:
        self.started.append(engine)  # a failed start may still leave a process to stop
        state = str(self.state_dir / engine)
        done = _engines_script("start", engine, "--state-dir", state, "--prefix", "")
        if done.returncode != 0:
            raise RuntimeError(f"{engine} did not start: {done.stderr.strip()}")
        return parse_endpoint(done.stdout)[ENDPOINTS[engine]]

    def peak_rss(self) -> dict[str, int | None]:
        found = {}
        for engine in self.started:
            pid_file = self.state_dir / engine / "pid"
            if pid_file.exists():
                found[engine] = peak_rss(int(pid_file.read_text()))
        return found

    def stop(self, purge: bool) -> None:
        for engine in reversed(self.started):
            state = str(self.state_dir / engine)
            purging = ["--purge"] if purge else []
            done = _engines_script("stop", engine, "--state-dir", state, *purging)
            if done.returncode != 0:
                say(f"stopping {engine} failed: {done.stderr.strip()}")


# --- raw limits ------------------------------------------------------------------------------
def raw_limits(plan: DistributedPlan, endpoints: Mapping[str, str]) -> dict[str, Any]:
    say("phase 1: raw limits")
    outgoing = validated(list(demo_events(plan.seed + 100, 2_000)))
    records = [o.record for o in outgoing]
    before = load_average()[0]
    say(f"  Kafka's ProducerPerformance: {plan.perf_records:,} records of 600 bytes, acks=all")
    perf = kafka_perf.run(REPO / "deploy" / "kafka" / "lib", endpoints["kafka"], PARTITIONS,
                          plan.perf_records)  # fmt: skip
    perf["load"] = (before, load_average()[0])
    say(f"    {perf.get('rate', perf.get('error'))}")
    before = load_average()[0]
    return {
        "kafka_perf_tool": perf,
        "kafka_produce": raw_produce(endpoints["kafka"], records, plan.raw_produce_rows),
        **raw_clickhouse(endpoints["clickhouse"], records, plan),
        "load": (before, load_average()[0]),
    }


def raw_produce(bootstrap: str, records: Sequence[Record], rows: int) -> dict[str, Any]:
    """kafka-python itself with the ingest's producer settings (acks=all, idempotence, linger),
    to a scratch topic of the same partitions; each batch waits for every acknowledgement, as
    `KafkaLog.append` does for one ingest request."""
    # The raw client on purpose: this is the ceiling the adapter is compared with.
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    from cem.adapters.kafka_log import KafkaLog, producer_config

    prefix = f"bench-raw-{uuid.uuid4().hex[:8]}-"
    scratch = KafkaLog(bootstrap, partitions=PARTITIONS, timeout_s=30, topic_prefix=prefix)
    topic, partitions = scratch.physical(TOUCHPOINTS_TOPIC), scratch.ensure_topic(TOUCHPOINTS_TOPIC)
    scratch.close()
    batches = [list(records[i : i + LOG_BATCH]) for i in range(0, len(records), LOG_BATCH)]
    producer = KafkaProducer(**producer_config(bootstrap, timeout_s=30))
    try:
        _send_acknowledged(producer, topic, partitions, batches[0])  # producer id, metadata
        elapsed = sum(
            _timed(_send_acknowledged, producer, topic, partitions, batches[n % len(batches)])
            for n in range(rows // LOG_BATCH)
        )
    finally:
        producer.close(timeout=30)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.delete_topics([topic])
        admin.close()
    size = sum(len(r.value) for r in records) / len(records)
    return {
        "rows": rows,
        "batch": LOG_BATCH,
        "mean_value_bytes": size,
        "partitions": partitions,
        "seconds": elapsed,
        "rate": per_second(rows, elapsed),
    }


def _send_acknowledged(producer: Any, topic: str, partitions: int, batch: list[Record]) -> None:
    futures = [
        producer.send(
            topic,
            key=r.key,
            value=r.value,
            headers=list(r.headers),
            partition=partition_for(r.key, partitions),
        )
        for r in batch
    ]
    for future in futures:
        future.get(timeout=30)


def raw_clickhouse(url: str, records: Sequence[Record], plan: DistributedPlan) -> dict[str, Any]:
    """clickhouse-driver itself: native column blocks of 10,000 timeline-shaped rows into a
    scratch MergeTree (rows built outside the clock), then point queries on its sorting key."""
    from clickhouse_driver import Client  # the raw client on purpose, as for Kafka

    from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse

    database = f"bench_raw_{uuid.uuid4().hex[:8]}"
    scratch = ClickHouseWarehouse(url, database=database)
    client = Client.from_url(with_database(url, database))
    try:
        scratch.command(RAW_TABLE)
        templates = [to_timeline_rows(decode(r.value))[0] for r in records]
        result: dict[str, Any] = {
            "clickhouse_insert": _raw_inserts(client, templates, plan.raw_insert_rows)
        }
        # A raw limit is the engine's best case: merged parts, as a table settles to when idle.
        scratch.command("OPTIMIZE TABLE raw_timeline FINAL")
        customers = max(1, plan.raw_insert_rows // 20)
        result["clickhouse_point_query"] = _raw_point_queries(client, customers, plan)
        result["clickhouse_version"] = ".".join(map(str, scratch.version))
        return result
    finally:
        client.disconnect()
        scratch.drop_database()
        scratch.close()


def _raw_inserts(client: Any, templates: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    insert = f"INSERT INTO raw_timeline ({', '.join(templates[0])}) VALUES"
    customers, elapsed = max(1, rows // 20), 0.0
    for start in range(0, rows, INSERT_BATCH):
        block = timeline_columns(templates, start, min(INSERT_BATCH, rows - start), customers)
        elapsed += _timed(_insert_columns, client, insert, block)
    return {
        "rows": rows,
        "batch": INSERT_BATCH,
        "seconds": elapsed,
        "rate": per_second(rows, elapsed),
    }


def _insert_columns(client: Any, insert: str, block: list[list[Any]]) -> None:
    client.execute(insert, block, columnar=True)


def _raw_point_queries(client: Any, customers: int, plan: DistributedPlan) -> dict[str, Any]:
    from cem.adapters.clickhouse_warehouse import translate

    rng = Random(plan.seed)
    queries = [
        translate(POINT_QUERY, {"tenant_id": TENANT, "customer_id": f"c{rng.randrange(customers)}"})
        for _ in range(plan.point_queries)
    ]
    latencies = [_timed(client.execute, sql, params) for sql, params in queries]
    return asdict(Latency.of(latencies)) | {"rows_per_key": 20}


# --- the services ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RoutedTarget(Target):
    """Events to the ingest service, reads to the query API: what an ingress in front of the two
    routes by path. `url` (which `drive` reports) is the ingest's."""

    read_url: str = ""

    def client(self, role: str) -> httpx.Client:
        if role == "ingest":
            return super().client(role)
        return Target(self.read_url, self.ingest_key, self.read_key).client(role)


class Services:
    """`cem serve ingest|query-api|projections|satisfaction`, one subprocess each, on a
    ClickHouse database of this run's own."""

    def __init__(self, run_dir: Path, endpoints: Mapping[str, str]) -> None:
        from cem.adapters.kafka_log import KafkaLog

        self.run_dir = run_dir
        self.database = f"bench_{uuid.uuid4().hex[:8]}"
        self.clickhouse_url = with_database(endpoints["clickhouse"], self.database)
        self.env = service_env(os.environ, endpoints, self.clickhouse_url, run_dir / "data")
        self.ports = {service: free_port() for service in (*WORKERS, *HTTP_SERVICES)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log = KafkaLog(endpoints["kafka"], partitions=PARTITIONS)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self) -> RoutedTarget:
        ingest_key, read_key = self._key("ingest"), self._key("manager")
        # The workers first: each creates its tables before its health page answers.
        for service in (*WORKERS, *HTTP_SERVICES):
            self.processes[service] = self._spawn(service)
        for service in self.processes:
            self._wait_healthy(service)
        return RoutedTarget(self.url("ingest"), ingest_key, read_key, self.url("query-api"))

    def _key(self, role: str) -> str:
        """A key made the way an operator makes one: `cem keys create` (PostgreSQL)."""
        command = ["keys", "create", "--data-dir", str(self.run_dir / "data"), "--tenant", TENANT]
        done = subprocess.run(
            [sys.executable, "-m", "cem.cli", *command, "--role", role],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"cem keys create failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def _spawn(self, service: str) -> subprocess.Popen[bytes]:
        where = "--port" if service in HTTP_SERVICES else "--health-port"
        command = ["serve", service, where, str(self.ports[service])]
        with (self.run_dir / f"{service}.log").open("ab") as log:
            # Its own session: a ^C of the bench reaches it only through stop().
            return subprocess.Popen(
                [sys.executable, "-m", "cem.cli", *command],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def _wait_healthy(self, service: str) -> None:
        wait_until_serving(self.url(service), START_WITHIN_S, lambda: self._check_running(service))

    def _check_running(self, service: str) -> None:
        process = self.processes[service]
        if process.poll() is not None:
            log = self.run_dir / f"{service}.log"
            raise RuntimeError(f"{service} exited ({process.returncode}); see {log}")

    def lag(self) -> dict[str, int]:
        """Records on the topic that a worker group has not committed yet, per group."""
        lag = {}
        for group in WORKERS:  # the filing stage first: it appends before it commits
            self._check_running(group)
            ends = self.log.end_offsets(SOURCE_TOPIC[group])
            committed = self.log.committed(SOURCE_TOPIC[group], group)
            lag[group] = sum(max(0, end - committed.get(p, 0)) for p, end in ends.items())
        return lag

    def wait_idle(self, timeout_s: float = 900.0) -> None:
        """Until both groups committed every record: a worker commits only after its writes."""
        deadline = time.monotonic() + timeout_s
        while any((lag := self.lag()).values()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not catch up: lag {lag}")
            time.sleep(0.2)

    def peak_rss(self) -> dict[str, int | None]:
        return {service: peak_rss(process.pid) for service, process in self.processes.items()}

    def stop(self) -> None:
        processes, self.processes = list(self.processes.values()), {}
        stop_processes(processes)
        self.log.close()


# --- background load -------------------------------------------------------------------------
def produce_background(plan: DistributedPlan, queue: Any) -> None:
    """The embedded bench's producer (generate and validate in a process of its own), except
    that the heavy customer gets one event in ten until it has all of them: a load cut short by
    the budget still has the whole heavy customer."""
    heavy_left = plan.heavy_events
    for n, chunk in enumerate(batched(demo_events(plan.seed, plan.events), LOG_BATCH)):
        for i, raw in enumerate(chunk, start=n * LOG_BATCH):
            if heavy_left and i % HEAVY_EVERY == HEAVY_EVERY - 1:
                raw["customer"] = {"customer_id": plan.heavy_customer}
                heavy_left -= 1
        queue.put(validated(chunk))
    queue.put(None)
    queue.put({"producer_peak_rss_bytes": peak_rss()})


def load_background(
    plan: DistributedPlan, services: Services, endpoints: Mapping[str, str], budget_s: float
) -> dict[str, Any]:
    """Publish through the ingest's own publisher (built by its composition root) while the
    real workers consume; the clock runs from the first batch until both groups are done."""
    from cem.distributed import build_ingest

    say(f"phase 3: background load, up to {plan.events:,} events in {budget_s:.0f} s")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    producer = ctx.Process(target=produce_background, args=(plan, queue), name="bench-producer")
    producer.start()
    settings = IngestSettings(
        mode="distributed", kafka_bootstrap=endpoints["kafka"],
        postgres_dsn=SecretStr(endpoints["postgres"]), partitions=PARTITIONS,
    )  # fmt: skip
    ingest = build_ingest(settings)
    try:
        publish = ingest.publisher.publish
        loaded = _publish_within(publish, queue, producer, services, plan.events, budget_s)
        if not loaded["cut_short"]:
            loaded.update(queue.get(timeout=60))
    finally:
        ingest.close()
        if producer.is_alive():
            producer.terminate()
        producer.join(30)
    return loaded | {"requested": plan.events, "budget_s": budget_s}


def _publish_within(
    publish: Callable[[Any], Any],
    queue: Any,
    producer: Any,
    services: Services,
    requested: int,
    budget_s: float,
) -> dict[str, Any]:
    batch = _next_batch(queue, producer)
    published, publishing, cut_short = 0, 0.0, False
    started = checked = time.perf_counter()
    while batch is not None:
        publishing += _timed(publish, batch)
        published += len(batch)
        if time.perf_counter() - checked > CHECK_EVERY_S:
            checked = time.perf_counter()
            lag = services.lag()
            say(f"  published {published:,}, lag {lag}")
            if past_budget(checked - started, published, lag, budget_s):
                cut_short = True
                break
        batch = _next_batch(queue, producer)
    done_publishing = time.perf_counter()
    services.wait_idle()
    drained = time.perf_counter()
    note = f" (cut short by the {budget_s:.0f} s budget)" if cut_short else ""
    say(f"  loaded {published:,} of {requested:,} events in {drained - started:.0f} s{note}")
    return {
        "events": published,
        "cut_short": cut_short,
        "seconds": drained - started,
        "rate": per_second(published, drained - started),
        "publish_seconds": publishing,
        "publish_rate": per_second(published, publishing),
        "drain_after_publish_seconds": drained - done_publishing,
    }


def warehouse_queries(services: Services, plan: DistributedPlan) -> dict[str, Any]:
    """The API's timeline and satisfaction queries straight through the warehouse adapter."""
    from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse

    warehouse = ClickHouseWarehouse(services.clickhouse_url, database=services.database)
    try:
        result = raw_queries(warehouse, plan)
        count = "SELECT count() AS n FROM customer_timeline"
        result["timeline_rows"] = warehouse.select(count)[0]["n"]
        return result
    finally:
        warehouse.close()


# --- the run ---------------------------------------------------------------------------------
def measure(
    plan: DistributedPlan, run_dir: Path, engines: Engines, started: float
) -> dict[str, Any]:
    """Every phase after the engines; the services are stopped whatever happens."""
    raw = raw_limits(plan, engines.endpoints)
    stages = stage_costs_or_error(plan, run_dir)
    say("phase 2: the services")
    services = Services(run_dir, engines.endpoints)
    try:
        target = services.start()
        budget = load_budget(time.perf_counter() - started)
        before = load_average()[0]
        load = load_background(plan, services, engines.endpoints, budget)
        load |= warehouse_queries(services, plan)
        load["load"] = (before, load_average()[0])
        say("phase 4: over HTTP")
        templates = list(demo_events(plan.seed + 200, 1_000, customers=300))
        with SqlTimer(services) as raw_sql:
            api = drive(target, plan, templates, services.wait_idle, services.lag, raw_sql)
        api["read_url"] = target.read_url
        rss = {**services.peak_rss(), **engines.peak_rss(), "bench": peak_rss()}
    finally:
        services.stop()
    return {"raw": raw, "load": load, "api": api, "stages": stages, "peak_rss_bytes": rss}


class SqlTimer:
    """The query API's SQL sent to ClickHouse by this process through the same adapter, timed
    here: beside each API request, in the same phase (bench/sustained.py)."""

    def __init__(self, services: Services) -> None:
        from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse

        self.warehouse = ClickHouseWarehouse(services.clickhouse_url, database=services.database)

    def __enter__(self) -> Callable[[str, dict[str, Any]], float | None]:
        return self.timed

    def __exit__(self, *exc: object) -> None:
        self.warehouse.close()

    def timed(self, sql: str, params: dict[str, Any]) -> float | None:
        started = time.perf_counter()
        self.warehouse.select(sql, params)
        return time.perf_counter() - started


def summary_rows(result: Mapping[str, Any]) -> list[Row]:
    raw, load, api = result["raw"], result["load"], result["api"]
    perf = raw["kafka_perf_tool"]
    produce, point = raw["kafka_produce"]["rate"], raw["clickhouse_point_query"]
    tool = perf.get("rate")
    loaded = f"{load['events']:,}"
    if load["cut_short"]:
        loaded += f" of {load['requested']:,} requested"
    rows = [
        Row("Kafka ProducerPerformance (600 B records, acks=all, 12 partitions)", tool or 0,
            "ev/s", load=perf.get("load")) if tool else
        Row(f"Kafka ProducerPerformance not run: {perf.get('error', '')[:80]}", 0, "count"),
        Row("kafka-python, the ingest's producer settings, 1,000/batch", produce, "ev/s",
            raw_name="perf tool", raw_value=tool, load=raw["load"]),
        Row("raw ClickHouse insert (native, 10k/batch)", raw["clickhouse_insert"]["rate"],
            "rows/s", load=raw["load"]),
        Row("raw ClickHouse point query p99 (scratch table)", point["p99"], "s", load=raw["load"]),
        Row(f"background load ({loaded} demo events)", load["rate"], "ev/s",
            raw_name="perf tool", raw_value=tool, load=load["load"]),
        Row("  of which publish (ingest's publisher)", load["publish_rate"], "ev/s",
            raw_name="perf tool", raw_value=tool, load=load["load"]),
        *realistic_rows(api, 10_000, "perf tool", tool or produce),
        *stage_rows(result["stages"]),
        *extra_rows(api, tool or produce),
    ]  # fmt: skip
    rss = result["peak_rss_bytes"]
    return rows + [Row(f"peak RSS, {name}", rss[name] or 0, "bytes") for name in rss]


def output_path(args: argparse.Namespace) -> str:
    out: str | None = getattr(args, "out", None)
    return str(out) if out else DEFAULT_OUT


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop everything


def main(args: argparse.Namespace) -> int:
    generic = plan_for(args)
    if generic.quick:
        plan = DistributedPlan.quick_plan()
    else:
        plan = DistributedPlan.for_events(generic.events)
    events = plan.events
    run_dir = fresh_run_dir(args.data_dir)
    say(f"data in {run_dir}; up to {events:,} background events, {PARTITIONS} partitions")
    started, started_at, revision = time.perf_counter(), datetime.now(UTC), commit()
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if on_main else None
    engines, finished = Engines(run_dir / "engines"), False
    try:
        say("phase 0: engines")
        engines.start()
        result = measure(plan, run_dir, engines, started)
        finished = True
    except RuntimeError as exc:
        say(f"failed: {exc}\n(logs are kept in {run_dir})")
        return 1
    finally:
        engines.stop(purge=finished)  # on failure the engines' logs stay in the run directory
        if on_main:
            signal.signal(signal.SIGTERM, previous)
    rows = summary_rows(result)
    table = heading("--distributed", plan, started_at, revision) + "\n" + render_table(rows)
    print(table, flush=True)
    if "text" in result["stages"]:
        print("\nembedded pipeline's stages (the same code but publish):\n"
              + result["stages"]["text"], flush=True)  # fmt: skip
    if result["load"]["cut_short"]:
        print(f"note: background load cut to {result['load']['events']:,} of {events:,} events "
              f"to end the run within {RUN_BUDGET_S / 60:.0f} minutes", flush=True)  # fmt: skip
    report = {
        "benchmark": "distributed",
        "commit": revision,
        "started_at": started_at.isoformat(),
        "wall_seconds": time.perf_counter() - started,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "run_dir": str(run_dir),
        "deployment": {"partitions": PARTITIONS, "engines_started": engines.started}
        | {service: 1 for service in (*HTTP_SERVICES, *WORKERS)},
        "plan": {k: v for k, v in asdict(plan).items() if k not in EMBEDDED_ONLY},
        "metrics": [row.as_dict() for row in rows],
        **result,
        "table": table,
    }
    say(f"results written to {write_json(output_path(args), report)}")
    if not getattr(args, "keep", False):
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.distributed`, the same as `cem bench --distributed`."""
    return main(bench_parser("python -m bench.distributed", DEFAULT_OUT).parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(cli())

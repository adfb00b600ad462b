"""The distributed deployment of the end-to-end suite: every service its own process on the real
engines, started the way an operator starts them (`cem keys create`, `cem serve SERVICE`).

Isolation: the warehouse is a ClickHouse database of the deployment's own (the URL's path), and
with identity on, the identity store a PostgreSQL schema of the same name. The
Kafka names are not configurable: the ingest always publishes to `touchpoints`, and a worker's
consumer group is its projection's name. So one distributed deployment at a time may use a
broker; the e2e conftest starts it per package, and it is stopped before the integration tests'
own workers join those groups. Tests keep their data apart by tenant and random customer ids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from cem.adapters.kafka_log import KafkaLog
from cem.serving import free_port, stop_processes
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, LogUnavailable, Record
from tests.e2e.deployments import (
    TENANT_A,
    TENANT_B,
    _cem,
    _spawn,
    _tail,
    _wait_healthy,
    create_keys,
    dump_warehouse,
)

PARTITIONS = 4
HTTP_SERVICES = ("ingest", "query-api")
WORKERS = ("filing", "projections", "satisfaction")  # each one's consumer group is its name
# What each worker group reads: the filing stage the touchpoints, the projections its filings.
SOURCE_TOPIC = {
    "filing": TOUCHPOINTS_TOPIC,
    "projections": FILINGS_TOPIC,
    "satisfaction": FILINGS_TOPIC,
    # The filing worker's thread deleting each erasure's rows after the projections stored what
    # came before it (`cem.faust_worker.erased_rows`): last, as it waits for the two above.
    "erased-rows": FILINGS_TOPIC,
}
START_WITHIN_S = 180.0


def with_database(url: str, database: str) -> str:
    """The ClickHouse URL naming `database` (the services read and write the URL's path)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


class DistributedDeployment:
    """`cem serve ingest|query-api|projections|satisfaction`, one subprocess each."""

    name = "distributed"

    def __init__(
        self,
        work_dir: Path,
        kafka_bootstrap: str,
        clickhouse_url: str,
        postgres_dsn: str,
        tenants: tuple[str, str] = (TENANT_A, TENANT_B),
        identity: str = "rule",
    ) -> None:
        self.work_dir, self.tenants, self.identity = work_dir, tenants, identity
        self.kafka_bootstrap, self.postgres_dsn = kafka_bootstrap, postgres_dsn
        self.database = f"e2e_{uuid.uuid4().hex[:12]}"
        self.clickhouse_url = with_database(clickhouse_url, self.database)
        self.ports = {service: free_port() for service in (*HTTP_SERVICES, *WORKERS)}
        self.urls = {s: f"http://127.0.0.1:{port}" for s, port in self.ports.items()}
        self.base_url, self.ingest_url = self.urls["query-api"], self.urls["ingest"]
        self.env = self._environment(postgres_dsn)
        self.keys: dict[tuple[str, str], str] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._log: KafkaLog | None = None

    def _environment(self, postgres_dsn: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CEM_")}
        identity = {"CEM_IDENTITY": self.identity}
        if self.identity == "eventsourced":
            identity["CEM_IDENTITY_POSTGRES_SCHEMA"] = self.database
        return {
            **inherited,
            **identity,
            "CEM_MODE": "distributed",
            "CEM_DATA_DIR": str(self.work_dir / "data"),  # the workers' faust directories
            "CEM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CEM_CLICKHOUSE_URL": self.clickhouse_url,
            "CEM_POSTGRES_DSN": postgres_dsn,
            "CEM_PARTITIONS": str(PARTITIONS),
            "CEM_PUBLISH_TIMEOUT_S": "3",  # F01: a 503 within the bound while Kafka is down
            "CEM_BATCH_WITHIN_S": "0.2",
            "CEM_WORKER_SESSION_TIMEOUT_S": "6",
        }

    def key(self, tenant: str, role: str) -> str:
        return self.keys[(tenant, role)]

    def cli(self, *args: str) -> str:
        return _cem(*args, "--data-dir", str(self.work_dir / "data"), env=self.env)

    def log_path(self, service: str) -> Path:
        return self.work_dir / f"{service}.log"

    def stored_paths(self) -> list[Path]:
        return [self.work_dir]  # the services' logs and the workers' directories

    def running(self, service: str) -> bool:
        process = self.processes.get(service)
        return process is not None and process.poll() is None

    # -- operator actions ---------------------------------------------------------------------
    def start(self) -> None:
        if not self.keys:
            self.keys = create_keys(self.work_dir / "data", self.tenants, self.env)
        if self.identity == "eventsourced":
            self._postgres("CREATE SCHEMA IF NOT EXISTS {}")
        # The workers first: each creates the tables before its health page answers.
        for service in (*WORKERS, *HTTP_SERVICES):
            self.processes[service] = self._spawn(service)
        for service, process in self.processes.items():
            _wait_healthy(self.urls[service], process, self.log_path(service), START_WITHIN_S)

    def _spawn(self, service: str) -> subprocess.Popen[bytes]:
        port = str(self.ports[service])
        where = ["--port", port] if service in HTTP_SERVICES else ["--health-port", port]
        return _spawn(["serve", service, *where], self.log_path(service), env=self.env)

    def stop(self) -> None:
        processes, self.processes = list(self.processes.values()), {}
        stop_processes(processes)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL every service process (a crash of the whole deployment)."""
        processes, self.processes = list(self.processes.values()), {}
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def drop_database(self) -> None:
        """Delete the deployment's warehouse database and identity schema."""
        warehouse = ClickHouseWarehouse(self.clickhouse_url, database=self.database)
        try:
            warehouse.drop_database()
        finally:
            warehouse.close()
        if self.identity == "eventsourced":
            self._postgres("DROP SCHEMA IF EXISTS {} CASCADE")

    def _postgres(self, statement: str) -> None:
        """Run a statement about the deployment's own schema (`{}`: its name)."""
        query = sql.SQL(statement).format(sql.Identifier(self.database))
        with psycopg.connect(self.postgres_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(query)

    def log_records(self, topic: str) -> list[Record]:
        """Read from the first offset by a consumer group of its own, which commits nothing."""
        if self._log is None:
            self._log = KafkaLog(self.kafka_bootstrap, partitions=PARTITIONS)
        group, ends = f"e2e-reader-{uuid.uuid4().hex[:8]}", self._log.end_offsets(topic)
        seen: dict[int, int] = {}
        records: list[Record] = []
        while any(seen.get(p, 0) < end for p, end in ends.items()):
            batch = self._log.poll(topic, group, 5000, 5.0)
            if not batch:
                break
            for record in batch:
                seen[record.partition] = record.offset + 1
                records.append(Record(record.key, record.value, record.headers))
        return records

    # -- progress -----------------------------------------------------------------------------
    def lag(self) -> dict[str, int]:
        """Records on the topic that a worker group has not committed yet, per group."""
        if self._log is None:
            self._log = KafkaLog(self.kafka_bootstrap, partitions=PARTITIONS)
        lag = {}
        for group in SOURCE_TOPIC:  # the filing stage first: it appends before it commits
            ends = self._log.end_offsets(SOURCE_TOPIC[group])
            committed = self._log.committed(SOURCE_TOPIC[group], group)
            lag[group] = sum(max(0, end - committed.get(p, 0)) for p, end in ends.items())
        return lag

    def wait_processed(self, timeout_s: float = 60.0) -> None:
        """Until both workers' groups committed every record on the topic: a worker commits only
        after its rows are written, so then every acknowledged event is in the tables."""
        deadline, last = time.monotonic() + timeout_s, "not asked yet"
        while time.monotonic() < deadline:
            self._check_workers()
            try:
                lag = self.lag()
            except LogUnavailable as exc:  # the broker may be restarting (F02)
                last = str(exc)
            else:
                if not any(lag.values()):
                    return
                last = str(lag)
            time.sleep(0.2)
        raise AssertionError(f"still lagging after {timeout_s}s: {last}")

    def _check_workers(self) -> None:
        for service in WORKERS:
            if service in self.processes and not self.running(service):
                code = self.processes[service].returncode
                raise AssertionError(f"{service} exited ({code}):\n{_tail(self.log_path(service))}")

    def health(self, service: str) -> httpx.Response:
        return httpx.get(f"{self.urls[service]}/health", timeout=5.0)

    # -- F13 is the embedded mode's: `cem replay` reads the SQLite log ---------------------------
    def replay(self, into: str) -> None:
        """`cem replay --into` on the ClickHouse server: the whole `filings` topic (the session's
        other deployments' records too) into database `into`, while the services run."""
        self.cli("replay", "--into", into)

    def table_rows(self, database: str) -> dict[str, list[str]]:
        warehouse = ClickHouseWarehouse(with_database(self.clickhouse_url, database), database)
        try:
            return dump_warehouse(warehouse, database)
        finally:
            warehouse.close()

    def drop_replayed(self, database: str) -> None:
        """Drop a database `replay` made (the deployment's own is `drop_database`'s)."""
        warehouse = ClickHouseWarehouse(with_database(self.clickhouse_url, database), database)
        try:
            warehouse.drop_database()
        finally:
            warehouse.close()

    @contextmanager
    def serve_database(self, database: str) -> Iterator[str]:
        """A query API of its own over `database` (a replay's), beside the running services: the
        same keys, identity store and audit; the ClickHouse database is the only difference."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = self.env | {"CEM_CLICKHOUSE_URL": with_database(self.clickhouse_url, database)}
        log_path = self.work_dir / f"query-api-{database}.log"
        process = _spawn(["serve", "query-api", "--port", str(port)], log_path, env=env)
        try:
            _wait_healthy(url, process, log_path, START_WITHIN_S)
            yield url
        finally:
            stop_processes([process])

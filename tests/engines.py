"""Real Kafka, ClickHouse and PostgreSQL for tests, found or started once per test session.

Each engine's endpoint comes, in order, from
1. the environment: CEM_TEST_KAFKA_BOOTSTRAP, CEM_TEST_CLICKHOUSE_URL, CEM_TEST_POSTGRES_DSN;
2. testcontainers, when a Docker engine answers;
3. the project's own scripts (deploy/engines.py, after .ci/provision.sh): private processes on
   free ports, stopped and deleted at the end of the session.
If none works the test skips locally and fails under CI (`missing_service`). A failed start is
remembered, so the session does not wait for it again in every test.

Fixtures: `engines`, `kafka_bootstrap`, `clickhouse_url`, `postgres_dsn`, `clickhouse_warehouse`.
They live here so any test folder can use them: `from tests.engines import clickhouse_url, engines`
in a test module or conftest, or `pytest_plugins = ["tests.engines"]` in the top conftest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from tests.conftest import missing_service

ENGINES_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "engines.py"
ENV = {
    "kafka": "CEM_TEST_KAFKA_BOOTSTRAP",
    "clickhouse": "CEM_TEST_CLICKHOUSE_URL",
    "postgres": "CEM_TEST_POSTGRES_DSN",
}
# Images for the testcontainers path (Kafka 3.9 in KRaft mode; a current ClickHouse LTS).
IMAGES = {
    "kafka": os.environ.get("CEM_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.0"),
    "clickhouse": os.environ.get("CEM_TEST_CLICKHOUSE_IMAGE", "clickhouse/clickhouse-server:24.8"),
    "postgres": os.environ.get("CEM_TEST_POSTGRES_IMAGE", "postgres:15"),
}
_PRINTED = {"kafka": "KAFKA_BOOTSTRAP", "clickhouse": "CLICKHOUSE_URL", "postgres": "POSTGRES_DSN"}


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no daemon, refused: all mean "no Docker here"
        return False


def _container(engine: str) -> Any:
    if engine == "kafka":
        from testcontainers.kafka import KafkaContainer

        return KafkaContainer(IMAGES["kafka"]).with_kraft()
    if engine == "clickhouse":
        from testcontainers.community.clickhouse import ClickHouseContainer

        return ClickHouseContainer(IMAGES["clickhouse"])
    from testcontainers.postgres import PostgresContainer

    return PostgresContainer(IMAGES["postgres"])


def _container_endpoint(engine: str, container: Any) -> str:
    if engine == "kafka":
        return str(container.get_bootstrap_server())
    if engine == "postgres":
        return str(container.get_connection_url(driver=None))
    return str(container.get_connection_url())


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ENGINES_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


class Engines:
    """The session's engines: each found or started once, all stopped by close()."""

    def __init__(self) -> None:
        self._endpoints: dict[str, str] = {}
        self._failures: dict[str, str] = {}
        self._local: dict[str, Path] = {}
        self._cleanups: list[Callable[[], None]] = []

    def endpoint(self, engine: str) -> str:
        """The engine's endpoint, or skip (locally) / fail (under CI) the calling test."""
        if engine not in self._endpoints and engine not in self._failures:
            try:
                self._endpoints[engine] = self._find(engine)
            except Exception as exc:  # any way a start fails is reported the same way
                self._failures[engine] = f"{engine}: {exc}"
        if engine in self._failures:
            missing_service(self._failures[engine])
        return self._endpoints[engine]

    def _find(self, engine: str) -> str:
        if os.environ.get(ENV[engine]):
            return os.environ[ENV[engine]]
        if docker_answers():
            container = _container(engine).start()
            self._cleanups.append(container.stop)
            return _container_endpoint(engine, container)
        return self._start_local(engine)

    def _start_local(self, engine: str) -> str:
        # Under /tmp, not pytest's 0700 tmp dirs: PostgreSQL runs as `postgres` when we are root.
        state = Path(tempfile.mkdtemp(prefix=f"cem-test-{engine}-"))
        self._cleanups.append(lambda: self._stop_local(engine, state))
        started = _script("start", engine, "--state-dir", str(state), "--prefix", "")
        if started.returncode != 0:
            why = started.stderr.strip() or started.stdout.strip()
            raise RuntimeError(f"{why.removeprefix(f'engines: {engine}: ')} (or set {ENV[engine]})")
        self._local[engine] = state
        values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
        return values[_PRINTED[engine]]

    @staticmethod
    def _stop_local(engine: str, state: Path) -> None:
        _script("stop", engine, "--state-dir", str(state), "--purge")
        shutil.rmtree(state, ignore_errors=True)

    # -- fault injection: only on engines this session started from deploy/ ---------------
    def _local_state(self, engine: str) -> Path:
        self.endpoint(engine)
        if engine not in self._local:
            # A fault test skipped under CI would hide the fault it exists to test: fail there.
            missing_service(
                f"{engine} was not started by this session (CEM_TEST_* or a container), "
                "so it cannot be killed here"
            )
        return self._local[engine]

    def state_dir(self, engine: str) -> Path:
        """Where a local engine this session started keeps everything it stores (skips locally,
        fails under CI, for an engine it did not start)."""
        return self._local_state(engine)

    def kill(self, engine: str) -> None:
        """SIGKILL the engine (a crash); `restart` brings it back on the same port and data."""
        state = self._local_state(engine)
        result = _script("kill", engine, "--state-dir", str(state))
        assert result.returncode == 0, result.stderr

    def restart(self, engine: str) -> None:
        state = self._local_state(engine)
        result = _script("start", engine, "--state-dir", str(state), "--prefix", "")
        assert result.returncode == 0, result.stderr

    def close(self) -> None:
        while self._cleanups:
            try:
                self._cleanups.pop()()
            except Exception as exc:  # keep stopping the others
                print(f"engines: cleanup failed: {exc}", file=sys.stderr)
        self._endpoints.clear()
        self._local.clear()


_SESSION = Engines()


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """The session's engines; everything this session started is stopped when it ends."""
    yield _SESSION
    _SESSION.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(engines: Engines) -> str:
    """host:port of a Kafka broker (KRaft)."""
    return engines.endpoint("kafka")


@pytest.fixture(scope="session")
def clickhouse_url(engines: Engines) -> str:
    """clickhouse://[user:password@]host:port/database of a ClickHouse server (native protocol)."""
    return engines.endpoint("clickhouse")


@pytest.fixture(scope="session")
def postgres_dsn(engines: Engines) -> str:
    """postgresql://user@host:port/database of a PostgreSQL server, with a database to use."""
    return engines.endpoint("postgres")


@pytest.fixture
def clickhouse_warehouse(clickhouse_url: str) -> Iterator[ClickHouseWarehouse]:
    """A fresh, empty database on the ClickHouse server for one test, dropped afterwards."""
    warehouse = ClickHouseWarehouse(clickhouse_url, database=f"t_{uuid.uuid4().hex[:12]}")
    yield warehouse
    warehouse.drop_database()
    warehouse.close()

"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from cem.adapters.chdb_warehouse import ChdbWarehouse

# Tests never assert wall-clock time (HOUSE_STYLE): hypothesis' per-example deadline would fail a
# property test on a loaded machine for speed alone, so it is off everywhere.
settings.register_profile("cem", deadline=None)
settings.load_profile("cem")


def missing_service(reason: str) -> None:
    """A test that needs a real service skips locally, but fails under CI (HOUSE_STYLE)."""
    if os.environ.get("CI"):
        pytest.fail(f"required service unavailable under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # chdb allows one data path per process: every test shares it, each in its own database.
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def warehouse(chdb_path: Path) -> Iterator[ChdbWarehouse]:
    """A fresh, empty chdb database for one test."""
    wh = ChdbWarehouse(chdb_path, database=f"t_{uuid.uuid4().hex[:12]}")
    yield wh
    wh.drop_database()
    wh.close()


# --- two workers (pytest-xdist, `make test`) ------------------------------------------------------
# Every test that needs a real engine (Kafka, ClickHouse, PostgreSQL, directly or through the
# distributed deployment) runs on one worker, in collection order, as it would alone: only that
# worker starts the engines, and the tests that kill an engine or join the deployment's fixed
# consumer groups never meet another worker's tests there. The embedded end-to-end tests are a
# second unit (their deployment and browser start once). Every other test is a unit of its own,
# given to whichever worker is free. The workers tell the controller which tests need an engine
# (they see fixtures; it sees only node ids) in a file named by `pytest_configure_node`.
ENGINE_FIXTURES = frozenset(
    {"engines", "kafka_bootstrap", "clickhouse_url", "postgres_dsn", "clickhouse_warehouse"}
)
ENGINE_MARKS = ("kafka", "clickhouse", "postgres")
# A warehouse or store chosen by parameter (`request.getfixturevalue`) shows in the test's id.
ENGINE_PARAM = re.compile(r"\[.*\b(clickhouse|postgres|pg|kafka|distributed)\b.*\]", re.I)
ENGINE_UNIT = "needs an engine"
EMBEDDED_E2E_UNIT = "tests/e2e"
_ENGINE_TESTS_KEY = "cem_engine_tests"
_ENGINE_TESTS_DIR = pytest.StashKey[Path]()


def needs_engine(item: pytest.Item) -> bool:
    return (
        bool(ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())))
        or any(item.get_closest_marker(m) for m in ENGINE_MARKS)
        or bool(ENGINE_PARAM.search(item.nodeid))
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    stash = node.config.stash
    if _ENGINE_TESTS_DIR not in stash:
        stash[_ENGINE_TESTS_DIR] = Path(tempfile.mkdtemp(prefix="cem-xdist-"))
    node.workerinput[_ENGINE_TESTS_KEY] = str(stash[_ENGINE_TESTS_DIR] / node.gateway.id)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    target = getattr(config, "workerinput", {}).get(_ENGINE_TESTS_KEY)
    if target:  # a worker: written before it reports its collection, read when scheduling
        partial = Path(f"{target}.partial")
        partial.write_text("".join(f"{i.nodeid}\n" for i in items if needs_engine(i)))
        partial.replace(target)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _ENGINE_TESTS_DIR in config.stash:
        shutil.rmtree(config.stash[_ENGINE_TESTS_DIR], ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "load":  # `-n N` alone; a `--dist` asked for is xdist's
        return None
    from xdist.scheduler import LoadScopeScheduling

    class EnginesOnOneWorker(LoadScopeScheduling):
        engine_tests: frozenset[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.engine_tests is None:
                directory = config.stash[_ENGINE_TESTS_DIR]
                self.engine_tests = frozenset(
                    line for f in directory.iterdir() if not f.name.endswith(".partial")
                    for line in f.read_text().splitlines()
                )  # fmt: skip
            if nodeid in self.engine_tests:  # `needs_engine`, as the workers saw it
                return ENGINE_UNIT
            if nodeid.startswith("tests/e2e/"):
                return EMBEDDED_E2E_UNIT
            return nodeid

        def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
            # xdist 3.8 keeps a worker's finished units: were it to crash, they would all be
            # sent again, empty, and the run would wait for them forever (xdist issue 1313).
            scope = self._split_scope(self.registered_collections[node][item_index])
            super().mark_test_complete(node, item_index, duration)
            units = self.assigned_work[node]
            if scope in units and all(units[scope].values()):
                del units[scope]

    return EnginesOnOneWorker(config, log)


# The real engines' fixtures (kafka_bootstrap, clickhouse_url, postgres_dsn, clickhouse_warehouse,
# engines), available to every test folder.
pytest_plugins = ["tests.engines"]

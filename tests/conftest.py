"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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


# The real engines' fixtures (kafka_bootstrap, clickhouse_url, postgres_dsn, clickhouse_warehouse,
# engines), available to every test folder.
pytest_plugins = ["tests.engines"]

"""Identity decisions are a pure function of the log's order (RELIABILITY D02): the same log of
hazardous touchpoints, filed in other processes with other hash seeds and in batches of other
sizes, through the filing stage both modes' runners use, on a fresh store each time, gives the same
customer for every event, with the same ids. On SQLite (embedded) and PostgreSQL (distributed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parents[2]
# (PYTHONHASHSEED, batch size): one event at a time, odd boundaries, one large batch.
RUNS = (("0", 1), ("1", 7), ("4242", 250))


def file_in_subprocess(
    store: str, hash_seed: str, batch: int, log_seed: int
) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.identity_log", store, str(batch), str(log_seed)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    filed: dict[str, list[str]] = json.loads(done.stdout)
    return filed


def assert_same_filings(new_store: Callable[[], str], log_seed: int) -> None:
    outcomes = [file_in_subprocess(new_store(), seed, batch, log_seed) for seed, batch in RUNS]
    first = outcomes[0]
    assert len(first) == 600
    # Not trivially equal: the hazards fuse and split people into many customers.
    assert 1 < len({now for _, now in first.values()}) < len(first)
    for (seed, batch), other in zip(RUNS[1:], outcomes[1:], strict=True):
        differing = [e for e in first if first[e] != other[e]]
        assert not differing, f"hash seed {seed}, batch {batch}: {len(differing)} events differ"


@pytest.mark.parametrize("log_seed", [3, 11])
def test_the_same_log_gives_the_same_customers_on_sqlite(tmp_path: Path, log_seed: int) -> None:
    paths = iter(tmp_path / f"identity-{n}.sqlite" for n in range(len(RUNS)))
    assert_same_filings(lambda: f"sqlite:{next(paths)}", log_seed)


@pytest.fixture
def fresh_schemas(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """A function giving the store of a new, empty schema on the session's PostgreSQL server."""
    try:
        dsn = str(request.getfixturevalue("postgres_dsn"))
    except pytest.FixtureLookupError:
        missing_service("no postgres_dsn fixture: tests/integration/conftest.py provides it")
    made: list[str] = []

    def new_store() -> str:
        schema = f"determinism_{uuid.uuid4().hex[:12]}"
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        except psycopg.OperationalError as exc:
            missing_service(f"PostgreSQL at the postgres_dsn fixture does not answer: {exc}")
        made.append(schema)
        return f"postgres:{dsn}|{schema}"

    yield new_store
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in made:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.postgres
def test_the_same_log_gives_the_same_customers_on_postgresql(
    fresh_schemas: Callable[[], str],
) -> None:
    assert_same_filings(fresh_schemas, 3)

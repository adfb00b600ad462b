"""Only a damaged SQLite file is reported as one (the CLI's one line: restore it from a backup)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from cem.adapters.postgres import PostgresUnavailable
from cem.adapters.sqlite_damage import damaged_file_report
from kernel.telemetry import error_code


def failure(call: object) -> sqlite3.DatabaseError:
    with pytest.raises(sqlite3.DatabaseError) as raised:
        assert callable(call)
        call()
    return raised.value


def test_a_file_that_is_not_a_database_is_damaged_and_named(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    path.write_bytes(os.urandom(20_000))

    def read() -> None:
        connection = sqlite3.connect(path)
        connection.execute("SELECT * FROM sqlite_master").fetchall()

    report = damaged_file_report(failure(read))
    assert report == f"{path} is damaged (file is not a database): restore it from a backup"


def test_a_bug_is_not_called_a_damaged_file() -> None:
    # A UNIQUE violation or a closed connection was reported "damaged: restore it from a
    # backup", with no traceback (found by a review): they stay bugs.
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (id PRIMARY KEY)")
    connection.execute("INSERT INTO t VALUES (1)")
    assert (
        damaged_file_report(failure(lambda: connection.execute("INSERT INTO t VALUES (1)"))) is None
    )
    connection.close()
    assert damaged_file_report(failure(lambda: connection.execute("SELECT 1"))) is None


def test_a_postgresql_outage_is_counted_under_its_own_code() -> None:
    assert (
        error_code(PostgresUnavailable("PostgreSQL at db:5432/cem: refused")) == "store_unavailable"
    )

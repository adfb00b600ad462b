"""How every small SQLite store of the data directory (keys, accounts, channels, retention, access
audit) opens its file: created owner-only before SQLite touches it, one autocommit connection the
store guards with its own lock, WAL so readers never wait for a writer, then the schema."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cem.adapters.sqlite_log import storage_errors
from kernel.private_files import private_file


def open_private_db(path: Path, schema: str, *pragmas: str) -> sqlite3.Connection:
    """The store's connection, its `pragmas` (e.g. "synchronous = NORMAL") set after WAL; a full
    or read-only disk raises the port's exception, like any later write."""
    with storage_errors(path):
        private_file(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        conn.execute("PRAGMA journal_mode = WAL")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(schema)
    return conn


class PrivateDbStore:
    """A store in one private SQLite file: one connection behind one lock (thread-safe), every
    use of it inside `_db()`, so a full or read-only disk raises the port's exception."""

    def __init__(self, path: Path, schema: str, *pragmas: str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_private_db(self.path, schema, *pragmas)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock, storage_errors(self.path):
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

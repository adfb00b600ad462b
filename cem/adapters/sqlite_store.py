"""How every small SQLite store of the data directory (keys, accounts, channels, retention, access
audit) opens its file: created owner-only before SQLite touches it, one autocommit connection the
store guards with its own lock, WAL so readers never wait for a writer, then the schema."""

from __future__ import annotations

import sqlite3
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

"""Warehouse adapter on chdb: the ClickHouse engine in-process (embedded mode)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from chdb import session as chdb_session

from cem.adapters.warehouse_columns import to_columns
from kernel.private_files import private_dir

# chdb runs one embedded engine per process and per data path; every ChdbWarehouse in a process
# shares it, each in its own database (tests use one database per test). Calls go through a pool
# of sessions (connections) to that engine: concurrent calls run in parallel, each on a session of
# its own (chdb runs queries of different sessions in parallel, without holding the GIL), so a
# console's read does not wait for a projection's insert nor one projection for another. A session
# is used by one call at a time and remembers its current database. Closing the last warehouse
# closes the idle sessions at once and each busy one when its call returns (never under a call).
_shared: dict[str, Any] = {"path": None, "users": 0, "free": [], "generation": 0}
_lock = threading.RLock()
# At most this many calls at once (more wait for a session): beyond a few, more parallel queries
# on the machine's cores only share them, and each session holds memory.
MAX_SESSIONS = 8
_slots = threading.BoundedSemaphore(MAX_SESSIONS)


class _Pooled:
    def __init__(self, session: Any, generation: int) -> None:
        self.session, self.generation, self.database = session, generation, ""


def _new_session(path: str) -> Any:
    session = chdb_session.Session(path)
    session.query("SET output_format_json_quote_64bit_integers = 0")
    # The engine's query condition cache (on by default since ClickHouse 25.3) remembered which
    # granules a condition on a query parameter matched and reused it for the next value: the
    # calls of one touchpoint read after another's came back empty (found by the e2e service
    # test once the calls query joined, 2026-12-06). Every read here is parameterised: off.
    session.query("SET use_query_condition_cache = 0")
    return session


def _open(path: str) -> None:
    if _shared["path"] is None:
        private_dir(Path(path))
        first = _new_session(path)  # the engine starts here (and fails here, on a bad path)
        _shared.update(path=path, generation=_shared["generation"] + 1)
        _shared["free"].append(_Pooled(first, _shared["generation"]))
    elif _shared["path"] != path:
        raise RuntimeError(
            f"chdb already runs on {_shared['path']} in this process; it cannot also open {path}"
        )
    _shared["users"] += 1


def _acquire() -> _Pooled:
    _slots.acquire()
    try:
        with _lock:
            if _shared["path"] is None:
                raise RuntimeError("the chdb warehouse is closed")
            if _shared["free"]:
                pooled: _Pooled = _shared["free"].pop()
                return pooled
            path, generation = _shared["path"], _shared["generation"]
        return _Pooled(_new_session(path), generation)  # outside the lock: others go on
    except BaseException:
        _slots.release()
        raise


def _release(pooled: _Pooled) -> None:
    try:
        with _lock:
            if pooled.generation == _shared["generation"] and _shared["path"] is not None:
                _shared["free"].append(pooled)
                return
        pooled.session.close()  # its warehouse closed while it ran
    finally:
        _slots.release()


def _forget_database(database: str) -> None:
    """After a DROP, idle sessions in that database switch again on their next call (a busy one
    keeps the name: chdb holds the current database by name, so it works again once recreated)."""
    with _lock:
        for pooled in _shared["free"]:
            if pooled.database == database:
                pooled.database = ""


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escape_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """chdb parses string parameters as escaped text, so escape them: otherwise a tab breaks the
    query and a backslash sequence changes the value (a lookup could match another customer)."""
    return {k: v.translate(_ESCAPES) if isinstance(v, str) else v for k, v in params.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, frozenset | set | tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__}")


class ChdbWarehouse:
    """A Warehouse on chdb. Thread-safe: concurrent calls run on sessions of their own."""

    def __init__(self, path: str | Path, database: str = "cem") -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError(f"invalid database name {database!r}")
        self.database = database
        with _lock:
            _open(str(Path(path).resolve()))
        self._closed = False
        try:
            self._run(f"CREATE DATABASE IF NOT EXISTS {database}", "TabSeparated", None, use=False)
            self.version = self._read_version()
        except BaseException:
            self.close()  # its use of the engine ends here: the last one shuts it down
            raise

    def _read_version(self) -> tuple[int, ...]:
        text = self._run("SELECT version()", "TabSeparated", None, use=False).decode().strip()
        return tuple(int(p) for p in text.split(".") if p.isdigit())

    def _run(
        self, sql: str, fmt: str, params: Mapping[str, Any] | None, *, use: bool = True
    ) -> bytes:
        pooled = _acquire()
        try:
            if use and pooled.database != self.database:
                pooled.session.query(f"USE {self.database}")
                pooled.database = self.database
            result = pooled.session.query(
                sql, fmt, params=_escape_params(params) if params else None
            )
            return bytes(result.bytes())
        finally:
            _release(pooled)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "TabSeparated", params)

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns, values = to_columns(table, rows)
        # The batch travels as data after the statement, never formatted into SQL, in columns
        # (JSONCompactColumns): one orjson call serialises the whole batch and the engine parses
        # one array per column. Measured against JSONEachRow (a dict per row) on 500 timeline
        # rows: a tenth of the serialising cost and half the parsing; chdb's Python() table
        # function over a dict of lists or a pyarrow Table cost more than JSONEachRow.
        body = orjson.dumps(values, default=_json_default)
        statement = f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONCompactColumns\n"
        self._run(statement + body.decode(), "TabSeparated", None)

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        data = self._run(sql, "JSONEachRow", params)
        return [orjson.loads(line) for line in data.splitlines() if line]

    def select_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        # One JSON object of one array per column: one orjson call for the whole answer.
        result: dict[str, list[Any]] = orjson.loads(self._run(sql, "JSONColumns", params))
        return result

    def drop_database(self) -> None:
        """Remove this warehouse's database (tests and `cem replay` into fresh tables), at once
        (`SYNC`): else its tables wait in the engine's `metadata_dropped` and every later start of
        the engine loads them again (40 dropped databases made a start 10× slower)."""
        self._run(f"DROP DATABASE IF EXISTS {self.database} SYNC", "TabSeparated", None, use=False)
        _forget_database(self.database)

    def close(self) -> None:
        with _lock:
            if self._closed:
                return
            self._closed = True
            _shared["users"] -= 1
            if _shared["users"] == 0 and _shared["path"] is not None:
                # The engine shuts down with its last session; a call still running elsewhere
                # keeps its session until it returns (`_release` closes it then).
                for pooled in _shared["free"]:
                    pooled.session.close()
                _shared.update(path=None, free=[])

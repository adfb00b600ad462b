"""Warehouse adapter on a ClickHouse server with clickhouse-driver (distributed mode).

The only module importing clickhouse_driver. Queries keep the port's `{name:Type}` parameters;
they are translated here into the driver's client-side `%(name)s` parameters, which the driver
escapes into SQL literals before the query leaves the process. That is what makes the oldest
supported server (Debian's 18.16, which has no server-side parameters) safe from injection (S04):
values are coerced to their declared Type first, so only str, numbers, dates, UUIDs and lists of
them ever reach the driver's escaping, and a string can never end its literal early.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from clickhouse_driver import Client
from clickhouse_driver import errors as driver_errors
from clickhouse_driver.util.escape import escape_params

from cem.adapters.warehouse_columns import to_columns
from kernel.ports import WarehouseUnavailable


class _OneLine(logging.Filter):
    """The driver logs each failed connection attempt with its whole traceback (7 tracebacks in
    13 s of an outage, found by a review); the adapter raises WarehouseUnavailable, which the
    callers log and retry, so one line per attempt says all the traceback did."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.msg}: %s"
            record.args = (
                *(record.args if isinstance(record.args, tuple) else ()),
                record.exc_info[1],
            )
            record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("clickhouse_driver.connection").addFilter(_OneLine())

_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}")
_DEFAULT_MAX_QUERY_SIZE = 262_144
_INTS = {f"{s}Int{n}" for s in ("", "U") for n in (8, 16, 32, 64, 128, 256)}
_FLOATS = {"Float32", "Float64", "Decimal", "Decimal32", "Decimal64", "Decimal128"}
_STRINGS = {"String", "FixedString", "UUID", "Enum8", "Enum16", "IPv4", "IPv6"}
# Lost connections and timeouts: the server may be down or restarting, and a retry may succeed.
_UNAVAILABLE = (
    driver_errors.NetworkError,
    driver_errors.SocketTimeoutError,
    driver_errors.UnexpectedPacketFromServerError,
    EOFError,
    OSError,
)
# Server errors that say "not now" rather than "never", so a retry later may succeed as after a
# lost connection: a query over its time limit (159), too many queries at once (202), too many
# parts waiting to merge (252). A query over its memory limit (241) is left out: the same query
# may exceed it on every retry.
_BUSY = frozenset({159, 202, 252})


@contextmanager
def _outages() -> Iterator[None]:
    """A server that does not answer, or answers that it is busy: `WarehouseUnavailable`, which
    every caller retries (a stage files its batch again, a route answers 503)."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise WarehouseUnavailable(f"ClickHouse unavailable: {exc}") from exc
    except driver_errors.ServerException as exc:
        if exc.code in _BUSY:
            said = (exc.message or "").split("Stack trace")[0].strip()
            raise WarehouseUnavailable(f"ClickHouse busy (code {exc.code}): {said}") from exc
        raise


# After an insert fails with one of these, the server may still have committed it (F09): the tables
# are ReplacingMergeTree and reads deduplicate, so retrying the batch is safe.


# ---------------------------------------------------------------- `{name:Type}` → `%(pN)s`


def _quoted_end(sql: str, start: int) -> int:
    """Index after the quoted literal or identifier opening at start (\\-escapes, doubled quotes)."""
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\" or (sql[i] == quote and sql.startswith(quote * 2, i)):
            i += 2
        elif sql[i] == quote:
            return i + 1
        else:
            i += 1
    return len(sql)


def _segments(sql: str) -> Iterator[tuple[str, re.Match[str] | None]]:
    """The SQL cut into (text, None) and (placeholder, match); literals and comments are text."""
    i, plain = 0, 0
    while i < len(sql):
        if sql[i] in "'\"`":
            i = _quoted_end(sql, i)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end < 0 else end + 2
        elif sql[i] == "{" and (match := _PLACEHOLDER.match(sql, i)):
            yield sql[plain:i], None
            yield match.group(0), match
            i = plain = match.end()
        else:
            i += 1
    yield sql[plain:], None


def translate(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The query in the driver's `%(pN)s` style and the values coerced to their declared types.

    Only `{identifier:Type}` outside string literals, quoted identifiers and comments is a
    parameter, so a literal such as '{"a": 1}' is left alone. Every other `%` is doubled because
    the driver substitutes with Python's `%` operator. A query without parameters is unchanged.
    """
    parts: list[tuple[str, bool]] = []
    values: dict[str, Any] = {}
    for text, match in _segments(sql):
        if match is None:
            parts.append((text, False))
            continue
        name, type_ = match.group(1), match.group(2)
        if params is None or name not in params:
            raise ValueError(f"no value for query parameter {name!r}")
        key = f"p{len(values)}"
        values[key] = coerce(params[name], type_)
        # The leading space keeps a negative number after a minus from opening a `--` comment.
        parts.append((f" %({key})s", True))
    if not values:
        return sql, {}
    return "".join(p if is_param else p.replace("%", "%%") for p, is_param in parts), values


def _inner(type_: str, wrapper: str) -> str:
    return type_[len(wrapper) + 1 : -1].strip()


def coerce(value: Any, type_: str) -> Any:
    """The value as the Python type the driver escapes for a ClickHouse `type_`; else TypeError."""
    type_ = type_.strip()
    for wrapper in ("Nullable", "LowCardinality"):
        if type_.startswith(wrapper + "("):
            if value is None and wrapper == "Nullable":
                return None
            return coerce(value, _inner(type_, wrapper))
    if type_.startswith("Array("):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            raise TypeError(f"{type_} parameter needs a list, not {type(value).__name__}")
        return [coerce(item, _inner(type_, "Array")) for item in value]
    base = type_.split("(", 1)[0]
    if value is None:
        raise TypeError(f"None for a non-Nullable {type_} parameter")
    if base in _INTS or base == "Bool":
        return _to_int(value, type_)
    if base in _FLOATS:
        return float(value)
    if base in _STRINGS:
        return _to_str(value, type_)
    if base in ("Date", "Date32", "DateTime", "DateTime64"):
        return _to_time(value, type_)
    raise TypeError(f"unsupported query parameter type {type_}")


def _to_int(value: Any, type_: str) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise TypeError(f"{value!r} is not a whole number for a {type_} parameter")


def _to_str(value: Any, type_: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, UUID | int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not text for a {type_} parameter")


def _to_time(value: Any, type_: str) -> int | str:
    # An instant (aware datetime) goes as epoch seconds, which ClickHouse compares with a DateTime
    # exactly whatever the server's time zone; a naive one as text, read in the server's zone.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return int(value.timestamp())
        return value.strftime(
            "%Y-%m-%d" if type_.startswith("Date") and "Time" not in type_ else "%Y-%m-%d %H:%M:%S"
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not a time for a {type_} parameter")


# ---------------------------------------------------------------- results and rows


# Column types whose driver values are already what the embedded adapter's JSON gives.
_PLAIN_TYPE = re.compile(r"(String|U?Int(8|16|32|64)|Float(32|64))$")


def _plain(value: Any) -> Any:
    """Driver values as the embedded adapter (JSON) returns them, so both adapters read alike."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


MAX_CLIENTS = 16


class ClickHouseWarehouse:
    """A Warehouse on a ClickHouse server (18.16 or newer). Thread-safe: a driver client serves
    one call at a time, so calls take a client from a pool (a new connection when every client
    is busy) and concurrent calls run in parallel on the server: a console's read does not wait
    behind another request's query, nor a worker's read behind its insert."""

    def __init__(self, url: str, database: str = "cem") -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError(f"invalid database name {database!r}")
        self.database = database
        self._lock = threading.Lock()
        # At most MAX_CLIENTS calls at once per warehouse (more wait for a client), well inside
        # the server's max_concurrent_queries (100) with a few replicas and workers.
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._url = _with_database(url, database)
        self._free: list[Any] = []
        bootstrap = Client.from_url(_with_database(url, "default"))
        try:
            self._call(bootstrap, f"CREATE DATABASE IF NOT EXISTS {database}")
        finally:
            bootstrap.disconnect()
        try:
            [(text,)] = self._execute("SELECT version()")
        except BaseException:
            self.close()  # no pooled connection outlives a warehouse that never started
            raise
        self.version: tuple[int, ...] = tuple(int(p) for p in str(text).split(".") if p.isdigit())

    @contextmanager
    def _client(self) -> Iterator[Any]:
        with self._slots:
            with self._lock:
                client = self._free.pop() if self._free else None
                if client is None:
                    client = Client.from_url(self._url)  # connects on its first call
            try:
                yield client
            finally:
                with self._lock:
                    self._free.append(client)

    @staticmethod
    def _call(client: Any, sql: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        template, values = translate(sql, params)
        with _outages():
            # The driver's own escaping (what execute(query, params) does), applied here so the
            # query's final size is known.
            query = template % escape_params(values, None) if values else template
            size = len(query.encode())
            # Long string parameters become long literals: raise the parser's limit to fit them.
            settings = {"max_query_size": size + 1} if size >= _DEFAULT_MAX_QUERY_SIZE else None
            return client.execute(query, settings=settings, **kw)

    def _execute(self, sql: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        with self._client() as client:
            return self._call(client, sql, params, **kw)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._execute(sql, params)

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        # Native protocol: the values travel as typed column blocks, never as SQL text.
        columns, data = to_columns(table, rows)
        query = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        with self._client() as client, _outages():
            client.execute(query, data, columnar=True)

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        rows, columns = self._execute(sql, params, with_column_types=True)
        names = [name for name, _ in columns]
        return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in rows]

    def select_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        data, columns = self._execute(sql, params, with_column_types=True, columnar=True)
        names = [name for name, _ in columns]
        if not data:
            return {name: [] for name in names}
        return {
            name: list(values) if _PLAIN_TYPE.match(kind) else [_plain(v) for v in values]
            for (name, kind), values in zip(columns, data, strict=True)
        }

    def drop_database(self) -> None:
        """Remove this warehouse's database (tests and `cem replay` into fresh tables)."""
        self._execute(f"DROP DATABASE IF EXISTS {self.database}")

    def close(self) -> None:
        """Disconnect the idle clients. As the driver's client does, a call made after this
        connects again (a test's teardown drops its database after the app closed it)."""
        with self._lock:
            idle, self._free = self._free, []
        for client in idle:
            client.disconnect()

"""Reading a SQLite store without writing it, for `cem migrate-ids`: every connection here is
read-only (`mode=ro`), so the store is left as it was; only an empty -wal and a -shm file appear
beside it when missing, which a reader of a WAL database needs and which hold nothing.
A read-only connection still reads the commits kept in the store's -wal file."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from cem.adapters.sqlite_log import decode_headers
from kernel.ports import Record
from kernel.private_files import private_file


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that cannot write `path`."""
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        yield conn


def backup(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store, its -wal file's commits included (not a file copy,
    which would leave them behind)."""
    private_file(target)
    with read_only(source) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def log_records(path: Path, topic: str, chunk: int) -> Iterator[list[Record]]:
    """Every record of an embedded log's topic, in chunks, each partition in offset order, read
    in one transaction; no consumer group is committed."""
    with read_only(path) as log:
        log.execute("BEGIN")
        partitions = log.execute(
            "SELECT partition FROM partition_ends WHERE topic = ? ORDER BY partition", (topic,)
        ).fetchall()
        for (partition,) in partitions:
            rows = log.execute(
                "SELECT key, value, headers FROM records WHERE topic = ? AND partition = ? "
                "ORDER BY offset",
                (topic, partition),
            )
            while batch := rows.fetchmany(chunk):
                yield [Record(bytes(k), bytes(v), decode_headers(h)) for k, v, h in batch]


def first_values(path: Path, topic: str) -> list[bytes]:
    """The value of each partition's first record of an embedded log's topic (none when the
    file or the topic is not there), read without writing."""
    if not path.exists():
        return []
    with read_only(path) as log:
        rows = log.execute(
            "SELECT value FROM records WHERE topic = ? AND (partition, offset) IN "
            "(SELECT partition, min(offset) FROM records WHERE topic = ? GROUP BY partition)",
            (topic, topic),
        ).fetchall()
    return [bytes(value) for (value,) in rows]


def events_by_topic(
    path: Path, table: str, names: Collection[str], unless_actor: str
) -> dict[str, int]:
    """How many events an eventsourcing store holds of each class `names` (`Class.Event`, the
    end of a stored topic), but those whose JSON state names `unless_actor` as the actor."""
    with read_only(path) as store:
        found = store.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if found is None:
            return {}
        marks = ",".join("?" * len(names))
        rows = store.execute(
            f"SELECT substr(topic, instr(topic, ':') + 1), count(*) FROM {table} "
            f"WHERE substr(topic, instr(topic, ':') + 1) IN ({marks}) AND NOT ("
            "json_valid(CAST(state AS TEXT)) AND "
            "json_extract(CAST(state AS TEXT), '$.actor') IS ?) GROUP BY 1",
            (*names, unless_actor),
        ).fetchall()
    return {str(name): int(count) for name, count in rows}

"""Throughput benchmark of identity resolution (`python -m bench.identity.throughput`).

Resolves a clean workload (workload.py: known people, their valid touchpoints in time order) with `resolve_batch` in chunks, as the stream runners' filer does, on each store: an
SQLite file (embedded mode), SQLite in memory, and PostgreSQL when one answers (`--postgres-dsn`,
else CEM_POSTGRES_DSN or CEM_TEST_POSTGRES_DSN). Prints resolves per second (wall clock and CPU
time of this process), and the raw engine's cost for the same writes, measured in the same run:
the events the resolver recorded, inserted again into a scratch table with the plain client, one
transaction per chunk exactly as the resolver committed them.

A digest of every decision (each touchpoint's `ResolvedCustomer`) is printed per run: it must be
the same on every store, with or without the aggregate cache, and before and after a change that
is meant only to make resolution faster. Numbers, not assertions: the machine's load average is
printed with them because it moves every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Notification

from bench.identity.workload import population, touched_at
from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from services.identity.filing import CHUNK
from services.identity.ports import IdentityStore
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules, TenantRules
from services.identity.state import DEFAULT_CACHE_SIZE

TENANT = "bench"
# New customers' ids derive from this key (`IdentityResolver`'s `id_key`): the same on every
# store and run, so the digests compare decisions, names included (a random key per resolver
# would name every customer differently).
BENCH_ID_KEY = b"identity throughput bench key 32"
# The workload's numbers are Spanish; every other rule is the product default.
BENCH_RULES = IdentityRules(default=TenantRules(phone_region="ES"))


@dataclass(frozen=True)
class Run:
    store: str
    label: str
    touchpoints: int
    wall_s: float
    cpu_s: float
    transactions: int
    events: int
    digest: str
    raw_insert_s: float | None = None  # the same events, one plain transaction per chunk

    @property
    def per_s(self) -> float:
        return self.touchpoints / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_per_s(self) -> float:
        return self.touchpoints / self.cpu_s if self.cpu_s else 0.0


Touchpoints = list[tuple[Any, str, str, Any]]


def touchpoints(customers: int, seed: int) -> Touchpoints:
    return [(t.ref, t.event_id, t.channel, touched_at(t)) for t in population(customers, seed)]


def resolve_all(
    resolver: IdentityResolver, work: Touchpoints, chunk: int
) -> tuple[float, float, str, list[int]]:
    """(wall seconds, CPU seconds, digest of the decisions, notification id after each chunk)."""
    digest = hashlib.sha256()
    ends = []
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(work), chunk):
        for resolved in resolver.resolve_batch(TENANT, work[start : start + chunk]):
            digest.update(repr(resolved).encode())
        ends.append(resolver.recorder.max_notification_id() or 0)
    return time.perf_counter() - wall, time.process_time() - cpu, digest.hexdigest()[:16], ends


def recorded(resolver: IdentityResolver, ends: list[int]) -> list[list[Notification]]:
    """The events each chunk recorded, in order."""
    found: list[Notification] = []
    while len(found) < (ends[-1] if ends else 0):
        start = found[-1].id + 1 if found else 1
        page = resolver.recorder.select_notifications(start=start, limit=10_000)
        if not page:
            break
        found.extend(page)
    chunks: list[list[Notification]] = []
    position = 0
    for end in ends:
        events = []
        while position < len(found) and found[position].id <= end:
            events.append(found[position])
            position += 1
        chunks.append(events)
    return chunks


# raw inserts: the engine's own client, the same rows, one transaction per chunk


def raw_sqlite(dbname: str, chunks: list[list[Notification]]) -> float:
    conn = sqlite3.connect(dbname, isolation_level=None)
    try:
        if dbname != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")  # as the eventsourcing library sets it
        conn.execute(
            "CREATE TABLE raw_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        started = time.perf_counter()
        for events in chunks:
            rows = [(_hex(e.originator_id), e.originator_version, e.topic, e.state) for e in events]
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO raw_events VALUES (?,?,?,?)", rows)
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def _hex(originator_id: Any) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else str(originator_id)


def raw_postgres(dsn: str, schema: str, chunks: list[list[Notification]]) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {schema}.raw_events (originator_id uuid NOT NULL, "
            "originator_version bigint NOT NULL, topic text, state bytea, "
            "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        started = time.perf_counter()
        for events in chunks:
            rows = [(e.originator_id, e.originator_version, e.topic, e.state) for e in events]
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {schema}.raw_events "
                    "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    rows,
                )
        return time.perf_counter() - started


# stores


@contextmanager
def sqlite_file() -> Iterator[tuple[IdentityStore, Callable[[list[list[Notification]]], float]]]:
    with tempfile.TemporaryDirectory(prefix="cem-identity-bench-") as directory:
        path = Path(directory)
        scratch = str(path / f"raw-{uuid.uuid4().hex}.sqlite")
        yield SqliteIdentityStore(path / "identity.sqlite"), lambda c: raw_sqlite(scratch, c)


@contextmanager
def sqlite_memory() -> Iterator[tuple[IdentityStore, Callable[[list[list[Notification]]], float]]]:
    yield (
        SqliteIdentityStore(f"file:bench-{uuid.uuid4().hex}?mode=memory&cache=shared"),
        lambda c: raw_sqlite(":memory:", c),
    )


@contextmanager
def postgres(
    dsn: str,
) -> Iterator[tuple[IdentityStore, Callable[[list[list[Notification]]], float]]]:
    import psycopg

    schema = f"identity_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield PostgresIdentityStore(dsn, schema), lambda c: raw_postgres(dsn, schema, c)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def postgres_answers(dsn: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except Exception:  # no client, no server, refused: all mean "not measured here"
        return False


def measure(
    name: str,
    store: Callable[[], Any],
    work: Touchpoints,
    chunk: int,
    cache_sizes: Sequence[int],
) -> list[Run]:
    runs = []
    for cache_size in cache_sizes:
        with store() as (identity_store, raw_insert):
            resolver = IdentityResolver(
                identity_store, BENCH_RULES, cache_size=cache_size, id_key=BENCH_ID_KEY
            )
            try:
                wall, cpu, digest, ends = resolve_all(resolver, work, chunk)
                chunks = recorded(resolver, ends)
            finally:
                resolver.close()
            label = f"resolve_batch ({chunk}/txn)"
            if not cache_size:
                label += ", no aggregate cache"
            raw = raw_insert(chunks) if cache_size == cache_sizes[0] else None
            events = sum(len(c) for c in chunks)
            runs.append(Run(name, label, len(work), wall, cpu, len(ends), events, digest, raw))
    return runs


def format_table(runs: Sequence[Run]) -> str:
    header = (
        f"{'store':<14}{'run':<40}{'resolves/s':>11}{'CPU res/s':>11}"
        f"{'events':>9}{'txns':>6}{'raw ev/s':>11}{'vs raw':>8}  digest"
    )
    lines = [header]
    for run in runs:
        raw_rate = f"{run.events / run.raw_insert_s:,.0f}" if run.raw_insert_s else ""
        ratio = f"{run.wall_s / run.raw_insert_s:.1f}x" if run.raw_insert_s else ""
        lines.append(
            f"{run.store:<14}{run.label:<40}{run.per_s:>11,.0f}{run.cpu_per_s:>11,.0f}"
            f"{run.events:>9,}{run.transactions:>6}{raw_rate:>11}{ratio:>8}  {run.digest}"
        )
    digests = {run.digest for run in runs}
    lines += [
        "",
        "vs raw: resolve_batch's time over the plain engine client's, inserting the same events in "
        "the same transactions",
        f"same decisions on every run: {'yes' if len(digests) == 1 else 'NO: ' + str(digests)}",
    ]
    with suppress(OSError):
        lines.append("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Identity resolution throughput benchmark")
    parser.add_argument("--customers", type=int, default=2000, help="people in the population")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=CHUNK, help="touchpoints per resolve_batch")
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get("CEM_POSTGRES_DSN") or os.environ.get("CEM_TEST_POSTGRES_DSN"),
        help="PostgreSQL to measure on (default CEM_POSTGRES_DSN, else CEM_TEST_POSTGRES_DSN)",
    )
    parser.add_argument(
        "--stores",
        default="sqlite-file,sqlite-memory,postgres",
        help="comma-separated: sqlite-file, sqlite-memory, postgres",
    )
    parser.add_argument(
        "--without-cache", action="store_true", help="also run each store without the cache"
    )
    args = parser.parse_args(argv)
    work = touchpoints(args.customers, args.seed)
    cache_sizes = [DEFAULT_CACHE_SIZE, 0] if args.without_cache else [DEFAULT_CACHE_SIZE]
    stores: dict[str, Callable[[], Any]] = {
        "sqlite-file": sqlite_file,
        "sqlite-memory": sqlite_memory,
    }
    if args.postgres_dsn and postgres_answers(args.postgres_dsn):
        dsn = args.postgres_dsn
        stores["postgres"] = lambda: postgres(dsn)
    runs: list[Run] = []
    for name in args.stores.split(","):
        if name not in stores:
            print(f"{name}: not measured (no such store, or PostgreSQL does not answer)")
            continue
        runs += measure(name, stores[name], work, args.chunk, cache_sizes)
    print(f"{len(work):,} touchpoints of {args.customers:,} people (seed {args.seed})")
    print(format_table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

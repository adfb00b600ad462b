"""Cost of the live stream's erasure check (`python -m bench.erasure_watch`).

Every open customer stream asks identity, every `ERASURE_CHECK_S`, whether a member of its group
was erased (`IdentityResolver.erased_among`), and once when it opens which erased members are not
news (`erased_before_merge`). This measures both reads against an identity store filled by the
identity bench's population (bench/identity: its people, their touchpoints, merges and all), on an
SQLite file (embedded) and on PostgreSQL when one answers (`--postgres-dsn`, else
CEM_POSTGRES_DSN or CEM_TEST_POSTGRES_DSN), through a resolver of its own as the query API's is,
and prints what they cost at a few numbers of open streams: reads per second and the share of one
core they take. Then, as the filing stage files while streams are open, another process files a
second population into the same store (`--while-filing`, on by default) while this one keeps
checking: the checks' latency (p50, p99, max) while identity's writes land, which the reads then
catch up with, and the filing rate then (`--streams 0` gives the same filing with nobody
checking: its baseline, in the same state of the store). Numbers, not assertions; the load
average is printed with them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import tempfile
import time
import uuid
from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.identity.accuracy import TENANT, file_all
from bench.identity.population import generate
from bench.identity.throughput import postgres_answers
from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.bootstrap import embedded_identity
from kernel.settings import CoreSettings
from services.identity.resolver import IdentityResolver
from services.query_api.stream import ERASURE_CHECK_S

STREAMS = (200, 1_000, 5_000)


# Which store a process opens: ("sqlite", data directory) or ("postgres", "dsn|schema").
Store = tuple[str, str]


def open_store(store: Store) -> IdentityResolver:
    kind, where = store
    if kind == "sqlite":
        # In clear, as the PostgreSQL store below and as docs/erasure.md's figures were measured
        # (sealing became the default since): like compared with like.
        return embedded_identity(
            Path(where), CoreSettings(data_dir=Path(where), seal_personal_data=False)
        )
    dsn, schema = where.rsplit("|", 1)
    return IdentityResolver(PostgresIdentityStore(dsn, schema))


def _file_elsewhere(store: Store, people: int, seed: int, began: Any, done: Any) -> None:
    """The other process: file a population into the store; put (touchpoints, seconds) in `done`."""
    filer = open_store(store)
    try:
        touches = generate(people, seed)
        began.set()
        filed = file_all(touches, filer)
        done.put((len(touches), filed.elapsed_s))
    finally:
        filer.close()


def measure(
    filer: IdentityResolver,
    reader: Callable[[], IdentityResolver],
    label: str,
    args: Namespace,
    store: Store | None = None,
) -> None:
    """File the population with `filer`, then read with a resolver of its own (`reader`), as the
    query API's is: its first pass over the groups finds nothing cached, the later ones do."""
    touches = generate(args.people, args.seed)
    filed = file_all(touches, filer)
    customers = sorted({c for c in filed.customers if c is not None})
    print(
        f"{label}: {len(customers):,} customers from {args.people:,} people "
        f"(filed in {filed.elapsed_s:.0f}s, {len(touches) / max(filed.elapsed_s, 1e-9):,.0f} touchpoints/s)"
    )
    resolver = reader()
    try:
        groups = [resolver.members(TENANT, c) for c in customers]
        random.Random(args.seed).shuffle(groups)
        merged = sum(len(g) > 1 for g in groups)
        cold = _timed(lambda g: resolver.erased_among(TENANT, g), groups)
        opened = _timed(lambda g: resolver.erased_before_merge(TENANT, g), groups)
        warm = _timed(
            lambda g: resolver.erased_among(TENANT, g), (groups * args.checks)[: args.checks]
        )
        during = _while_filing(resolver, groups, store, args) if store is not None else None
    finally:
        resolver.close()
    print(f"  groups of several members: {merged:,} of {len(groups):,}")
    print(
        f"  first check of each group, nothing cached: {cold[0]:.0f} µs wall, {cold[1]:.0f} µs CPU"
    )
    print(f"  on opening (erased_before_merge): {opened[0]:.0f} µs wall, {opened[1]:.0f} µs CPU")
    print(f"  each later check (erased_among): {warm[0]:.0f} µs wall, {warm[1]:.0f} µs CPU")
    for streams in STREAMS:
        per_second = streams / ERASURE_CHECK_S
        print(
            f"  {streams:>5,} open streams: {per_second:,.0f} checks/s, "
            f"{per_second * warm[1] / 1e6:.1%} of one core "
            f"({per_second * cold[1] / 1e6:.1%} if nothing were cached)"
        )
    if during is not None and not during[0]:
        _, touched, seconds = during
        checks = "nobody checking (--streams 0)" if not args.streams else "no check ended meanwhile"
        print(
            f"  while another process filed {touched:,} touchpoints "
            f"({touched / max(seconds, 1e-9):,.0f}/s): {checks}"
        )
    elif during is not None:
        latencies, touched, seconds = during
        ms = sorted(x * 1e3 for x in latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(
            f"  while another process filed {touched:,} touchpoints ({touched / max(seconds, 1e-9):,.0f}/s), "
            f"checked as {args.streams:,} open streams ask: {len(ms):,} checks, p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, "
            f"max {ms[-1]:.1f} ms"
        )


def _while_filing(
    resolver: IdentityResolver, groups: Sequence[list[str]], store: Store, args: Namespace
) -> tuple[list[float], int, float]:
    """Check the groups, one after the other, while another process files a second population
    into the same store: each check's seconds, and what the other process filed in how long."""
    context = multiprocessing.get_context("spawn")
    began, done = context.Event(), context.Queue()
    other = context.Process(
        target=_file_elsewhere, args=(store, args.people, args.seed + 1, began, done)
    )
    other.start()
    try:
        while not began.wait(0.5):
            if not other.is_alive():
                raise RuntimeError(f"the filing process failed (exit {other.exitcode})")
        latencies: list[float] = []
        at, every = 0, ERASURE_CHECK_S / max(args.streams, 1)
        next_check = time.perf_counter()
        while other.is_alive() and done.empty():
            if not args.streams:  # the baseline: the same filing, nobody checking
                time.sleep(0.05)
                continue
            group = groups[at % len(groups)]
            at += 1
            # Paced as that many open streams ask (a check late does not make the next one sooner)
            next_check += every
            time.sleep(max(0.0, next_check - time.perf_counter()))
            start = time.perf_counter()
            resolver.erased_among(TENANT, group)
            latencies.append(time.perf_counter() - start)
        other.join(0.5 if done.empty() else 0)
        if done.empty() and not other.is_alive():
            raise RuntimeError(f"the filing process failed (exit {other.exitcode})")
        touched, seconds = done.get(timeout=300)
    finally:
        other.join(300)
        if other.is_alive():
            other.terminate()
    if other.exitcode:
        raise RuntimeError(f"the filing process failed (exit {other.exitcode})")
    return latencies, touched, seconds


def _timed(read: Callable[[list[str]], object], groups: Sequence[list[str]]) -> tuple[float, float]:
    """Mean wall and CPU microseconds of `read(group)` over the groups."""
    wall, cpu = time.perf_counter(), time.process_time()
    for group in groups:
        read(group)
    n = max(1, len(groups))
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--checks", type=int, default=5_000)
    parser.add_argument(
        "--while-filing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also check while another process files a second population (default: on)",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=1_000,
        help="open streams the checks while filing pace (0: none, the filing rate's baseline)",
    )
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get("CEM_POSTGRES_DSN") or os.environ.get("CEM_TEST_POSTGRES_DSN"),
        help="PostgreSQL to measure on too (default CEM_POSTGRES_DSN, else CEM_TEST_POSTGRES_DSN)",
    )
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="cem-erasure-watch-") as scratch:
        store: Store = ("sqlite", scratch)
        filer = open_store(store)
        try:
            watched = store if args.while_filing else None
            measure(filer, lambda: open_store(store), "embedded, SQLite file", args, watched)
        finally:
            filer.close()
    if args.postgres_dsn and postgres_answers(args.postgres_dsn):
        import psycopg

        dsn, schema = args.postgres_dsn, f"erasure_watch_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        in_postgres: Store = ("postgres", f"{dsn}|{schema}")
        filer = open_store(in_postgres)
        try:
            watched = in_postgres if args.while_filing else None
            measure(
                filer, lambda: open_store(in_postgres), "distributed, PostgreSQL", args, watched
            )
        finally:
            filer.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    else:
        print("PostgreSQL: not measured (no --postgres-dsn that answers)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

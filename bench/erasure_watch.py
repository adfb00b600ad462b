"""Cost of the live stream's erasure check (`python -m bench.erasure_watch`).

Every open customer stream asks identity, every `ERASURE_CHECK_S`, whether a member of its group
was erased (`IdentityResolver.erased_among`), and once when it opens which erased members are not
news (`erased_before_merge`). This measures both reads against an identity store filled by the
identity bench's population (bench/identity: its people, their touchpoints, merges and all), on an
SQLite file (embedded) and on PostgreSQL when one answers (`--postgres-dsn`, else
CEM_POSTGRES_DSN or CEM_TEST_POSTGRES_DSN), through a resolver of its own as the query API's is,
and prints what they cost at a few numbers of open streams: reads per second and the share of one
core they take. Not measured: identity's writes from other processes meanwhile (the filing stage
files while streams are open), which the reads then catch up with. Numbers, not assertions; the
load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.identity.accuracy import TENANT, file_all
from bench.identity.population import generate
from bench.identity.throughput import postgres_answers
from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.bootstrap import embedded_identity
from services.identity.resolver import IdentityResolver
from services.query_api.stream import ERASURE_CHECK_S

STREAMS = (200, 1_000, 5_000)


def measure(
    filer: IdentityResolver, reader: Callable[[], IdentityResolver], label: str, args: Namespace
) -> None:
    """File the population with `filer`, then read with a resolver of its own (`reader`), as the
    query API's is: its first pass over the groups finds nothing cached, the later ones do."""
    began = time.perf_counter()
    filed = file_all(generate(args.people, args.seed), filer)
    customers = sorted({c for c in filed.customers if c is not None})
    print(
        f"{label}: {len(customers):,} customers from {args.people:,} people "
        f"(filed in {time.perf_counter() - began:.0f}s)"
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
        "--postgres-dsn",
        default=os.environ.get("CEM_POSTGRES_DSN") or os.environ.get("CEM_TEST_POSTGRES_DSN"),
        help="PostgreSQL to measure on too (default CEM_POSTGRES_DSN, else CEM_TEST_POSTGRES_DSN)",
    )
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="cem-erasure-watch-") as scratch:
        filer = embedded_identity(Path(scratch))
        try:
            measure(filer, lambda: embedded_identity(Path(scratch)), "embedded, SQLite file", args)
        finally:
            filer.close()
    if args.postgres_dsn and postgres_answers(args.postgres_dsn):
        import psycopg

        dsn, schema = args.postgres_dsn, f"erasure_watch_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        filer = IdentityResolver(PostgresIdentityStore(dsn, schema))
        try:
            measure(
                filer,
                lambda: IdentityResolver(PostgresIdentityStore(dsn, schema)),
                "distributed, PostgreSQL",
                args,
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

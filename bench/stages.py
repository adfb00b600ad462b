"""`python -m bench.stages`: the CPU cost per event of each stage of the embedded pipeline.

One process runs the embedded pipeline's own code, stage by stage, over a mix of events in
batches of 500 as a client posts them. By default (`--mix identity`) the mix is the identity
bench's population (`bench/identity/`), built apart from the identity rules: phones written
nationally, with `00` or punctuation, placeholders, mistyped emails, cleared cookies, landlines and
tablets a household shares, store kiosks. `--mix demo` takes the demo generator's events instead
(explicit customer ids, clean E.164 phones: the identity rules' easy case). Per batch: parse the body, validate, note ignored
identifiers, encode, publish (claims + append to the SQLite log); then the filing stage polls the
touchpoints, decodes, files (identity), appends the filings and commits, as `cem.runner.file_once`
does; then each projection polls the filings, decodes, builds its rows, inserts them into chdb and
commits, as `cem.runner.run_once` does. Beside them, from the same run and the same bytes: sqlite3 appending
the records with nothing else, and chdb's session inserting the same rows already serialised
(the engine's own client, not our adapter, sent the same columns of JSON the adapter sends).

Every stage is timed with `time.process_time` (CPU of the whole process, chdb's threads included)
and `time.perf_counter` around a whole batch; the first batch is a warm-up and is left out. One
batch in the middle is run under cProfile instead, and its top functions by cumulative time are
printed. Nothing here asserts a time (HOUSE_STYLE): the figures are printed with the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson

from cem.adapters.sqlite_log import INSERT_RECORD, LOG_SCHEMA
from cem.bootstrap import build
from cem.runner import ensure_tables
from kernel.collector import settle_collector
from kernel.filings import (
    FILING_STAGE,
    FiledBatch,
    filed_home,
    filing_record,
    through_touchpoints,
)
from kernel.partitioning import touchpoint_bucket_key
from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC, Outgoing
from kernel.processing import Projection, Unfiled, decode_batch, project_batch
from kernel.settings import IngestSettings
from schemas.envelope import Event
from services.identity.rules import TenantRules
from services.ingest.batch import ItemResult, identifier_notes, to_outgoing, validate_item
from services.ingest.body import parse_submission
from services.satisfaction.sentiment import warm_up as warm_up_sentiment

TENANT = "bench"
BUCKET_KEY = touchpoint_bucket_key(b"bench platform key")
JSON = "application/json"
INGEST_STAGES = ("parse body", "validate", "identifier notes", "encode", "publish (claims+append)")
FILING_STAGES = ("poll", "decode", "file (identity)", "append filings", "commit")
GROUP_STAGES = ("poll", "decode", "build rows", "insert (chdb)", "commit")
BASELINES = ("raw sqlite3 append, same bytes", "raw chdb insert, same rows")
RAW_DATABASE = "stages_raw"
EVENT_LIMIT: int = IngestSettings.model_fields["max_event_bytes"].default


def pipeline_stages(groups: Sequence[str]) -> list[str]:
    """Every stage the table reports, in pipeline order (baselines apart)."""
    filing = [f"{FILING_STAGE}: {s}" for s in FILING_STAGES]
    return [*INGEST_STAGES, *filing, *(f"{g}: {s}" for g in groups for s in GROUP_STAGES)]


@dataclass
class Meter:
    """CPU and wall seconds per stage, summed over the batches measured."""

    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    events: int = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        cpu, wall = time.process_time(), time.perf_counter()
        yield
        self.cpu[name] += time.process_time() - cpu
        self.wall[name] += time.perf_counter() - wall


def identity_mix(seed: int, events: int, people: int) -> list[dict[str, Any]]:
    """The first `events` touchpoints, in time order, of the identity bench's population
    (`bench/identity/`): identifiers as people write them (national and `00` phones, punctuation,
    placeholders, typos) and devices households share. More people are drawn while `people` make
    too few events, so the mix stays a stretch of one history rather than several laid end to end."""
    from bench.identity.population import generate

    touches = generate(people, seed)
    while len(touches) < events:
        people *= 2
        touches = generate(people, seed)
    return [touch.event for touch in touches[:events]]


def demo_mix(seed: int, events: int, customers: int) -> list[dict[str, Any]]:
    """The demo population's history, in the order it happened (producer format): clean E.164
    phones and explicit customer ids, what `cem bench` loads."""
    from bench.workload import demo_events

    return list(demo_events(seed, events, customers))


MIXES = {"identity": identity_mix, "demo": demo_mix}


class Pipeline:
    """The embedded platform as `cem.bootstrap.build` wires it (runners not started), plus the
    scratch stores of the raw baselines."""

    def __init__(self, root: Path) -> None:
        from cem.adapters.chdb_warehouse import ChdbWarehouse  # one chdb path per process

        self.platform = build(IngestSettings(data_dir=root / "data", identity="eventsourced"))
        settle_collector()  # the collector as `cem up` and `cem serve` set it once started
        self.log, self.publisher = self.platform.log, self.platform.publisher
        self.filer, self.warehouse = self.platform.filer, self.platform.warehouse
        self.projections = self.platform.projections
        self.decode_filing = through_touchpoints(self.platform.decoder, TOUCHPOINTS_TOPIC)
        ensure_tables(self.warehouse, self.projections)
        self.raw_warehouse = ChdbWarehouse(root / "data" / "warehouse", database=RAW_DATABASE)
        ensure_tables(self.raw_warehouse, self.projections)
        # The engine alone: a chdb session of its own on the process's engine, with no adapter
        # pool and no `USE` between the platform's database and this one; tables named with
        # their database.
        from chdb import session as chdb_session

        self.raw_engine = chdb_session.Session(str((root / "data" / "warehouse").resolve()))
        self.raw_log = sqlite3.connect(root / "raw.sqlite", isolation_level=None)
        self.raw_log.execute("PRAGMA journal_mode = WAL")
        self.raw_log.execute("PRAGMA synchronous = NORMAL")
        self.raw_log.executescript(LOG_SCHEMA)
        self.raw_offset = 0
        self.rules = TenantRules()

    def close(self) -> None:
        self.raw_log.close()
        self.raw_engine.close()
        self.raw_warehouse.close()
        self.platform.stop()

    def cycle(self, raws: list[dict[str, Any]], meter: Meter) -> None:
        """One client batch from its body to every consumer group's commit."""
        outgoing = self._ingest(orjson.dumps({"events": raws}), meter)
        with meter.stage(BASELINES[0]):
            self._raw_append(outgoing)
        self._file(len(outgoing), meter)
        for projection in self.projections:
            self._consume(projection, len(outgoing), meter)
        meter.events += len(raws)

    def _ingest(self, body: bytes, meter: Meter) -> list[Outgoing]:
        received = datetime.now(UTC)
        with meter.stage("parse body"):
            items = parse_submission(JSON, body, 10_000).items
        with meter.stage("validate"):
            # What `services.ingest.batch.check_event` does before encoding.
            checked = [_validated(raw, received) for raw in items]
        with meter.stage("identifier notes"):
            for event, _ in checked:
                identifier_notes(event, self.rules)
        with meter.stage("encode"):
            outgoing = [
                to_outgoing(event, fingerprint, BUCKET_KEY) for event, fingerprint in checked
            ]
        with meter.stage("publish (claims+append)"):
            self.publisher.publish(outgoing)
        return outgoing

    def _raw_append(self, outgoing: list[Outgoing]) -> None:
        now, start = time.time_ns() // 1000, self.raw_offset
        rows = [
            ("touchpoints", 0, start + i, o.record.key, o.record.value, None, now)
            for i, o in enumerate(outgoing)
        ]
        self.raw_offset += len(rows)
        self.raw_log.execute("BEGIN IMMEDIATE")
        self.raw_log.executemany(INSERT_RECORD, rows)
        self.raw_log.execute("COMMIT")

    def _file(self, count: int, meter: Meter) -> None:
        """The filing stage, step by step as `kernel.filings.file_batch` runs it."""
        with meter.stage(f"{FILING_STAGE}: poll"):
            records = self.log.poll(TOUCHPOINTS_TOPIC, FILING_STAGE, count, 0.0)
        with meter.stage(f"{FILING_STAGE}: decode"):
            decoded = decode_batch(FILING_STAGE, records, self.platform.decoder)
        with meter.stage(f"{FILING_STAGE}: file (identity)"):
            assert self.filer is not None, "the bench runs with identity on"
            events = [cast(Event, event) for _, event in decoded.events]
            homes = self.filer.file(events)
            batch = FiledBatch(next_offsets=decoded.result.next_offsets)
            for (rec, event), home in zip(decoded.events, homes, strict=True):
                assert not isinstance(home, Unfiled), home
                batch.filings.append(filing_record(rec, cast(Event, event), home))
        with meter.stage(f"{FILING_STAGE}: append filings"):
            self.log.append(FILINGS_TOPIC, batch.filings)
        with meter.stage(f"{FILING_STAGE}: commit"):
            self.log.commit(TOUCHPOINTS_TOPIC, FILING_STAGE, batch.next_offsets)

    def _consume(self, projection: Projection, count: int, meter: Meter) -> None:
        group = projection.name
        with meter.stage(f"{group}: poll"):
            records = self.log.poll(FILINGS_TOPIC, group, count, 0.0)
        with meter.stage(f"{group}: decode"):
            decoded = decode_batch(group, records, self.decode_filing)  # as the runners do
        with meter.stage(f"{group}: build rows"):
            homes = [filed_home(rec) for rec, _ in decoded.events]
            result = project_batch(decoded, projection.rows, homes)
        with meter.stage(f"{group}: insert (chdb)"):
            for table, rows in result.rows.items():
                self.warehouse.insert(table, rows)
        statements = [_raw_insert(table, rows) for table, rows in result.rows.items() if rows]
        with meter.stage(BASELINES[1]):
            for sql in statements:
                self.raw_engine.query(sql, "TabSeparated")
        with meter.stage(f"{group}: commit"):
            self.log.commit(FILINGS_TOPIC, group, result.next_offsets)


def _validated(raw: Any, received: datetime) -> tuple[Event, str]:
    checked = validate_item(0, raw, TENANT, received, EVENT_LIMIT)
    if isinstance(checked, ItemResult):
        raise ValueError(f"the mix holds an event the ingest rejects: {checked.errors}")
    return checked


def _raw_insert(table: str, rows: Sequence[dict[str, Any]]) -> str:
    """The same rows already serialised in the format the adapter sends (columns of JSON), so the
    baseline is the engine's parse and store alone."""
    columns = list(rows[0])
    body = orjson.dumps([[row[c] for row in rows] for c in columns], default=list).decode()
    return f"INSERT INTO {RAW_DATABASE}.{table} ({', '.join(columns)}) FORMAT JSONCompactColumns\n{body}"


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def render(meter: Meter, stages: Sequence[str]) -> str:
    """The table: CPU and wall µs per event by stage, each stage's share of the pipeline's CPU."""
    total = sum(meter.cpu[s] for s in stages)
    per = 1e6 / max(1, meter.events)
    lines = [f"{'stage':<34} {'cpu µs/ev':>10} {'wall µs/ev':>11} {'cpu share':>10}"]
    for name in [*stages, "total (pipeline)", *BASELINES]:
        cpu = total if name == "total (pipeline)" else meter.cpu[name]
        wall = (
            sum(meter.wall[s] for s in stages) if name == "total (pipeline)" else meter.wall[name]
        )
        share = f"{100 * cpu / total:9.1f}%" if total and name in stages else ""
        lines.append(f"{name:<34} {cpu * per:>10.1f} {wall * per:>11.1f} {share:>10}")
    rate = meter.events / total if total else float("inf")
    lines.append(f"one core at this cost: {rate:,.0f} ev/s through every stage")
    return "\n".join(lines)


def profile_cycle(pipeline: Pipeline, raws: list[dict[str, Any]], top: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(pipeline.cycle, raws, Meter())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run(args: argparse.Namespace, root: Path) -> str:
    measured = measure(args.mix, args.events, args.customers, args.batch, args.seed, root,
                       args.profile_top)  # fmt: skip
    return str(measured["text"])


# The issue's five stages, each the sum of the finer ones above (both groups' for a group stage).
SUMMARY = {
    "validate": ("parse body", "validate", "identifier notes", "encode"),
    "publish": ("publish (claims+append)",),
    "file": ("file (identity)",),
    "project": ("poll", "decode", "build rows", "commit"),
    "insert": ("insert (chdb)",),
}


def summarise(meter: Meter, stages: Sequence[str]) -> dict[str, float]:
    """CPU µs per event of each of the five stages (validate, publish, file, project, insert)."""
    per = 1e6 / max(1, meter.events)
    found = {}
    for name, parts in SUMMARY.items():
        cpu = sum(meter.cpu[s] for s in stages if s in parts or s.split(": ", 1)[-1] in parts)
        found[name] = cpu * per
    return found


def measure(
    mix_name: str,
    events: int,
    customers: int,
    batch: int,
    seed: int,
    root: Path,
    profile_top: int = 0,
) -> dict[str, Any]:
    """Run the stages over a mix; the table as printed, and the figures by stage."""
    mix = MIXES[mix_name](seed, events, customers)
    batches = [mix[i : i + batch] for i in range(0, len(mix), batch)]
    pipeline, meter = Pipeline(root), Meter()
    warm_up_sentiment()  # as the platform's processes do at start: loading is not a per-event cost
    profiled, report = len(batches) // 2, ""
    load_before = load_average()
    try:
        for n, raws in enumerate(batches):
            if n == profiled and profile_top:
                report = profile_cycle(pipeline, raws, profile_top)
            else:
                pipeline.cycle(raws, meter if n else Meter())  # batch 0 warms up
        stages = pipeline_stages([p.name for p in pipeline.projections])
    finally:
        pipeline.close()
    load_after = load_average()
    head = (
        f"{meter.events} events measured in batches of {batch} "
        f"({len(mix)} in the {mix_name} mix of {customers} customers or more, "
        f"seed {seed}; "
        "first batch and the profiled one left out)\n"
        f"load average before: {load_before}  after: {load_after}  cores: {os.cpu_count()}"
    )
    tail = f"\ncProfile of batch {profiled} (top {profile_top} by cumulative time):\n{report}"
    per = 1e6 / max(1, meter.events)
    return {
        "mix": mix_name,
        "events": meter.events,
        "batch": batch,
        "cpu_us_per_event": {s: meter.cpu[s] * per for s in [*stages, *BASELINES]},
        "summary_cpu_us_per_event": summarise(meter, stages),
        "load_before": [float(v) for v in load_before.split()],
        "load_after": [float(v) for v in load_after.split()],
        "text": head + "\n\n" + render(meter, stages) + (tail if profile_top else ""),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=20_000, help="events in the mix")
    p.add_argument(
        "--mix",
        choices=sorted(MIXES),
        default="identity",
        help="identity: the identity bench's population, identifiers as people write them "
        "(default); demo: the demo generator's clean identifiers",
    )
    p.add_argument("--customers", type=int, default=2_000, help="population size (at least)")
    p.add_argument("--batch", type=int, default=500, help="events per client batch")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--profile-top", type=int, default=30, help="functions shown; 0: no profile")
    p.add_argument("--data-dir", type=Path, help="where to build the scratch stores (default: tmp)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.batch < 1 or args.events < 3 * args.batch:
        print("bench.stages: --events must be at least three batches (--batch)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cem-stages-", dir=args.data_dir) as scratch:
        print(run(args, Path(scratch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

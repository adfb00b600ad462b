"""The distributed stream workers: the filing app and one faust app per projection, a few lines
per batch (`kernel.filings`).

The filing app (`cem serve filing`, group `filing`) reads `touchpoints`: per batch it decodes,
admits and files the events, appends one sealed filing per event to the `filings` topic (keyed by
customer), writes the dead letters (table, then topic), and only then acks the events. A projection
app reads `filings`: per batch it projects each event under the customer its filing names, inserts
the rows, writes its dead letters, and only then acks, which is what lets faust commit the offsets
(ARCHITECTURE: a consumer commits only after its writes are acknowledged). The app id is the stage's
name, which is also the Kafka consumer group: the workers of one app share the topic's partitions,
one worker per partition at most.

How offsets are committed, and why never before the writes:
- aiokafka's auto-commit is always off under faust. faust commits, per partition, the offset after
  the longest unbroken run of *acked* offsets: on a timer (`broker_commit_interval`), after
  `broker_commit_every` acks, on rebalance and on stop; commits for partitions revoked meanwhile are
  discarded. So what decides safety is only when an event is acked.
- `stream.take()` acks its batch in a `finally` that runs when the loop asks for the next batch,
  but also when the generator is closed: faust's `Stream.on_stop` closes it on shutdown, and a body
  that raises abandons it. Either would ack, then commit, a batch whose insert never happened. So
  the agent uses `noack_take()` (the same buffering by size and time, F10) and acks the events
  itself, after the rows and dead letters are written.
- While ClickHouse is down the agent retries the same batch with capped backoff and acks nothing
  (F08). A worker that dies or stops with a batch written but not acked leaves it to be read again
  from the committed offset; the re-insert is harmless because the tables are ReplacingMergeTree
  and every read deduplicates by event id (F03, F04, F09).
- `stream_wait_empty=False`: stop and rebalance do not wait for the batch in flight (they would wait
  for as long as ClickHouse is down); they commit what is acked and the rest is read again.
- `stream_buffer_maxsize` and `broker_max_poll_records` only bound prefetching (back-pressure):
  prefetched records are not acked, so they are not committed either.

Identity (CEM_IDENTITY=eventsourced): the filing app files every batch with the identity service
on the shared PostgreSQL store (`cem.distributed.identity_on_postgres`); without it, an event is
filed under its customer key. The projection apps never open the identity store. While the store
cannot answer (down, or still conflicting: `services.identity.filing.TRANSIENT`) the filing agent
retries the same batch with capped backoff and acks nothing, like a warehouse outage: nothing is
dead-lettered for it. Filings are sealed with the platform's key (`cem.record_seal`), like the
ingest's records: a projection app takes only sealed filings, so nobody who can merely write to
Kafka can choose which customer an event is filed under.

Health: with `CEM_WORKER_WEB_PORT` set, faust's web server answers `GET /` with {"status": "OK"}
while the event loop runs; use it as the liveness probe. A worker serves no traffic, so it needs no
readiness probe; its progress is the consumer group's lag.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import faust
from mode import CrashingSupervisor
from pydantic import Field

from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse, WarehouseUnavailable
from cem.adapters.kafka_log import KafkaLog, Leadership
from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
from cem.direct_ingest import RecordDecoder, TimedConsumed
from cem.record_seal import is_sealed_filing, sealed_filing
from cem.runner import Failures, Runner, ensure_tables, write_dead_letters
from cem.sealing import opener_for
from kernel.filings import FILING_STAGE, FiledBatch, file_batch, project_filings
from kernel.ports import (
    DEAD_LETTER_TOPIC,
    FILINGS_TOPIC,
    TOUCHPOINTS_TOPIC,
    Consumed,
    EventLog,
    LogUnavailable,
    Warehouse,
)
from kernel.private_files import private_dir
from kernel.processing import BatchResult, Eraser, Filer, Projection, Unadmitted
from kernel.settings import CoreSettings
from schemas.envelope import Event
from services.identity.filing import TRANSIENT, IdentityFiler
from services.identity.resolver import IdentityResolver

log = logging.getLogger(__name__)

Headers = tuple[tuple[str, bytes], ...]
T = TypeVar("T")
FIRST_RETRY_S = 0.2
DEFAULT_DATABASE = "cem"
COMMIT_INTERVAL_S = 0.5


class WorkerSettings(CoreSettings):
    """A stream worker's settings (env prefix CEM_); the engines' endpoints come from CoreSettings."""

    source_topic: str = TOUCHPOINTS_TOPIC  # another name only to isolate tests or a replay
    filings_topic: str = FILINGS_TOPIC  # likewise
    batch_max_records: int = Field(default=5000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=30.0, gt=0)
    # How soon a dead worker's partitions move to the others (F05). faust's default is 60 s; a
    # batch in progress does not block heartbeats, since the writes run in a thread.
    worker_session_timeout_s: float = Field(default=10.0, ge=3, le=90)
    worker_web_port: int | None = Field(default=None, ge=1, le=65535)  # None: no web server
    worker_web_host: str = "127.0.0.1"
    worker_log_level: str = "info"
    # Fault tests only (F03): wait between the writes and the ack, so a test can kill us there.
    test_pause_after_write_s: float = Field(default=0.0, ge=0)


def as_worker_settings(settings: CoreSettings | None) -> WorkerSettings:
    if isinstance(settings, WorkerSettings):
        return settings
    return WorkerSettings(**(settings.model_dump() if settings else {}))


def database_of(url: str) -> str:
    """The warehouse database named by the URL's path (`clickhouse://host:9000/cem` → cem)."""
    return urlsplit(url).path.strip("/") or DEFAULT_DATABASE


# --------------------------------------------------------------------- writing a batch
@dataclass
class Sink:
    """Where a batch's records are judged and its results go: the ingest's idempotency claims
    (which admit records written straight to Kafka, and hold the platform's seal key), the
    warehouse tables and the log (filings and dead letters)."""

    warehouse: Warehouse
    event_log: EventLog
    claims: PostgresIdempotencyIndex
    decode: RecordDecoder

    def write(self, result: BatchResult) -> None:
        """The same writes, in the same order, as the embedded runner's `run_once`."""
        for table, rows in result.rows.items():
            if rows:
                self.warehouse.insert(table, rows)
        write_dead_letters(self.event_log, self.warehouse, result.dead_letters)

    def write_filings(self, batch: FiledBatch, topic: str) -> None:
        """The filings (sealed), then the dead letters: all durable before the touchpoints'
        offsets move past them."""
        filings = [sealed_filing(record, self.decode.seal_key) for record in batch.filings]
        self.event_log.append(topic, filings)
        self.write(BatchResult(dead_letters=batch.dead_letters))

    def decode_filing(self, rec: Consumed) -> Event:
        return decode_sealed_filing(self.decode, rec)

    def close(self) -> None:
        if self.decode.opener is not None:
            self.decode.opener.close()
        self.warehouse.close()
        self.event_log.close()
        self.claims.close()


def decode_sealed_filing(decode: RecordDecoder, rec: Consumed) -> Event:
    """A filing's event; raises (a dead letter) unless the filing stage sealed it: its own seal
    covers the customer and position, not only the bytes (a touchpoint's seal is not enough)."""
    if not is_sealed_filing(rec, decode.seal_key):
        raise ValueError("a filing must carry the filing stage's seal over its customer and bytes")
    item = decode(rec)
    if isinstance(item, Unadmitted):
        raise ValueError("a filing must carry the platform's seal (written by the filing app)")
    return item


def connect(settings: WorkerSettings, projections: Sequence[Projection]) -> Sink:
    """The sink, with tables and topics ensured; waits (with backoff) for ClickHouse, Kafka and
    PostgreSQL."""
    delay = FIRST_RETRY_S
    while True:
        try:
            return _prepare(settings, projections)
        except (WarehouseUnavailable, LogUnavailable) as exc:
            log.warning("not ready (%s); trying again in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, settings.retry_max_s)


def _prepare(settings: WorkerSettings, projections: Sequence[Projection]) -> Sink:
    warehouse = ClickHouseWarehouse(settings.clickhouse_url, database_of(settings.clickhouse_url))
    event_log = KafkaLog(
        settings.kafka_bootstrap,
        partitions=settings.partitions,
        replication=settings.kafka_replication,
    )
    try:
        claims = PostgresIdempotencyIndex(
            settings.postgres_dsn.get_secret_value(), pool_size=2, timeout_s=5.0
        )
    except BaseException:
        warehouse.close()
        event_log.close()
        raise
    sink = Sink(warehouse, event_log, claims, RecordDecoder(b""))
    try:
        # Sealed personal data (docs/erasure.md) is opened once the record's seal verifies.
        opener = opener_for(settings.model_copy(update={"mode": "distributed"}))
        sink.decode = RecordDecoder(claims.seal_key(), opener)
        ensure_tables(warehouse, projections)
        # faust creates only its internal topics. Created here, the topics get the partition count
        # the ingest uses, not the broker's default, whoever starts first.
        for topic in (settings.source_topic, settings.filings_topic, DEAD_LETTER_TOPIC):
            event_log.ensure_topic(topic)
    except BaseException:
        sink.close()
        raise
    return sink


def connect_identity(settings: WorkerSettings) -> IdentityResolver | None:
    """The identity resolver on the shared PostgreSQL store when CEM_IDENTITY=eventsourced, else
    None (events are filed under their customer key); waits (with backoff) for PostgreSQL."""
    if settings.identity != "eventsourced":
        return None
    from cem.distributed import identity_on_postgres

    delay = FIRST_RETRY_S
    while True:
        try:
            return identity_on_postgres(settings)
        except TRANSIENT as exc:
            log.warning("identity store not ready (%r); trying again in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, settings.retry_max_s)


async def until_done(
    call: Callable[[], T],
    doing: str,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    settings: WorkerSettings,
) -> T:
    """Run `call` in a thread (the drivers block, and faust's heartbeats share this event loop),
    retrying it with capped exponential backoff while it raises `retry_on`."""
    delay = FIRST_RETRY_S
    while True:
        try:
            found = await asyncio.to_thread(call)
        except retry_on as exc:
            log.warning("%s failed (%r); retrying it in %.1fs", doing, exc, delay)
            FAILING.failed(doing, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.retry_max_s)
        else:
            if FAILING.succeeded(doing) is not None:
                log.warning("%s succeeded again", doing)
            return found


# What this worker keeps failing at (one worker app per process), for its /health and /ready.
FAILING = Failures()


# What makes the filing stage file the same batch again later: the claims or identity (PostgreSQL),
# the key vault (`LogUnavailable`) or, for an erasure's deletions, the warehouse not answering.
FILING_OUTAGES = (*TRANSIENT, LogUnavailable, WarehouseUnavailable)


async def file_until_done(
    records: Sequence[TimedConsumed],
    filer: Filer | None,
    settings: WorkerSettings,
    sink: Sink,
    eraser: Eraser | None = None,
) -> FiledBatch:
    """Decode, admit and file the batch (and carry out its erasures). While the claims, identity,
    the key vault or (for an erasure) the warehouse cannot answer, the same batch is filed again later: nothing is acked, and
    no event becomes a dead letter because of an outage."""

    def file() -> FiledBatch:
        return file_batch(records, filer, sink.decode, sink.claims, eraser)

    return await until_done(file, "filing a batch", FILING_OUTAGES, settings)


async def write_until_done(write: Callable[[], None], settings: WorkerSettings) -> None:
    """Write the batch, retrying the same batch with capped exponential backoff (F08). Any
    failure is retried: nothing is acked before the write, so retrying is always safe."""
    await until_done(write, "writing a batch", Exception, settings)
    if settings.test_pause_after_write_s:
        log.warning("test hook: batch written, pausing before the ack")
        await asyncio.sleep(settings.test_pause_after_write_s)


# --------------------------------------------------------------------- the faust app
def to_consumed(event: faust.EventT) -> TimedConsumed:
    message = event.message
    return TimedConsumed(
        message.topic,
        message.partition,
        message.offset,
        message.key or b"",
        message.value or b"",
        _headers(message.headers),
        # faust keeps the broker's milliseconds as float seconds; round() gets them back exactly.
        timestamp_ms=None if message.timestamp is None else round(message.timestamp * 1000),
    )


def _headers(headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None) -> Headers:
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    return tuple((name, value or b"") for name, value in pairs)


Step = Callable[[list[TimedConsumed]], Awaitable[None]]


def batch_agent(settings: WorkerSettings, step: Step) -> Callable[[faust.StreamT], Awaitable[None]]:
    """The agent: take a batch, process and write it (`step`), and only then ack it (see the
    module docstring)."""

    async def process(stream: faust.StreamT) -> None:
        # noack_take is on faust's Stream, not on its StreamT protocol.
        batches = cast(faust.Stream, stream).noack_take(
            settings.batch_max_records, within=settings.batch_within_s
        )
        async for taken in batches:
            events = cast(Sequence[faust.EventT], taken)  # noack_take yields events, not values
            await step([to_consumed(event) for event in events])
            for event in events:
                await stream.ack(event)

    return process


def filing_step(
    settings: WorkerSettings, sink: Sink, filer: Filer | None, eraser: Eraser | None = None
) -> Step:
    """File a batch of touchpoints (carrying out its erasures) and append its filings."""

    async def step(records: list[TimedConsumed]) -> None:
        batch = await file_until_done(records, filer, settings, sink, eraser)
        write = partial(sink.write_filings, batch, settings.filings_topic)
        await write_until_done(write, settings)

    return step


def projection_step(projection: Projection, settings: WorkerSettings, sink: Sink) -> Step:
    """Project a batch of filings and write the rows. Opening sealed filings reads the key vault,
    which may be down: then the same batch is projected again, with backoff."""

    def project(records: list[TimedConsumed]) -> BatchResult:
        # The keys any process destroyed so far are dropped before the batch is opened: a
        # filing appended after an erasure is never opened with its keys (docs/erasure.md).
        if sink.decode.opener is not None:
            sink.decode.opener.follow()
        return project_filings(projection.name, records, projection.rows, sink.decode_filing)

    async def step(records: list[TimedConsumed]) -> None:
        batch = partial(project, records)
        result = await until_done(batch, "projecting a batch", LogUnavailable, settings)
        await write_until_done(partial(sink.write, result), settings)

    return step


def datadir(settings: WorkerSettings, name: str) -> Path:
    # faust wants a directory even without tables; it creates only the last component itself.
    return settings.data_dir / "faust" / name


def create_app(name: str, source_topic: str, settings: WorkerSettings, step: Step) -> faust.App:
    """A faust app whose id, and consumer group, is the stage's `name`, running `step` on each
    batch of `source_topic`."""
    app = faust.App(
        name,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.kafka_replication,
        topic_disable_leader=True,  # no tables, so faust's leader topic serves nothing
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=False,
        # What is acked is committed every half second, not faust's 2.8 s: the ingest lets bulk
        # requests in by the groups' committed offsets (services/ingest/backlog.py), so a longer
        # interval would have them wait for commits rather than for the work. Still only acked
        # offsets: when an event is acked is what decides safety (above).
        broker_commit_interval=COMMIT_INTERVAL_S,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=settings.worker_session_timeout_s / 4,
        web_enabled=settings.worker_web_port is not None,
        web_port=settings.worker_web_port or 6066,
        web_bind=settings.worker_web_host,
        datadir=str(datadir(settings, name)),
        autodiscover=False,
    )
    topic = app.topic(
        source_topic,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    add_health_page(app, name)
    # A crashed agent must take the worker down: faust's default supervisor would restart it
    # without the batch it held, and acking later batches past that gap can commit over it.
    app.agent(
        topic,
        name=f"{name}-batches",
        concurrency=1,
        supervisor_strategy=CrashingSupervisor,
    )(batch_agent(settings, step))
    return app


def add_health_page(app: faust.App, name: str) -> None:
    """`GET /health` for container probes: the worker process is up and its app is running,
    `degraded` with what it keeps failing at (a store down: a review saw `ok` while every batch
    failed); `GET /ready`: 503 naming it meanwhile, as every HTTP process of the platform does."""

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        if FAILING.now:
            return web.json({"status": "degraded", "service": name, "failing": FAILING.now})
        return web.json({"status": "ok", "service": name})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        checks = {doing: f"unavailable: {state['error']}" for doing, state in FAILING.now.items()}
        if checks:
            body = {"status": "unavailable", "checks": checks}
            return web.json(body, status=503, headers={"Retry-After": "5"})
        return web.json({"status": "ready", "checks": {}})


def run_worker(projection: Projection, settings: CoreSettings | None = None) -> None:
    """Run one worker of the projection's app on `filings` until SIGTERM or SIGINT (blocking)."""
    config = as_worker_settings(settings)
    private_dir(datadir(config, projection.name).parent)
    sink = connect(config, [projection])
    step = projection_step(projection, config, sink)
    try:
        _execute(create_app(projection.name, config.filings_topic, config, step), config)
    finally:
        sink.close()


def run_filing_worker(settings: CoreSettings | None = None, row_groups: Sequence[str] = ()) -> None:
    """Run one worker of the filing app on `touchpoints` until SIGTERM or SIGINT (blocking).
    `row_groups`: the projection workers' groups; with them, each erasure's warehouse rows are
    deleted once those groups have projected what was filed before it (`erased_rows`)."""
    config = as_worker_settings(settings)
    private_dir(datadir(config, FILING_STAGE).parent)
    sink = connect(config, [])
    try:
        identity = connect_identity(config)
    except BaseException:
        sink.close()
        raise
    # One filer per process: it remembers its answers, so a redelivered batch is not resolved again.
    filer = IdentityFiler(identity) if identity is not None else None
    rows = erased_rows(config, sink, identity, row_groups)
    eraser = filing_eraser(config, sink, identity, with_warehouse=rows is None)
    step = filing_step(config, sink, filer, eraser)
    if rows is not None:
        rows.start()
    try:
        _execute(create_app(FILING_STAGE, config.source_topic, config, step), config)
    finally:
        if rows is not None:
            rows.stop()
        sink.close()
        if identity is not None:
            identity.close()


def filing_eraser(
    config: WorkerSettings,
    sink: Sink,
    identity: IdentityResolver | None,
    with_warehouse: bool = True,
) -> Eraser | None:
    """The filing stage's handler of erasures (`cem.erasure`), on the opener's vault and cache;
    without the warehouse, another consumer deletes the rows (`erased_rows`)."""
    from cem.erasure import eraser_for

    opener = sink.decode.opener
    if opener is None:
        return None
    settings = config.model_copy(update={"mode": "distributed"})
    return eraser_for(identity, opener, settings, sink.warehouse if with_warehouse else None)


def erased_rows(
    config: WorkerSettings,
    sink: Sink,
    identity: IdentityResolver | None,
    row_groups: Sequence[str],
) -> Runner | None:
    """A thread of the filing worker reading `filings` as group `erased-rows`: it deletes each
    erasure's warehouse rows once every projection group has committed what was filed before it
    (`cem.erasure.delete_erased_rows`), so a projection lagging behind the erasure does not
    insert the customer's rows after the deletion."""
    from cem.erasure import ERASED_ROWS, CustomerEraser, Pending, delete_erased_rows

    eraser = filing_eraser(config, sink, identity)
    if not row_groups or not isinstance(eraser, CustomerEraser):
        return None
    event_log = cast(KafkaLog, sink.event_log)
    # One filing worker of the deployment deletes the rows: the one Kafka's group coordinator
    # makes the leader. With several, each reading every partition would delete each erasure's
    # rows again and move the group's offsets back.
    leadership = Leadership(event_log, ERASED_ROWS_LEADER, ERASED_ROWS_LEADER)
    waiting = Pending()
    leading = False

    def step() -> int:
        nonlocal leading
        if not leadership.leads(timeout_s=0.1 if leading else 1.0):
            if leading:
                log.info("erased-rows: another filing worker deletes erased rows now")
            leading = False
            return 0
        if not leading:  # the leader before may have committed further than this reader read
            event_log.forget_reader(config.filings_topic, ERASED_ROWS)
            waiting.reset()
            leading = True
            log.info("erased-rows: this filing worker deletes erased rows")
        return delete_erased_rows(
            event_log,
            eraser,
            sink.decode_filing,  # only what the filing stage sealed names a customer
            timeout_s=1.0,
            row_groups=row_groups,
            # A projection worker never deployed here (no commit on filings yet) is not waited
            # for; one deployed later starts from the log's beginning.
            deployed_only=True,
            waiting=waiting,
            topic=config.filings_topic,
            # Several filing workers: one may append a filing resolved before the erasure after
            # the erasure's own; the mark waits for the filing group to pass the touchpoints.
            upstream=(config.source_topic, FILING_STAGE),
        )

    runner = _LedRunner(ERASED_ROWS, step, leadership)
    waiting.sleep = runner.stopping.wait
    return runner


# The consumer group (and its topic, never written) whose member holding partition 0 is the
# filing worker that runs the `erased-rows` thread (`cem.adapters.kafka_log.Leadership`).
ERASED_ROWS_LEADER = "erased-rows-leader"


class _LedRunner(Runner):
    """A runner whose step runs only while its process leads; stopping it leaves the group."""

    def __init__(self, name: str, step: Callable[[], int], leadership: Leadership) -> None:
        super().__init__(name, step)
        self.leadership = leadership

    def stop(self, timeout_s: float = 10.0) -> None:
        super().stop(timeout_s)
        self.leadership.close()


def _execute(app: faust.App, config: WorkerSettings) -> None:
    worker = faust.Worker(app, loglevel=config.worker_log_level, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()  # installs the signal handlers; always raises SystemExit
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise

"""The composition root of the embedded mode: every service in one process, no servers.

`build` constructs the real adapters inside itself; tests pass in-memory twins or their own instances.
Nothing is built at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.sqlite_access_audit import AUDIT_FILE, SqliteAccessAudit
from cem.adapters.sqlite_calendars import CALENDARS_FILE, SqliteCalendarStore
from cem.adapters.sqlite_channels import SqliteChannelStore
from cem.adapters.sqlite_keys import SqliteKeyStore
from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher
from cem.adapters.sqlite_snapshot import first_values
from cem.adapters.sqlite_users import SqliteUserStore
from cem.erasure import ERASED_ROWS, CustomerEraser, Pending, delete_erased_rows
from cem.filing_process import FilingProcess
from cem.identity import build_identity
from cem.platform_keys import local_platform_key
from cem.projection_set import default_projections
from cem.runner import (
    DEAD_LETTER_SINK,
    Runner,
    dead_letter_sink,
    ensure_tables,
    filing_runner,
    projection_runner,
    skip_to_end,
)
from cem.sealing import close_sealing, default_rules, log_sealed, opener_for, sealing_publisher
from kernel import api_errors, auth, readiness, web_security
from kernel.access_audit import audit_probe
from kernel.accounts import Accounts
from kernel.channels import ChannelStore
from kernel.clock import SystemClock
from kernel.decoding import SharedDecoder
from kernel.filings import FILING_STAGE, through_touchpoints
from kernel.partitioning import touchpoint_bucket_key
from kernel.ports import (
    DEAD_LETTER_TOPIC,
    FILINGS_TOPIC,
    TOUCHPOINTS_TOPIC,
    AccessAudit,
    Clock,
    EventLog,
    KeyStore,
    Publisher,
    UserStore,
    Warehouse,
)
from kernel.private_files import private_dir
from kernel.processing import Eraser, Projection, Rows
from kernel.sealing import KeyCache
from kernel.secrets import SecretBox
from kernel.settings import CoreSettings, IngestSettings
from kernel.wakeup import Wakeup
from kernel.write_watch import WatchedPublisher
from services.identity.filing import IdentityFiler
from services.identity.resolver import IdentityResolver
from services.identity.settings import IdentitySettings
from services.ingest.backlog import BacklogGate, LogBacklog
from services.projections.arrivals import ARRIVALS, LatestPositions, positions_of
from services.service_metrics.calendar import CachedCalendars, CalendarStore


def embedded_channels(settings: CoreSettings) -> SqliteChannelStore:
    """The channel store of an embedded data directory (secrets sealed with the platform key)."""
    box = SecretBox(local_platform_key(settings))
    return SqliteChannelStore(settings.data_dir / "channels.sqlite", box)


def embedded_identity(data_dir: Path, settings: CoreSettings | None = None) -> IdentityResolver:
    """The identity store of an embedded data directory (eventsourcing on SQLite), with the
    platform's settings when given (its key, whether personal data is sealed), else the
    environment's."""
    values = settings.model_dump() if settings is not None else {}
    return build_identity(IdentitySettings(**{**values, "mode": "embedded", "data_dir": data_dir}))


@dataclass
class Platform:
    """Everything `cem up` runs, wired together."""

    settings: IngestSettings
    log: EventLog
    publisher: Publisher
    warehouse: Warehouse
    keys: KeyStore
    clock: Clock
    projections: list[Projection]
    identity: IdentityResolver | None
    app: FastAPI
    users: UserStore | None = None
    runners: list[Runner] = field(default_factory=list)
    channels: ChannelStore | None = None
    access_audit: AccessAudit | None = None
    # Tenants' time zones and opening hours (services/service_metrics/calendar.py).
    calendars: CalendarStore | None = None
    # The key touchpoint record keys are bucketed with (`kernel.partitioning.touchpoint_key`).
    bucket_key: bytes = b""
    filer: IdentityFiler | None = field(init=False)
    decoder: SharedDecoder = field(init=False, default_factory=SharedDecoder)
    # Told when a projection stored stream arrivals: live streams poll at once (kernel/wakeup.py).
    arrivals_stored: Wakeup = field(init=False, default_factory=Wakeup)
    # And where they reached: a first timeline page's stream cursor, without a query.
    latest_arrivals: LatestPositions = field(init=False)
    # The filing stage's own process, when `start(filing_process=True)` started one.
    filing_process: FilingProcess | None = field(init=False, default=None)
    # How the ingest's writes to the log are going, when `build` made its publisher.
    writes: WatchedPublisher | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # One filer (the filing stage's) and one decoder for every runner: the projections read
        # the events the filing stage decoded from memory (a filing holds its touchpoint's bytes).
        self.filer = IdentityFiler(self.identity) if self.identity is not None else None
        self.latest_arrivals = LatestPositions(self.warehouse, told=True)

    def start(self, *, filing_process: bool = False) -> None:
        """Start the runners. `filing_process`: the filing stage in a process of its own
        (`cem.filing_process`, a second core; needs the data directory's SQLite log and identity
        store, which that process opens too), else a thread beside the projections."""
        ensure_tables(self.warehouse, self.projections)
        # The projections decode a filing as its touchpoint, by the touchpoint's position, so
        # they take the event the filing stage decoded from the shared decoder (in this process).
        as_touchpoint = through_touchpoints(self.decoder, TOUCHPOINTS_TOPIC)
        # Before each batch, the keys another process (the filing process) destroyed are dropped,
        # and with them the events opened under them (docs/erasure.md, step 4).
        opener = self.decoder.opener
        follow = opener.follow if opener is not None else None
        if opener is not None:
            opener.cache.on_destroyed(self.decoder.forget)
        self.runners = [
            projection_runner(
                self.log, self.warehouse, p, as_touchpoint, self._wake_streams, follow
            )
            for p in self.projections
        ]
        if filing_process:
            self._start_filing_process()
        else:
            # The filing stage erases without the warehouse here too: the rows go through the
            # `erased-rows` group, once the projections stored what was filed before the erasure.
            filing = filing_runner(
                self.log, self.warehouse, self.filer, self.decoder, self._eraser(rows=False)
            )
            self.runners.insert(0, filing)
        self._start_erased_rows()
        for runner in self.runners:
            runner.start()
        # Bulk requests wait while these runners are behind (services/ingest/backlog.py).
        backlog = LogBacklog(self.log, [p.name for p in self.projections])
        self.app.state.backlog_gate = BacklogGate(backlog, self.settings)

    def _eraser(self, *, rows: bool = True) -> Eraser | None:
        """The handler of erasures (`cem.erasure`), on the vault and the key cache the ingest and
        the projections of this process share; `rows`: it deletes the warehouse's rows too (the
        `erased-rows` group's), else it leaves them (the filing stage's)."""
        from cem.erasure import eraser_for

        opener = self.decoder.opener
        if opener is None:
            return None
        warehouse = self.warehouse if rows else None
        return eraser_for(self.identity, opener, self.settings, warehouse, self.decoder.forget)

    def _start_filing_process(self) -> None:
        assert isinstance(self.log, SqliteLog), "the filing process opens the SQLite log"
        skip_to_end(self.log, DEAD_LETTER_TOPIC, DEAD_LETTER_SINK)
        self.log.watch_other_processes()  # the filings the other process appends
        self.filing_process = FilingProcess(self.settings)
        self.filing_process.start()
        self.runners.append(dead_letter_sink(self.log, self.warehouse))
        self.app.state.readiness["filing"] = self.filing_process.check

    def _start_erased_rows(self) -> None:
        """The `erased-rows` group: the filing stage (a thread or a process of its own, which
        may not open chdb) erases without the warehouse, and this group deletes the rows of each
        erasure it filed once every projection group stored what was filed before it (deleted
        earlier, a projection behind the erasure would insert those rows again, in clear on a
        clear log). It starts at the log's beginning, not its end: deleting again is idempotent
        and finds nothing, and it reaches the rows an earlier filing stage left
        (docs/erasure.md)."""
        eraser = self._eraser()
        if not isinstance(eraser, CustomerEraser):
            return
        as_touchpoint = through_touchpoints(self.decoder, TOUCHPOINTS_TOPIC)
        groups = tuple(p.name for p in self.projections)
        waiting = Pending()
        runner = Runner(
            ERASED_ROWS,
            lambda: delete_erased_rows(
                self.log, eraser, as_touchpoint, row_groups=groups, waiting=waiting
            ),
        )
        waiting.sleep = runner.stopping.wait
        self.runners.append(runner)

    def _wake_streams(self, stored: Rows) -> None:
        if ARRIVALS in stored:
            self.latest_arrivals.stored(positions_of(stored[ARRIVALS]))
            self.arrivals_stored.notify()

    def stop(self) -> None:
        if self.filing_process is not None:
            self.filing_process.stop()
        for runner in self.runners:
            runner.stop()
        close_sealing(self.publisher)
        if self.decoder.opener is not None:
            self.decoder.opener.close()
        self.warehouse.close()
        self.log.close()
        if self.identity is not None:
            self.identity.close()
        if self.channels is not None:
            self.channels.close()
        close_audit = getattr(self.access_audit, "close", None)  # the port has no close
        if close_audit is not None:
            close_audit()
        if self.calendars is not None:
            self.calendars.close()

    def lag(self) -> dict[str, int]:
        """Records not yet processed, per consumer group: the filing stage's touchpoints, each
        projection's filings (filings are appended before the touchpoints are committed, so no
        event is between the two when both are zero), the `erased-rows` group's filings (so no
        lag means an erasure's rows are gone) and, beside a filing process, its dead letters."""
        groups = {FILING_STAGE: TOUCHPOINTS_TOPIC} | {
            p.name: FILINGS_TOPIC for p in self.projections
        }
        if self.filing_process is not None:
            groups[DEAD_LETTER_SINK] = DEAD_LETTER_TOPIC
        if any(r.stage == ERASED_ROWS for r in self.runners):
            groups[ERASED_ROWS] = FILINGS_TOPIC
        return {group: self._lag(topic, group) for group, topic in groups.items()}

    def _lag(self, topic: str, group: str) -> int:
        committed = self.log.committed(topic, group)
        return sum(
            end - committed.get(part, 0) for part, end in self.log.end_offsets(topic).items()
        )


def build(
    settings: IngestSettings | None = None,
    *,
    log: EventLog | None = None,
    publisher: Publisher | None = None,
    warehouse: Warehouse | None = None,
    keys: KeyStore | None = None,
    clock: Clock | None = None,
    identity: IdentityResolver | None = None,
    channels: ChannelStore | None = None,
    users: UserStore | None = None,
    access_audit: AccessAudit | None = None,
    calendars: CalendarStore | None = None,
) -> Platform:
    """Wire the embedded platform; any adapter given is used instead of the real one."""
    settings = settings or IngestSettings()
    data_dir = settings.data_dir
    private_dir(data_dir)
    if log is None:
        log = SqliteLog(data_dir / "log.sqlite", partitions=settings.partitions)
    watched: WatchedPublisher | None = None
    if publisher is None:
        assert isinstance(log, SqliteLog), "pass a publisher matching the given log"
        # What /ready says of writes (kernel/write_watch.py): a log that reads, refusing writes.
        publisher = watched = WatchedPublisher(SqlitePublisher(log), settings.publish_timeout_s)
    warehouse = warehouse or ChdbWarehouse(data_dir / "warehouse", database="cem")
    keys = keys or SqliteKeyStore(data_dir / "keys.sqlite")
    clock = clock or SystemClock()
    if identity is None and settings.identity == "eventsourced":
        identity = embedded_identity(data_dir, settings)
    resolver = identity
    # One process seals and opens: the keys the ingest made are the ones the readers need.
    keys_in_memory = KeyCache()
    publisher = sealing_publisher(
        publisher,
        settings,
        (lambda: resolver.rules) if resolver is not None else default_rules,
        keys_in_memory,
    )
    platform = Platform(
        settings,
        log,
        publisher,
        warehouse,
        keys,
        clock,
        default_projections(resolver.rules if resolver is not None else default_rules()),
        identity,
        FastAPI(),
        users or SqliteUserStore(data_dir / "users.sqlite"),
    )
    # Every reader of the log opens sealed records (docs/erasure.md), sealing on or not.
    platform.decoder = SharedDecoder(opener=opener_for(settings, keys_in_memory))
    platform.channels = channels or embedded_channels(settings)
    platform.access_audit = access_audit or SqliteAccessAudit(data_dir / AUDIT_FILE)
    platform.calendars = calendars or SqliteCalendarStore(data_dir / CALENDARS_FILE)
    # Derived like the channel secrets' and customer ids' keys: CEM_SECRET_KEY, else secret.key.
    platform.bucket_key = touchpoint_bucket_key(local_platform_key(settings))
    platform.writes = watched
    platform.app = create_app(platform)
    return platform


def health(platform: Platform) -> dict[str, Any]:
    """What /health says: the mode, each consumer group's backlog and, when the filing stage runs
    in a process of its own, that process; `degraded` and the stages whose batch keeps failing."""
    found: dict[str, Any] = {"mode": "embedded", "lag": platform.lag()}
    if platform.filing_process is not None:
        found["filing_process"] = platform.filing_process.state()
    # A stage whose batch keeps failing (a store locked or unwritable): named, with its error.
    failing = {r.stage: state for r in platform.runners if (state := r.failing()) is not None}
    if platform.filing_process is not None and (told := platform.filing_process.failing()):
        failing[FILING_STAGE] = told  # what the filing process says of its batch
    if failing:
        found |= {"status": "degraded", "failing": failing}
    return found


def _log_probe(platform: Platform) -> None:
    """The log answers a read, and the ingest's writes to it are getting through."""
    platform.log.end_offsets(TOUCHPOINTS_TOPIC)
    if platform.writes is not None:
        platform.writes.check()


def create_app(platform: Platform) -> FastAPI:
    """One HTTP app with the ingest and query routes, as `cem up` serves it."""
    from kernel.telemetry import router as telemetry_router
    from services.ingest.channels.router import router as channels_router
    from services.ingest.router import router as ingest_router
    from services.ingest.segment_router import install_segment
    from services.query_api.app import include_query_routes
    from services.query_api.web import include_web

    app = FastAPI(
        title="cem",
        version="0.1.0",
        description="Event-sourced omnichannel customer-experience platform (embedded mode).",
        docs_url=None,  # kernel.web_security serves /docs from local files
        redoc_url=None,
    )
    api_errors.install(app)
    web_security.install(app)
    state: dict[str, Any] = {
        "publisher": platform.publisher,
        "keys": platform.keys,
        "ingest_settings": platform.settings,
        "clock": platform.clock,
        "bucket_key": platform.bucket_key,
        "warehouse": platform.warehouse,
        "identity": platform.identity,
        "platform": platform,
        "channels": platform.channels,
        "accounts": Accounts(platform.users, platform.clock) if platform.users else None,
        "access_audit": platform.access_audit,
        # Read by every aggregate route: kept a few seconds (a PUT here is seen at once).
        "calendars": CachedCalendars(platform.calendars) if platform.calendars else None,
        "arrivals_stored": platform.arrivals_stored,
        "latest_arrivals": platform.latest_arrivals,
        "log_sealed": log_sealed(
            platform.settings,
            platform.identity,
            first_values(platform.settings.data_dir / "log.sqlite", TOUCHPOINTS_TOPIC),
        ),
    }
    for name, value in state.items():
        setattr(app.state, name, value)
    if platform.users is None:
        auth.without_sessions(app)
    app.include_router(ingest_router)
    install_segment(app)
    app.include_router(channels_router)
    app.include_router(telemetry_router)
    include_query_routes(app, health=lambda: health(platform))
    readiness.set_checks(
        app,
        {
            "event_log": lambda: _log_probe(platform),
            "warehouse": lambda: platform.warehouse.select("SELECT 1 AS ok"),
            **audit_probe(app),
        },
    )
    include_web(app)
    return app

"""The composition roots of the distributed mode: one per HTTP service process.

Like `cem.bootstrap.build`, each `build_*` constructs the real adapters inside itself from
settings (CEM_* environment) and takes any adapter given instead; nothing connects at import
time, and the Kafka clients connect on first use, so a service starts while Kafka is still down
and answers 503 until it is up (F01).

Identity (CEM_IDENTITY=eventsourced): the query API and both stream workers share one event-sourced
identity store in PostgreSQL (`identity_on_postgres`); the workers file events with it and the query
API reads customers through it (merged members, splits, the identity API). The PostgreSQL store
is created on first start; CEM_IDENTITY_POSTGRES_SCHEMA puts it in a schema of its own (which must
exist), CEM_IDENTITY_RULES_FILE gives other resolution rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import FastAPI

from cem.adapters.clickhouse_warehouse import ClickHouseWarehouse
from cem.adapters.kafka_log import KafkaLog
from cem.adapters.postgres_access_audit import PostgresAccessAudit
from cem.adapters.postgres_calendars import PostgresCalendarStore
from cem.adapters.postgres_channels import PostgresChannelStore
from cem.adapters.postgres_idempotency import PostgresIdempotencyIndex
from cem.adapters.postgres_keys import PostgresKeyStore
from cem.adapters.postgres_retention import PostgresRetentionStore
from cem.adapters.postgres_users import PostgresUserStore
from cem.adapters.sqlite_access_audit import AUDIT_FILE, SqliteAccessAudit
from cem.adapters.sqlite_keys import SqliteKeyStore
from cem.adapters.sqlite_retention import RETENTION_FILE, SqliteRetentionStore
from cem.adapters.sqlite_users import SqliteUserStore
from cem.platform_keys import shared_bucket_key
from cem.publishing import IdempotencyIndex, IdempotentPublisher
from cem.retention import RetentionStore
from cem.sealing import close_sealing, default_rules, log_sealed, sealing_publisher, unwrapped
from kernel import readiness
from kernel.channels import ChannelStore
from kernel.clock import SystemClock
from kernel.ports import (
    TOUCHPOINTS_TOPIC,
    AccessAudit,
    Clock,
    EventLog,
    KeyStore,
    LogUnavailable,
    Publisher,
    UserStore,
    Warehouse,
)
from kernel.settings import CoreSettings, IngestSettings, QuerySettings
from kernel.write_watch import WatchedPublisher
from services.service_metrics.calendar import CalendarStore

if TYPE_CHECKING:  # the identity store's client loads only when identity is switched on
    from services.identity.resolver import IdentityResolver

logger = logging.getLogger(__name__)


@dataclass
class IngestService:
    """The ingest process: its app and the adapters it owns."""

    settings: IngestSettings
    app: FastAPI
    publisher: Publisher  # an IdempotentPublisher, wrapped by a SealingPublisher when sealing
    log: EventLog
    index: IdempotencyIndex
    keys: KeyStore
    channels: ChannelStore | None = None
    closed: bool = False

    def start(self) -> None:
        """Create the topic now rather than on the first event; Kafka being down is not fatal."""
        if isinstance(self.log, KafkaLog):
            try:
                self.log.ensure_topic(TOUCHPOINTS_TOPIC)
            except LogUnavailable as exc:
                logger.warning("topic %s not ensured yet: %s", TOUCHPOINTS_TOPIC, exc)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            close_sealing(self.publisher)
            self.log.close()
            self.index.close()
            _close(self.keys)
            if self.channels is not None:
                self.channels.close()


@dataclass
class QueryService:
    """The query API process: its app and the adapters it owns."""

    settings: QuerySettings
    app: FastAPI
    warehouse: Warehouse
    keys: KeyStore
    identity: IdentityResolver | None = None  # None: CEM_IDENTITY=rule
    users: UserStore | None = None
    # Managers' alert actions are events: the query API publishes them like ingest does.
    publisher: Publisher | None = None
    access_audit: AccessAudit | None = None
    calendars: CalendarStore | None = None
    closed: bool = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            close_sealing(self.publisher)
            inner = unwrapped(self.publisher)
            if isinstance(inner, IdempotentPublisher):
                inner.log.close()
                inner.index.close()
            self.warehouse.close()
            _close(self.keys)
            _close(self.users)
            _close(self.access_audit)
            if self.calendars is not None:
                self.calendars.close()
            if self.identity is not None:
                self.identity.close()


def _close(store: KeyStore | UserStore | AccessAudit | None) -> None:
    close = getattr(store, "close", None)  # the ports have no close; the stores do
    if close is not None:
        close()


def postgres_dsn(settings: CoreSettings) -> str:
    return settings.postgres_dsn.get_secret_value()


def kafka_log(settings: CoreSettings, timeout_s: float = 5.0) -> KafkaLog:
    """The KafkaLog of CEM_KAFKA_BOOTSTRAP, CEM_PARTITIONS and CEM_KAFKA_REPLICATION."""
    return KafkaLog(
        settings.kafka_bootstrap,
        partitions=settings.partitions,
        replication=settings.kafka_replication,
        timeout_s=timeout_s,
    )


def warehouse_database(url: str) -> str:
    """The database the URL's path names (`clickhouse://host:9000/cem` → cem), else `cem`: the
    rule the stream workers write by (`cem.faust_worker.database_of`), so reads find their tables."""
    return urlsplit(url).path.strip("/") or "cem"


def identity_on_postgres(settings: CoreSettings) -> IdentityResolver:
    """The event-sourced identity resolver of the distributed mode: on the PostgreSQL server of
    CEM_POSTGRES_DSN, whatever CEM_MODE says, since every replica of every service must share it.
    Settings only identity has (CEM_IDENTITY_POSTGRES_SCHEMA, CEM_IDENTITY_RULES_FILE, ...) come
    from `settings` when it has them, else from the environment."""
    from cem.identity import build_identity
    from services.identity.settings import IdentitySettings

    values = {**settings.model_dump(), "mode": "distributed"}
    return build_identity(IdentitySettings(**values))


def keystore_from_settings(settings: CoreSettings | None = None) -> KeyStore:
    """The key store of the configured mode (CEM_MODE): PostgreSQL when distributed, else the
    SQLite file in the data directory (the one `cem up` uses)."""
    settings = settings or CoreSettings()
    if settings.mode == "distributed":
        return PostgresKeyStore(postgres_dsn(settings))
    return SqliteKeyStore(settings.data_dir / "keys.sqlite")


def channels_from_settings(settings: CoreSettings | None = None) -> ChannelStore:
    """The channel store of the configured mode: PostgreSQL when distributed (every ingest replica
    verifies against it), else the SQLite file in the data directory. Distributed, secrets are
    sealed under CEM_SECRET_KEY, else under one key kept in PostgreSQL (never a host's own file:
    replicas and the admin's `cem channels` must all open what any of them sealed)."""
    from cem.bootstrap import embedded_channels
    from kernel.secrets import SecretBox, key_file_sealed_before, platform_key

    settings = settings or CoreSettings()
    if settings.mode != "distributed":
        return embedded_channels(settings)
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if not secret_key:
        logger.warning(
            "CEM_SECRET_KEY is not set: channel secrets are sealed with a key kept in PostgreSQL "
            "beside them; set CEM_SECRET_KEY to keep the key apart from the data"
        )
        return PostgresChannelStore(
            postgres_dsn(settings), first_key=key_file_sealed_before(settings.data_dir)
        )
    key = platform_key(settings.data_dir, secret_key)
    return PostgresChannelStore(postgres_dsn(settings), SecretBox(key))


def users_from_settings(settings: CoreSettings | None = None) -> UserStore:
    """People's accounts in the configured mode's store, beside the keys: PostgreSQL when
    distributed, else the SQLite file in the data directory (the one `cem up` uses)."""
    settings = settings or CoreSettings()
    if settings.mode == "distributed":
        return PostgresUserStore(postgres_dsn(settings))
    return SqliteUserStore(settings.data_dir / "users.sqlite")


def access_audit_from_settings(settings: CoreSettings | None = None) -> AccessAudit:
    """The access audit of the configured mode, beside the accounts: PostgreSQL when
    distributed, else the SQLite file in the data directory (the one `cem up` uses)."""
    settings = settings or CoreSettings()
    if settings.mode == "distributed":
        return PostgresAccessAudit(postgres_dsn(settings))
    return SqliteAccessAudit(settings.data_dir / AUDIT_FILE)


def retention_store_from_settings(settings: CoreSettings | None = None) -> RetentionStore:
    """Tenants' retention policies and applies, beside the accounts: PostgreSQL when distributed
    (every host's `cem retention` shares them), else the SQLite file in the data directory."""
    settings = settings or CoreSettings()
    if settings.mode == "distributed":
        return PostgresRetentionStore(postgres_dsn(settings))
    return SqliteRetentionStore(settings.data_dir / RETENTION_FILE)


def calendar_store_from_settings(settings: CoreSettings | None = None) -> CalendarStore:
    """Tenants' calendars, beside the accounts: PostgreSQL when distributed (every query API
    replica reads them), else the SQLite file in the data directory (the one `cem up` uses)."""
    from cem.adapters.sqlite_calendars import CALENDARS_FILE, SqliteCalendarStore

    settings = settings or CoreSettings()
    if settings.mode == "distributed":
        return PostgresCalendarStore(postgres_dsn(settings))
    return SqliteCalendarStore(settings.data_dir / CALENDARS_FILE)


def build_ingest(
    settings: IngestSettings | None = None,
    *,
    log: EventLog | None = None,
    index: IdempotencyIndex | None = None,
    keys: KeyStore | None = None,
    clock: Clock | None = None,
    seal_key: bytes | None = None,
    channels: ChannelStore | None = None,
    bucket_key: bytes | None = None,
) -> IngestService:
    """The ingest app on Kafka (acks=all) with claims and keys in PostgreSQL, plus /health. Its
    records are sealed with the platform's key (`seal_key`, else the one kept in PostgreSQL), so
    the workers trust their stored form and nobody else's (RELIABILITY S08), and keyed by a
    bucket under `bucket_key`, else the one every replica derives (CEM_SECRET_KEY, else the
    platform key kept in PostgreSQL: `cem.platform_keys.shared_bucket_key`)."""
    from cem.projection_set import default_projections
    from services.ingest.app import create_app
    from services.ingest.backlog import BacklogGate, LogBacklog
    from services.query_api.app import health_router

    settings = settings or IngestSettings()
    log = log or kafka_log(settings, settings.publish_timeout_s)
    index = index or PostgresIdempotencyIndex(
        postgres_dsn(settings), timeout_s=settings.publish_timeout_s
    )
    if seal_key is None and isinstance(index, PostgresIdempotencyIndex):
        seal_key = index.seal_key()
    keys = keys or PostgresKeyStore(postgres_dsn(settings))
    distributed = settings.model_copy(update={"mode": "distributed"})
    # What /ready says of writes (kernel/write_watch.py): a broker that answers, refusing records,
    # or the claims' PostgreSQL; the check's message names the error (`PostgresUnavailable: …`).
    writes = WatchedPublisher(
        IdempotentPublisher(
            log, index, TOUCHPOINTS_TOPIC, timeout_s=settings.publish_timeout_s, seal_key=seal_key
        ),
        settings.publish_timeout_s,
    )
    publisher = sealing_publisher(writes, distributed, default_rules)
    channels = channels or channels_from_settings(distributed)
    if bucket_key is None:
        bucket_key = shared_bucket_key(distributed)
    app = create_app(
        publisher, keys, settings, clock or SystemClock(), channels=channels, bucket_key=bucket_key
    )
    # Bulk requests wait while the workers' groups are behind (services/ingest/backlog.py).
    groups = [p.name for p in default_projections()]
    app.state.backlog_gate = BacklogGate(LogBacklog(log, groups), settings)
    # /health is liveness only: a replica whose Kafka is down still answers (503 on ingest), so an
    # orchestrator must not restart every replica when the broker blips. /ready reports each
    # dependency, for monitoring and for load balancers that should stop routing meanwhile.
    app.include_router(health_router(lambda: {"service": "ingest", "mode": "distributed"}))
    app.include_router(readiness.router)
    probes: dict[str, readiness.Probe] = {}
    if isinstance(log, KafkaLog):
        probes["kafka"] = log.ping
    if isinstance(index, PostgresIdempotencyIndex):
        probes["postgres"] = index.ping
    probes["writes"] = (
        writes.check
    )  # claims in PostgreSQL and records in Kafka: the error names which
    readiness.set_checks(app, probes)
    return IngestService(settings, app, publisher, log, index, keys, channels)


def build_query_api(
    settings: QuerySettings | None = None,
    *,
    warehouse: Warehouse | None = None,
    keys: KeyStore | None = None,
    identity: IdentityResolver | None = None,
    users: UserStore | None = None,
    publisher: Publisher | None = None,
    access_audit: AccessAudit | None = None,
    bucket_key: bytes | None = None,
    calendars: CalendarStore | None = None,
) -> QueryService:
    """The query API on the ClickHouse server (the database CEM_CLICKHOUSE_URL names, which the
    workers write) with the PostgreSQL key store and, when CEM_IDENTITY=eventsourced, the identity
    store the workers file with (unified histories and the identity API). Alert actions are keyed
    like the ingest's touchpoints: under `bucket_key`, else the one every replica derives, read
    here at start as the publisher's seal key is (`cem.platform_keys.shared_bucket_key`)."""
    from services.query_api.app import create_app

    settings = settings or QuerySettings()
    if identity is None and settings.identity == "eventsourced":
        identity = identity_on_postgres(settings)
    url = settings.clickhouse_url
    warehouse = warehouse or ClickHouseWarehouse(url, database=warehouse_database(url))
    keys = keys or PostgresKeyStore(postgres_dsn(settings))
    users = users or PostgresUserStore(postgres_dsn(settings))
    publisher = publisher or alert_publisher(settings)
    access_audit = access_audit or PostgresAccessAudit(postgres_dsn(settings))
    calendars = calendars or PostgresCalendarStore(postgres_dsn(settings))
    # After the identity store: when PostgreSQL does not answer, that one fails at once, in one
    # line (the channel store's pool, which reads the shared key, retries and logs each attempt).
    if bucket_key is None:
        bucket_key = shared_bucket_key(settings.model_copy(update={"mode": "distributed"}))
    app = create_app(
        warehouse,
        keys,
        identity,
        publisher=publisher,
        users=users,
        access_audit=access_audit,
        bucket_key=bucket_key,
        log_sealed=log_sealed(settings, identity),
        calendars=calendars,
    )
    # Erasures and alert actions are published to Kafka: /ready reports it (it said nothing while
    # every erase request answered 503), without gating on it: reads do not need it.
    inner = unwrapped(publisher)
    if isinstance(inner, IdempotentPublisher) and isinstance(inner.log, KafkaLog):
        readiness.add_reported(app, {"kafka": inner.log.ping})
    return QueryService(
        settings,
        app,
        warehouse,
        keys,
        identity,
        users,
        publisher,
        access_audit=access_audit,
        calendars=calendars,
    )


def alert_publisher(settings: CoreSettings, timeout_s: float = 5.0) -> Publisher:
    """The query API's publisher (alert lifecycle events): the ingest's log and claims."""
    index = PostgresIdempotencyIndex(postgres_dsn(settings), timeout_s=timeout_s)
    log = kafka_log(settings, timeout_s)
    # Sealed like the ingest's records: the workers trust the stored form only with the seal.
    inner = IdempotentPublisher(
        log, index, TOUCHPOINTS_TOPIC, timeout_s=timeout_s, seal_key=index.seal_key()
    )
    return sealing_publisher(
        inner, settings.model_copy(update={"mode": "distributed"}), default_rules
    )

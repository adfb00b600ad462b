"""Settings shared by every service; each service subclasses with its own fields. Env prefix CEM_."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoreSettings(BaseSettings):
    """Where the platform's state lives. Validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="CEM_", extra="ignore")

    mode: Literal["embedded", "distributed"] = "embedded"
    data_dir: Path = Path(".cem")
    partitions: int = Field(default=12, ge=1, le=1024)
    # Which customer an event is filed under: the event-sourced identity service (resolution rules,
    # merges, splits, unified history), or the deterministic key of cem/customer_key.py (faster,
    # but one customer per identifier: no cross-channel history).
    identity: Literal["rule", "eventsourced"] = "eventsourced"
    # distributed mode
    kafka_bootstrap: str = "localhost:9092"
    kafka_replication: int = Field(default=1, ge=1)
    clickhouse_url: str = "clickhouse://localhost:9000/cem"
    postgres_dsn: SecretStr = SecretStr("postgresql://cem@localhost:5432/cem")
    # The key channel secrets are sealed with (32 bytes, URL-safe base64); unset: `secret.key` in
    # the data directory, created 0600. Every replica of the distributed mode must share it.
    secret_key: SecretStr | None = None
    # Personal data sealed at rest (docs/erasure.md): the log's personal fields under their
    # subject's key, so that an erasure holds through a replay, and the identity store under its
    # own key. Unset (the default since 2026-12-06): on, except that an identity store written in
    # clear before that stays clear (`sealing`). Readers of the log open sealed records whatever
    # this says; set either way, the identity store refuses to start in the other form than it
    # was written in.
    seal_personal_data: bool | None = None

    @property
    def sealing(self) -> bool:
        """Whether personal data is sealed from now on: unless CEM_SEAL_PERSONAL_DATA=false. (An
        identity store already holding events in clear stays clear when the setting is unset:
        `cem.identity.build_identity`.)"""
        return self.seal_personal_data is not False


class IngestSettings(CoreSettings):
    max_batch_events: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_event_bytes: int = Field(default=64 * 1024, ge=256)
    publish_timeout_s: float = Field(default=5.0, gt=0)
    # `cem up` only: the filing stage (identity) in a process of its own, so the platform uses two
    # cores (cem/filing_process.py); false: a thread of the one process. On by default since a
    # quiet machine's benchmark (`python -m bench.layouts`, README "Benchmarks") showed +38% end
    # to end on the identity mix and +61% on the demo mix.
    filing_process: bool = True
    # Bulk requests wait while the pipeline is behind, so live events stay live
    # (services/ingest/backlog.py): a request of `backlog_bulk_events` events or more waits while
    # more than `backlog_limit` accepted events are not yet projected (0: never waits), up to
    # `backlog_max_wait_s` (then 429 with Retry-After); a group behind that committed nothing for
    # `backlog_stall_s` is not waited for.
    backlog_limit: int = Field(default=1000, ge=0)
    backlog_bulk_events: int = Field(default=20, ge=2)
    backlog_max_wait_s: float = Field(default=10.0, gt=0)
    backlog_stall_s: float = Field(default=10.0, gt=0)


class QuerySettings(CoreSettings):
    page_size: int = Field(default=50, ge=1, le=1000)

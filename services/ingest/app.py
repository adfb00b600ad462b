"""The ingest service on its own (distributed mode, and tests). The embedded composition root
includes `services.ingest.router.router` into its one app and sets the same `app.state`."""

from __future__ import annotations

from fastapi import FastAPI

from kernel import api_errors, auth, telemetry, web_security
from kernel.channels import ChannelStore
from kernel.ports import Clock, KeyStore, Publisher
from kernel.settings import IngestSettings
from kernel.telemetry import Telemetry
from services.ingest.quota import IngestQuota, QuotaLimiter
from services.ingest.router import router
from services.ingest.segment_router import install_segment


def create_app(
    publisher: Publisher,
    keys: KeyStore,
    settings: IngestSettings,
    clock: Clock,
    *,
    quota: IngestQuota | QuotaLimiter | None = None,
    channels: ChannelStore | None = None,
    bucket_key: bytes,
) -> FastAPI:
    """An app serving POST /v1/events, GET /v1/schemas[/{name}] and GET /metrics.

    `bucket_key` keys every touchpoint's record (`kernel.partitioning.touchpoint_key`; derived
    from the platform key, `cem.platform_keys.shared_bucket_key`).
    With `channels`, it also serves the provider webhooks and `/v1/channels`.
    `quota` defaults to the CEM_INGEST_QUOTA_* settings; pass a `QuotaLimiter` to control its time.
    """
    app = FastAPI(title="cem ingest", version="0.1.0", docs_url=None, redoc_url=None)
    api_errors.install(app)
    web_security.install(app)
    auth.without_sessions(app)  # the console and its sign-ins are the query API's
    app.state.publisher = publisher
    app.state.keys = keys
    app.state.ingest_settings = settings
    app.state.clock = clock
    app.state.bucket_key = bucket_key
    app.state.telemetry = Telemetry()
    app.state.ingest_quota = _limiter(quota)
    app.include_router(router)
    install_segment(app)
    app.include_router(telemetry.router)
    if channels is not None:
        from services.ingest.channels.router import router as channels_router

        app.state.channels = channels
        app.include_router(channels_router)
    return app


def _limiter(quota: IngestQuota | QuotaLimiter | None) -> QuotaLimiter:
    if isinstance(quota, QuotaLimiter):
        return quota
    return QuotaLimiter.from_settings(quota or IngestQuota())

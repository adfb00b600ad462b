"""The ingest service on its own (distributed mode, and tests). The embedded composition root
includes `services.ingest.router.router` into its one app and sets the same `app.state`."""

from __future__ import annotations

from fastapi import FastAPI

from cem import api_errors, telemetry, web_security
from cem.ports import Clock, KeyStore, Publisher
from cem.settings import IngestSettings
from cem.telemetry import Telemetry
from services.ingest.quota import IngestQuota, QuotaLimiter
from services.ingest.router import router


def create_app(
    publisher: Publisher,
    keys: KeyStore,
    settings: IngestSettings,
    clock: Clock,
    *,
    quota: IngestQuota | QuotaLimiter | None = None,
) -> FastAPI:
    """An app serving POST /v1/events, GET /v1/schemas[/{name}] and GET /metrics.

    `quota` defaults to the CEM_INGEST_QUOTA_* settings; pass a `QuotaLimiter` to control its time.
    """
    app = FastAPI(title="cem ingest", version="0.1.0", docs_url=None, redoc_url=None)
    api_errors.install(app)
    web_security.install(app)
    app.state.publisher = publisher
    app.state.keys = keys
    app.state.ingest_settings = settings
    app.state.clock = clock
    app.state.telemetry = Telemetry()
    app.state.ingest_quota = _limiter(quota)
    app.include_router(router)
    app.include_router(telemetry.router)
    return app


def _limiter(quota: IngestQuota | QuotaLimiter | None) -> QuotaLimiter:
    if isinstance(quota, QuotaLimiter):
        return quota
    return QuotaLimiter.from_settings(quota or IngestQuota())

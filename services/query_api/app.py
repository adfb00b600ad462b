"""The query API: unified customer histories, satisfaction metrics and alerts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from kernel import api_errors, auth, readiness, web_security
from kernel.access_audit import audit_probe
from kernel.accounts import Accounts
from kernel.clock import SystemClock
from kernel.ports import AccessAudit, KeyStore, Publisher, UserStore, Warehouse
from services.identity.resolver import IdentityResolver
from services.service_metrics.calendar import CachedCalendars, CalendarStore


def health_router(details: Callable[[], dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", **details()}

    return router


def include_query_routes(app: FastAPI, health: Callable[[], dict[str, Any]]) -> None:
    """Mount every query router; the app's state must hold `warehouse` and `keys`, and `identity`
    for unified customer histories and the identity API (without it, the identity API answers 503
    and a customer is exactly the key its events were filed under)."""
    from services.identity.router import router as identity_router
    from services.query_api.routers import (
        alert_lifecycle,
        alerts,
        audit,
        customers,
        erasure,
        events,
        export,
        fcr,
        responses,
        satisfaction,
        search,
        settings,
        stream,
    )
    from services.query_api.routers import service as service_metrics

    app.include_router(health_router(health))
    app.include_router(readiness.router)  # probes: kernel.readiness.set_checks by the root
    # Before customers: its `/v1/customers/{customer_id:path}` would swallow `/identities`.
    app.include_router(identity_router)
    app.include_router(search.router)
    app.include_router(stream.router)  # before customers, for the same reason
    app.include_router(export.router)  # and again
    app.include_router(erasure.router)  # and again
    app.include_router(customers.router)
    app.include_router(satisfaction.router)
    app.include_router(responses.router)
    app.include_router(service_metrics.router)
    app.include_router(fcr.router)
    app.include_router(alerts.router)
    app.include_router(events.router)
    app.include_router(alert_lifecycle.router)
    app.include_router(audit.router)
    app.include_router(settings.router)


def create_app(
    warehouse: Warehouse,
    keys: KeyStore,
    identity: IdentityResolver | None = None,
    publisher: Publisher | None = None,
    users: UserStore | None = None,
    access_audit: AccessAudit | None = None,
    bucket_key: bytes | None = None,
    log_sealed: bool = False,
    calendars: CalendarStore | None = None,
) -> FastAPI:
    """The query API alone (distributed mode: one process per service); `identity` is the
    resolver on the shared identity store (`cem.identity.build_identity(IdentitySettings())`). `access_audit`
    records reads of customers' data (`build_query_api` passes PostgreSQL's); without one, those
    reads answer 503 (`kernel.access_audit`: fail closed). With a `publisher`, `bucket_key` keys the
    alert actions' records as the ingest keys touchpoints."""
    app = FastAPI(title="cem query API", version="0.1.0", docs_url=None, redoc_url=None)
    api_errors.install(app)
    web_security.install(app)
    app.state.warehouse, app.state.keys = warehouse, keys
    app.state.access_audit = access_audit
    # Tenants' time zones and opening hours, read by every aggregate route: kept a few seconds.
    app.state.calendars = CachedCalendars(calendars) if calendars is not None else None
    app.state.log_sealed = log_sealed  # CEM_SEAL_PERSONAL_DATA: what an erasure can reach
    if identity is not None:
        app.state.identity = identity
    # People sign in to the console and dashboard this app serves (`services.query_api.web`).
    app.state.accounts = Accounts(users, SystemClock()) if users is not None else None
    if users is None:
        auth.without_sessions(app)
    if publisher is not None:  # managers' alert actions are published as events
        if bucket_key is None:
            raise ValueError("a query API that publishes alert actions needs the bucket key")
        app.state.publisher, app.state.bucket_key = publisher, bucket_key
    include_query_routes(app, health=lambda: {"service": "query-api"})
    readiness.set_checks(
        app,
        {"warehouse": lambda: warehouse.select("SELECT 1 AS ok"), **audit_probe(app)},
    )
    from services.query_api.web import include_web

    include_web(app)
    return app

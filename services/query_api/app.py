"""The query API: unified customer histories, satisfaction metrics and alerts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from cem import api_errors
from cem.ports import KeyStore, Warehouse


def health_router(details: Callable[[], dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", **details()}

    return router


def include_query_routes(app: FastAPI, health: Callable[[], dict[str, Any]]) -> None:
    """Mount every query router; the app's state must hold `warehouse` and `keys`."""
    from services.query_api.routers import alerts, customers, satisfaction

    app.include_router(health_router(health))
    app.include_router(customers.router)
    app.include_router(satisfaction.router)
    app.include_router(alerts.router)


def create_app(warehouse: Warehouse, keys: KeyStore) -> FastAPI:
    """The query API alone (distributed mode: one process per service)."""
    app = FastAPI(title="cem query API", version="0.1.0")
    api_errors.install(app)
    app.state.warehouse, app.state.keys = warehouse, keys
    include_query_routes(app, health=lambda: {"service": "query-api"})
    return app

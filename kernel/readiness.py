"""`GET /ready`: whether each dependency of this process answers now (readiness), beside
`/health`, which only says the process runs (liveness).

A composition root names its dependencies' probes (`set_checks`); a probe is a cheap call that
raises when its engine cannot answer. A load balancer routes to a replica only while it is ready;
an orchestrator restarts one only when it stops being live, so an outage of a shared engine takes
replicas out of rotation without restarting all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

Probe = Callable[[], object]
RETRY_AFTER_S = "5"

router = APIRouter(tags=["health"])


def set_checks(app: FastAPI, probes: Mapping[str, Probe]) -> None:
    """The dependencies `/ready` probes, by the name it reports them under."""
    app.state.readiness = dict(probes)


def add_reported(app: FastAPI, probes: Mapping[str, Probe]) -> None:
    """Dependencies `/ready` reports without gating on them: a few of the process's requests need
    them (the query API's erasures need Kafka), most do not, and a replica taken out of rotation
    for them would refuse every read too (found by a review). Those requests answer 503 alone."""
    app.state.readiness_reported = {**getattr(app.state, "readiness_reported", {}), **probes}


READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every dependency answers"},
    503: {"description": "A dependency does not answer; `checks` says which (Retry-After)"},
}


@router.get("/ready", responses=READY_RESPONSES)
def ready(request: Request) -> JSONResponse:
    """Each dependency's state, `ok` or why not; 200 when all that gate it are ok, else 503."""
    probes: Mapping[str, Probe] = getattr(request.app.state, "readiness", {})
    reported: Mapping[str, Probe] = getattr(request.app.state, "readiness_reported", {})
    checks = {name: outcome(probe) for name, probe in probes.items()}
    shown = {**checks, **{name: outcome(probe) for name, probe in reported.items()}}
    if all(state == "ok" for state in checks.values()):
        return JSONResponse({"status": "ready", "checks": shown})
    return JSONResponse(
        {"status": "unavailable", "checks": shown},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_S},
    )


def outcome(probe: Probe) -> str:
    try:
        probe()
    except Exception as exc:  # whatever a client raises, the dependency is not answering
        return f"unavailable: {type(exc).__name__}: {exc}"[:500]
    return "ok"

"""Process-wide ingest counters and request latencies, served as Prometheus text on GET /metrics.

Label values are only codes, statuses and route templates chosen by the code, never input, tenant
or key ids: that keeps cardinality bounded and is why /metrics can go without authentication (see
`metrics`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute

from kernel.api_errors import ApiError
from kernel.ports import LogUnavailable, StorageFull

Labels = tuple[tuple[str, str], ...]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

COUNTERS = {
    "cem_ingest_accepted_total": "Events acknowledged by the log and stored for the first time.",
    "cem_ingest_duplicates_total": "Events already stored with the same payload (answered 2xx).",
    "cem_ingest_conflicts_total": "Events whose event_id was stored with a different payload.",
    "cem_ingest_rejected_total": "Rejected inputs (whole requests or batch items) by error code.",
    "cem_ingest_violations_total": "Field violations in rejected events, by violation code.",
    "cem_ingest_notes_total": "Notes on stored events (an identifier ignored, a mapping not met).",
    "cem_webhook_unrecorded_total": "Verified webhook deliveries that map to no event, by provider.",
    "cem_ingest_backlog_unread_total": "Bulk requests let in unread: the backlog could not be read.",
}
SUMMARIES = {
    "cem_ingest_request_duration_seconds": "Time to answer an ingest request, by route and status.",
    "cem_ingest_backlog_wait_seconds": "Time bulk requests waited for the pipeline to catch up.",
}
GAUGES = {
    "cem_ingest_backlog_events": "Accepted events not yet projected, as a bulk request last read.",
}


class Telemetry:
    """Counters and summaries in memory. Thread-safe."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = {name: {} for name in COUNTERS}
        self._summaries: dict[str, dict[Labels, tuple[float, int]]] = {n: {} for n in SUMMARIES}
        self._gauges: dict[str, float] = {}
        self._lock = threading.Lock()

    def inc(self, metric: str, amount: float = 1, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            series = self._counters[metric]
            series[key] = series.get(key, 0) + amount

    def observe(self, metric: str, value: float, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            total, count = self._summaries[metric].get(key, (0.0, 0))
            self._summaries[metric][key] = (total + value, count + 1)

    def set(self, metric: str, value: float) -> None:
        """A gauge's value now (shown from its first setting on)."""
        if metric not in GAUGES:
            raise KeyError(metric)
        with self._lock:
            self._gauges[metric] = value

    def value(self, metric: str, **labels: str) -> float:
        """A counter's current value (0 if never incremented)."""
        with self._lock:
            return self._counters[metric].get(_labels(labels), 0)

    def observations(self, metric: str, **labels: str) -> int:
        """How many values a summary has observed."""
        with self._lock:
            return self._summaries[metric].get(_labels(labels), (0.0, 0))[1]

    def render(self) -> str:
        """The Prometheus text exposition format (0.0.4)."""
        with self._lock:
            lines = [line for name in COUNTERS for line in self._counter_lines(name)]
            lines += [line for name in SUMMARIES for line in self._summary_lines(name)]
            for name, value in self._gauges.items():
                lines += [f"# HELP {name} {GAUGES[name]}", f"# TYPE {name} gauge"]
                lines.append(f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"

    def _counter_lines(self, name: str) -> list[str]:
        series = self._counters[name] or {(): 0.0}
        header = [f"# HELP {name} {COUNTERS[name]}", f"# TYPE {name} counter"]
        return header + [f"{name}{_format(k)} {_number(v)}" for k, v in sorted(series.items())]

    def _summary_lines(self, name: str) -> list[str]:
        lines = [f"# HELP {name} {SUMMARIES[name]}", f"# TYPE {name} summary"]
        for key, (total, count) in sorted(self._summaries[name].items()):
            lines += [
                f"{name}_sum{_format(key)} {_number(total)}",
                f"{name}_count{_format(key)} {count}",
            ]
        return lines


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _format(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def telemetry_of(app: FastAPI) -> Telemetry:
    """The app's telemetry (`app.state.telemetry`), created on first use if the composition root
    did not set one."""
    telemetry: Telemetry | None = getattr(app.state, "telemetry", None)
    if telemetry is None:
        telemetry = Telemetry()
        app.state.telemetry = telemetry
    return telemetry


def error_code(exc: Exception) -> str:
    """The code a request that failed with `exc` is counted under."""
    if isinstance(exc, ApiError):
        return exc.code
    if isinstance(exc, StorageFull):
        return "storage_full"
    if isinstance(exc, LogUnavailable):
        return exc.code  # the store's own: log_unavailable, or store_unavailable (PostgreSQL)
    return "internal_error"


def _status_of(exc: Exception) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    return 503 if isinstance(exc, LogUnavailable) else 500


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class MeteredRoute(APIRoute):
    """A route that times every request and counts the ones that fail as a whole by code.

    It wraps the handler FastAPI builds, so failures in dependencies (401/403 from auth) are counted
    too; the exception still propagates to the one place that maps it to a response.
    """

    def get_route_handler(self) -> Handler:
        return _metered(super().get_route_handler(), self.path)


def _metered(handler: Handler, route: str) -> Handler:
    async def metered(request: Request) -> Response:
        started, status = time.perf_counter(), 500
        try:
            response = await handler(request)
            status = response.status_code
            return response
        except Exception as exc:
            status = _status_of(exc)
            telemetry_of(request.app).inc("cem_ingest_rejected_total", code=error_code(exc))
            raise
        finally:
            elapsed = time.perf_counter() - started
            telemetry_of(request.app).observe(
                "cem_ingest_request_duration_seconds", elapsed, route=route, status=str(status)
            )

    return metered


router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus scrape endpoint, unauthenticated on purpose: it holds only process-wide counts by
    fixed codes (no tenant, key or customer data), and requiring a key would put an all-powerful
    admin secret into every scraper's config. Expose it on the internal network only."""
    return PlainTextResponse(telemetry_of(request.app).render(), media_type=PROMETHEUS_TEXT)

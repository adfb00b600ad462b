"""`cem serve SERVICE`: one service of the distributed mode per process, configured from CEM_*.

- `ingest` and `query-api` are HTTP servers (uvicorn) built by `cem.distributed`; the address is
  `--host/--port`, else CEM_HOST/CEM_PORT, else 127.0.0.1 and 8000 (ingest) / 8001 (query-api).
- `filing`, `projections` and `satisfaction` are the stream workers:
  `cem.workers.run_<name>(settings)`. `filing` reads `touchpoints` and appends each event's filing
  to `filings`; `projections` and `satisfaction` read `filings`.

With CEM_IDENTITY=eventsourced, `query-api` and `filing` open the identity store in PostgreSQL
(`cem.distributed.identity_on_postgres`) at start and close it at shutdown with their other
adapters; `ingest`, `projections` and `satisfaction` never need it.

Every replica of a service runs the same command; the adapters hold no state a replica owns.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.collector import settle_collector
from kernel.settings import CoreSettings, IngestSettings, QuerySettings

if TYPE_CHECKING:  # the engines' clients load only when a service starts, not with the CLI
    from cem.distributed import IngestService, QueryService

SERVICES = ("ingest", "query-api", "filing", "projections", "satisfaction")
WORKERS = ("filing", "projections", "satisfaction")
DEFAULT_PORTS = {"ingest": 8000, "query-api": 8001}
S = TypeVar("S", bound=CoreSettings)
T = TypeVar("T")


class ServerSettings(BaseSettings):
    """Where an HTTP service listens (CEM_HOST, CEM_PORT)."""

    model_config = SettingsConfigDict(env_prefix="CEM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)


def _as(kind: type[S], settings: CoreSettings | None) -> S:
    """The service's settings class; fields it adds come from the environment."""
    if settings is None:
        return kind()
    if isinstance(settings, kind):
        return settings
    return kind(**settings.model_dump())


def serve(
    service: str,
    settings: CoreSettings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    health_port: int | None = None,
) -> None:
    """Run one service until it is stopped (SIGINT/SIGTERM), then close its adapters."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
    if service in WORKERS:
        run_worker_service(service, settings, host, health_port)
    elif service == "ingest":
        from cem.distributed import build_ingest

        port = _free(host, port or _port(service))
        serve_http(
            _starting(service, lambda: build_ingest(_as(IngestSettings, settings))), host, port
        )
    else:
        from cem.distributed import build_query_api

        port = _free(host, port or _port(service))
        serve_http(
            _starting(service, lambda: build_query_api(_as(QuerySettings, settings))), host, port
        )


def _free(host: str | None, port: int) -> int:
    """The port, once known to be free: a busy one is a one-line mistake before any engine is
    contacted."""
    from cem.cli_output import check_port_free

    check_port_free(host or ServerSettings().host, port)
    return port


def _starting(service: str, build: Callable[[], T]) -> T:
    """Build a service's adapters; an engine that cannot be reached (or refuses us) is reported in
    one line instead of a traceback (CEM_DEBUG=1 shows the traceback)."""
    from cem.cli_errors import CliError

    try:
        return build()
    except Exception as exc:
        if os.environ.get("CEM_DEBUG"):
            raise
        raise CliError(f"cannot start {service}: {type(exc).__name__}: {exc}") from exc


def run_worker_service(
    service: str, settings: CoreSettings | None, host: str | None, health_port: int | None
) -> None:
    from cem.faust_worker import WorkerSettings

    config = _as(WorkerSettings, settings)
    if health_port is not None:
        # Busy: one line before faust starts (its web server's bind error was an 80-line
        # traceback, found by a review).
        from cem.cli_output import check_port_free

        check_port_free(host or ServerSettings().host, health_port, "--health-port")
        config = config.model_copy(
            update={
                "worker_web_port": health_port,
                "worker_web_host": host or ServerSettings().host,
            }
        )
    settle_collector()
    if service == "filing":
        from cem.workers import run_filing

        run_filing(config)
    elif service == "projections":
        from cem.workers import run_projections

        run_projections(config)
    else:
        from cem.workers import run_satisfaction

        run_satisfaction(config)


def _port(service: str) -> int:
    return ServerSettings().port or DEFAULT_PORTS[service]


def serve_http(service: IngestService | QueryService, host: str | None, port: int) -> None:
    """Serve the app; in-flight requests finish before the adapters close."""
    import uvicorn

    service.start()
    close_on_shutdown(service)
    settle_collector()
    try:
        # No `server` banner (kernel.web_security). No access log: its lines carry each request's
        # path and query, and so customers' emails and phones (`?email=`, `/customers/email:…`),
        # which no erasure reaches (a review found them in the log after one); requests are
        # counted by route in /metrics instead. `cem up` logs warnings only, for the same reason.
        uvicorn.run(
            service.app,
            host=host or ServerSettings().host,
            port=port,
            server_header=False,
            access_log=False,
        )
    finally:
        service.close()  # when the server did not start; closing twice is harmless


def close_on_shutdown(service: IngestService | QueryService) -> None:
    """Close the adapters in the app's shutdown, after the last request: on SIGTERM uvicorn
    re-raises the signal once it has shut down, so code after `uvicorn.run` never runs."""
    inner = service.app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            yield state
        hub = getattr(app.state, "stream_hub", None)  # live streams' poller, if one started
        if hub is not None:
            await hub.stop()  # before its warehouse closes under it
        service.close()

    service.app.router.lifespan_context = lifespan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `cem serve`; sets `func` to `main`."""
    parser.add_argument("service", choices=SERVICES, help="which service to run")
    parser.add_argument(
        "--host", default=None, help="address to listen on (default: $CEM_HOST, else 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="default: $CEM_PORT, else 8000 / 8001 (query-api)"
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="workers: serve GET /health on this port (default: none)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    serve(args.service, host=args.host, port=args.port, health_port=args.health_port)
    return 0


if __name__ == "__main__":  # `python -m cem.serve SERVICE`, e.g. as a container's entrypoint
    import sys

    cli = argparse.ArgumentParser(prog="cem serve", description="run one distributed service")
    add_arguments(cli)
    sys.exit(main(cli.parse_args()))

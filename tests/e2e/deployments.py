"""Deployments the end-to-end suite runs against, and the HTTP client the tests drive them with.

A `Deployment` is a running platform reached only over HTTP (plus the operator actions a fault
test needs: stop, SIGKILL, start, replay). The same tests run against every kind listed in
`conftest.DEPLOYMENT_KINDS`; the embedded one is `cem up` in a subprocess, the distributed one
(`tests.e2e.distributed`) one `cem serve` subprocess per service on the real engines.

Run as a module this file dumps a database's tables (`dump-tables`) for F13 in a subprocess, since chdb allows one process
per data directory, so the test process itself never opens the warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import pytest

from cem.adapters import sqlite_snapshot
from cem.serving import free_port, stop_processes, wait_until_serving
from kernel.ports import Record, Warehouse
from tests.events import event

REPO = Path(__file__).resolve().parents[2]
TENANT_A, TENANT_B = "e2e-tenant-a", "e2e-tenant-b"
ROLES = ("ingest", "agent", "manager", "admin")
LIVE_DATABASE = "cem"
# This file run as a module (`python -m`), whatever name the test process imported it under.
SELF_MODULE = "tests.e2e.deployments"


class Deployment(Protocol):
    """A running platform: its base URLs, one key per (tenant, role), and operator actions."""

    name: str
    base_url: str  # every query route, /health, /docs
    ingest_url: str  # POST /v1/events: base_url itself where one process serves both
    tenants: tuple[str, str]
    identity: str  # its CEM_IDENTITY

    def key(self, tenant: str, role: str) -> str: ...

    def start(self) -> None:
        """Start (or start again, on the same state and URL) and wait until healthy."""

    def stop(self) -> None:
        """Graceful shutdown."""

    def kill(self) -> None:
        """SIGKILL the processes that ingest and process (a crash)."""

    def restart(self) -> None: ...

    def wait_processed(self, timeout_s: float = 60.0) -> None:
        """Wait until every acknowledged event has been processed into the query tables."""

    def replay(self, into: str) -> None:
        """Rebuild every table from the log into database `into` (the deployment is stopped)."""

    def table_rows(self, database: str) -> dict[str, list[str]]:
        """Every table of `database`: distinct rows as canonical JSON, sorted (while stopped)."""

    def serve_database(self, database: str) -> AbstractContextManager[str]:
        """A query API over `database`; yields its base URL (embedded: read-only, while stopped)."""

    def cli(self, *args: str) -> str:
        """Run a `cem` command against this deployment's state (its data dir or engines)."""

    def log_records(self, topic: str) -> list[Record]:
        """Every record on `topic` of the log (key, value, headers), as stored (while running)."""

    def stored_paths(self) -> list[Path]:
        """Where the deployment's own processes keep what they store and log (the engines' data
        directories of a distributed deployment are the session's: `Engines.state_dir`)."""


# The suite's deployments run as the product does by default, sealing personal data in the log
# (docs/erasure.md, step 2; the default since 2026-12-06): no CEM_SEAL_PERSONAL_DATA is set, and
# one the runner's environment has is dropped, so every test reads through the sealed path.
SEALING_SETTING = "CEM_SEAL_PERSONAL_DATA"


def default_sealing(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the sealing setting: the default, sealed."""
    return {name: value for name, value in env.items() if name != SEALING_SETTING}


# --- embedded: `cem up` in a subprocess -------------------------------------------------------
def _cem_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "cem.cli", *args]


def _cem(*args: str, timeout_s: float = 120.0, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        _cem_argv(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout_s, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"cem {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _key_args(data_dir: Path, tenant: str, role: str) -> list[str]:
    return ["keys", "create", "--data-dir", str(data_dir), "--tenant", tenant, "--role", role]


def create_keys(
    data_dir: Path, tenants: tuple[str, ...], env: Mapping[str, str] | None = None
) -> dict[tuple[str, str], str]:
    """One key per (tenant, role) through `cem keys create`, run in parallel (each is a process).
    `env` is the command's whole environment (CEM_MODE=distributed: the PostgreSQL key store)."""
    first, *rest = [(t, r) for t in tenants for r in ROLES]
    # The first run creates the key file (or table); the others then only insert into it.
    keys = {first: _cem(*_key_args(data_dir, *first), env=env).strip()}
    running = {
        pair: subprocess.Popen(
            _cem_argv(*_key_args(data_dir, *pair)),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for pair in rest
    }
    for pair, process in running.items():
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"cem keys create {pair} failed: {err}")
        keys[pair] = out.strip()
    return keys


class EmbeddedDeployment:
    """`python -m cem.cli up` on a private data directory and port; `identity` is its CEM_IDENTITY
    (`cem replay` reads the filings, so it rebuilds under the same customers without it)."""

    name = "embedded"

    def __init__(
        self,
        data_dir: Path,
        tenants: tuple[str, str] = (TENANT_A, TENANT_B),
        identity: str = "rule",
    ) -> None:
        self.data_dir, self.tenants, self.identity = data_dir, tenants, identity
        self.env = {**default_sealing(os.environ), "CEM_IDENTITY": identity}
        self.port = free_port()
        self.base_url = self.ingest_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.keys: dict[tuple[str, str], str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def key(self, tenant: str, role: str) -> str:
        return self.keys[(tenant, role)]

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if not self.keys:
            self.keys = create_keys(self.data_dir, self.tenants)
        command = ["up", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        self._process = _spawn(command, self.log_path, env=self.env)
        _wait_healthy(self.base_url, self._process, self.log_path)

    def stop(self) -> None:
        stop_processes([self._process])
        self._process = None

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_processed(self, timeout_s: float = 60.0) -> None:
        wait_lag_zero(self.base_url, timeout_s)

    def log_records(self, topic: str) -> list[Record]:
        chunks = sqlite_snapshot.log_records(self.data_dir / "log.sqlite", topic, 5000)
        return [record for chunk in chunks for record in chunk]

    def cli(self, *args: str) -> str:
        return _cem(*args, "--data-dir", str(self.data_dir), env=self.env)

    def stored_paths(self) -> list[Path]:
        return [self.data_dir, self.log_path]

    def replay(self, into: str) -> None:
        args = ("replay", "--data-dir", str(self.data_dir), "--into", into)
        _cem(*args, timeout_s=300, env=self.env)

    def table_rows(self, database: str) -> dict[str, list[str]]:
        out = _run_self("dump-tables", "--data-dir", str(self.data_dir), "--database", database)
        tables: dict[str, list[str]] = json.loads(out)
        return tables

    @contextmanager
    def serve_database(self, database: str) -> Iterator[str]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = ["up", "--data-dir", str(self.data_dir), "--database", database, "--read-only"]
        process = _spawn([*args, "--port", str(port)], self.log_path, env=self.env)
        try:
            _wait_healthy(url, process, self.log_path)
            yield url
        finally:
            stop_processes([process])


def _spawn(
    args: list[str],
    log_path: Path,
    module: str = "cem.cli",
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        # Its own session, so a ^C of pytest does not reach it before the fixture stops it.
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def _run_self(*args: str) -> str:
    argv = [sys.executable, "-m", SELF_MODULE, *args]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}")
    return done.stdout


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 120.0
) -> None:
    def still_starting() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log_path)}")

    try:
        wait_until_serving(url, timeout_s, still_starting)
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}:\n{_tail(log_path)}") from None


def wait_lag_zero(url: str, timeout_s: float) -> None:
    """Poll /health until every consumer group reports no unprocessed record."""
    deadline, lag = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        lag = httpx.get(f"{url}/health", timeout=10.0).json().get("lag")
        if isinstance(lag, dict) and not any(lag.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"still lagging after {timeout_s}s: {lag}")


# --- the HTTP client the tests use ------------------------------------------------------------
class Api:
    """A thin client: one method per call a user makes, answers returned as they come.

    Events go to `ingest_url` and everything else to `base_url`: one server in the embedded mode,
    two services in the distributed one (routed by path, as an ingress in front of them would).
    """

    def __init__(self, base_url: str, ingest_url: str | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60.0)
        same = ingest_url in (None, base_url)
        self.ingest = self.http if same else httpx.Client(base_url=ingest_url or "", timeout=60.0)

    @property
    def services(self) -> list[httpx.Client]:
        """A client per distinct server (each answers /health, /docs and /openapi.json)."""
        return [self.http] if self.ingest is self.http else [self.http, self.ingest]

    def close(self) -> None:
        for client in self.services:
            client.close()

    def get(self, path: str, key: str | None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        query = {k: v for k, v in params.items() if v is not None}
        return self.http.get(path, params=query, headers=headers)

    def post(self, key: str | None, body: Any) -> httpx.Response:
        """One event (a dict) or a batch (a list)."""
        payload = {"events": body} if isinstance(body, list) else body
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.ingest.post("/v1/events", json=payload, headers=headers)

    def command(self, key: str | None, path: str, body: dict[str, Any]) -> httpx.Response:
        """A POST to the query API (the identity API's merges and splits)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http.post(path, json=body, headers=headers)

    def post_ok(self, key: str, body: Any) -> dict[str, Any]:
        response = self.post(key, body)
        assert response.status_code in (200, 202), response.text
        result: dict[str, Any] = response.json()
        return result

    def timeline_page(self, key: str | None, customer_id: str, **params: Any) -> httpx.Response:
        return self.get(f"/v1/customers/{quote(customer_id, safe='')}/timeline", key, **params)

    def timeline(self, key: str, customer_id: str, **params: Any) -> list[dict[str, Any]]:
        """Every entry, following next_cursor; [] when the customer is unknown (404)."""
        entries: list[dict[str, Any]] = []
        cursor = None
        while True:
            response = self.timeline_page(key, customer_id, cursor=cursor, **params)
            if response.status_code == 404 and not entries:
                return []
            assert response.status_code == 200, response.text
            page = response.json()
            entries += page["entries"]
            cursor = page["next_cursor"]
            if cursor is None:
                return entries

    def profile(self, key: str | None, customer_id: str) -> httpx.Response:
        return self.get(f"/v1/customers/{quote(customer_id, safe='')}", key)

    def customer_of(self, key: str, **identifier: str) -> str:
        """The id of the one customer an identifier (`email=...`) is found on: ids are opaque,
        so a test looks its customer up as a person would."""
        response = self.get("/v1/customers", key, **identifier)
        assert response.status_code == 200, response.text
        [found] = response.json()["customers"]
        customer_id: str = found["customer_id"]
        return customer_id


def needs_identity(deployment: Deployment, what: str) -> None:
    """Skip the test on a deployment without the identity service (`CEM_E2E_IDENTITY=rule`)."""
    if getattr(deployment, "identity", "eventsourced") != "eventsourced":
        pytest.skip(f"{what} need the identity service (CEM_E2E_IDENTITY=eventsourced)")


# --- events as a channel system sends them -----------------------------------------------------
def new_tag() -> str:
    """A random id fragment: each test files its data under its own customers and touchpoints."""
    return uuid.uuid4().hex[:12]


def survey(
    customer: dict[str, Any],
    kind: str,
    score: int,
    at: datetime,
    touchpoint: str,
    correlation_id: str | None = None,
    survey_id: str | None = None,
) -> dict[str, Any]:
    payload = {"kind": kind, "score": score, "survey_id": survey_id or f"s-{new_tag()}"}
    return event(
        "survey.answered",
        "survey",
        customer,
        at,
        payload,
        touchpoint=touchpoint,
        correlation_id=correlation_id,
    )


STORY_NAME = "Lucía Pérez Gómez"  # the buyer's name `story`'s first order gives


def story(customer: dict[str, Any], tag: str, start: datetime) -> list[dict[str, Any]]:
    """One customer across channels, oldest first: a call rated CSAT 2 (correlated), a chat, an
    email, two orders (150.00 EUR; the first gives the buyer's name, `STORY_NAME`) and a later
    CSAT 4 about the web shop."""
    call = f"call-{tag}"
    minutes = [start + timedelta(minutes=m) for m in (0, 5, 10, 60, 120, 180, 240, 300)]
    return [
        event("call.answered", "phone", customer, minutes[0], {"agent": "ana"},
              touchpoint=f"line-{tag}", correlation_id=call),
        event("call.ended", "phone", customer, minutes[1],
              {"agent": "ana", "talk_s": 320, "resolved": False},
              touchpoint=f"line-{tag}", correlation_id=call),
        survey(customer, "csat", 2, minutes[2], f"survey-{tag}", call, f"s1-{tag}"),
        event("message.received", "chat", customer, minutes[3], {"text": "where is my order?"},
              touchpoint=f"chat-{tag}"),
        event("email.opened", "email", customer, minutes[4], {"message_id": f"m-{tag}"},
              touchpoint=f"mail-{tag}"),
        event("order.placed", "web", customer, minutes[5],
              {"order_id": f"o1-{tag}", "amount": "129.90", "currency": "EUR", "items": 2,
               "attributes": {"first_name": "Lucía", "last_name": "Pérez Gómez"}},
              touchpoint=f"shop-{tag}"),
        event("order.placed", "web", customer, minutes[6],
              {"order_id": f"o2-{tag}", "amount": "20.10", "currency": "EUR"},
              touchpoint=f"shop-{tag}"),
        survey(customer, "csat", 4, minutes[7], f"shop-{tag}", None, f"s2-{tag}"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    root = argparse.ArgumentParser(description="F13 helpers over an embedded data directory")
    root.add_argument("command", choices=["dump-tables"])
    root.add_argument("--data-dir", type=Path, required=True)
    root.add_argument("--database", required=True)
    args = root.parse_args(argv)
    print(json.dumps(dump_tables(args.data_dir, args.database)))
    return 0


# Columns that record when or by whom a row was processed, not what the log says.
PROCESSING_COLUMNS = {"dead_letters": ("stage", "failed_at", "error")}


def dump_tables(data_dir: Path, database: str) -> dict[str, list[str]]:
    from cem.adapters.chdb_warehouse import ChdbWarehouse

    return dump_warehouse(ChdbWarehouse(data_dir / "warehouse", database=database), database)


def dump_warehouse(warehouse: Warehouse, database: str) -> dict[str, list[str]]:
    """Every table of `database`: distinct rows as canonical JSON, sorted."""
    names = warehouse.select(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": database}
    )
    tables: dict[str, list[str]] = {}
    for name in sorted(row["name"] for row in names):
        skip = PROCESSING_COLUMNS.get(name, ())
        rows = warehouse.select(f"SELECT DISTINCT * FROM {name}")
        cleaned = ({k: v for k, v in row.items() if k not in skip} for row in rows)
        tables[name] = sorted({json.dumps(row, sort_keys=True) for row in cleaned})
    return tables


if __name__ == "__main__":
    raise SystemExit(main())

"""The local ClickHouse engine's readiness (deploy/clickhouse_engine.py): a server counts as up
only when the native port its clients use accepts connections, not when /ping answers alone."""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """clickhouse_engine with the server's start faked: spawning starts nothing, the process then
    counts as running, and /ping answers; what listens on the native port is up to the test."""
    # The engine scripts import each other as top-level modules, as they run from deploy/.
    monkeypatch.syspath_prepend(str(DEPLOY))
    module = importlib.import_module("clickhouse_engine")
    processes = sys.modules["processes"]
    spawned: list[Any] = []
    monkeypatch.setattr(module, "spawn", lambda *args, **kw: spawned.append(args))
    monkeypatch.setattr(processes.State, "running_pid", lambda self: 1 if spawned else None)
    monkeypatch.setattr(module, "clickhouse_answers", lambda http: True)
    monkeypatch.setattr(processes, "START_TIMEOUT_S", 1.0)
    yield module


def test_a_server_that_pings_but_refuses_its_native_port_is_not_up(
    engine: ModuleType, tmp_path: Path
) -> None:
    state = sys.modules["processes"].State(tmp_path)
    with pytest.raises(sys.modules["processes"].EngineError, match="did not answer"):
        engine.start_clickhouse(state, attempts=1)


def test_a_server_that_accepts_on_its_native_port_is_up(engine: ModuleType, tmp_path: Path) -> None:
    state = sys.modules["processes"].State(tmp_path)
    with socket.socket() as native:
        native.bind(("127.0.0.1", 0))
        native.listen()
        port = native.getsockname()[1]
        state.path("ports.json").write_text(f'{{"tcp": {port}, "http": 1}}')
        endpoint = engine.start_clickhouse(state, attempts=1)
    assert endpoint["CLICKHOUSE_URL"] == f"clickhouse://127.0.0.1:{port}/default"

"""The local ClickHouse engine's readiness (deploy/clickhouse_engine.py): a server counts as up
only when the native port its clients use accepts connections, not when /ping answers alone."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import time
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


def test_a_server_a_failed_start_left_running_is_stopped_before_the_next_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Seen once: a start was retried while the first server ran (its pid file since gone), and
    # the second server could not lock the data directory. Before a retry, what still runs with
    # this directory's config goes; a process that only names the directory does not.
    monkeypatch.syspath_prepend(str(DEPLOY))
    processes = importlib.import_module("processes")
    state = processes.State(tmp_path)
    config = str(state.path("config.xml"))
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    server = subprocess.Popen([*sleeper, config])
    caller = subprocess.Popen([*sleeper, "--state-dir", str(tmp_path)])
    try:
        # Popen returns once the child's exec is past its point of no return, which can be before
        # the kernel has set the new command line: /proc/<pid>/cmdline read empty then (a loaded
        # CI run found no stray).
        for process, marker in ((server, config), (caller, "--state-dir")):
            command_line(process.pid, marker)
        assert state.strays(config) == [server.pid]
        module = importlib.import_module("clickhouse_engine")
        attempts: list[int] = []

        def start_once(state: Any) -> dict[str, str]:
            attempts.append(len(state.strays(config)))
            if len(attempts) == 1:
                raise processes.EngineError("exited during start-up")
            return {}

        monkeypatch.setattr(module, "_start_once", start_once)
        assert module.start_clickhouse(state) == {}
        assert attempts == [1, 0]  # the first server was still there, then gone
        assert server.wait(timeout=10) is not None and caller.poll() is None
    finally:
        for process in (server, caller):
            process.kill()
            process.wait()


def command_line(pid: int, marker: str, seconds: float = 10.0) -> bytes:
    """The process's command line once it names `marker` (its exec done)."""
    deadline = time.monotonic() + seconds
    while True:
        found = Path(f"/proc/{pid}/cmdline").read_bytes()
        if marker.encode() in found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)

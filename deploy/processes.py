#!/usr/bin/env python3
"""Processes of the local engines: state directories, free ports, detached start, clean stop.

Run as a script it is the supervisor of one engine (see `spawn`):
    python3 processes.py PID_FILE USER|- -- COMMAND...
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT_S = float(os.environ.get("CEM_ENGINE_START_TIMEOUT", "90"))


class EngineError(RuntimeError):
    """An engine could not be started or stopped; the message says why and where its log is."""


# ---------------------------------------------------------------- state and processes


class State:
    """One engine instance's directory: ports.json, pid, endpoint.env, logs and data."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, name: str) -> Path:
        return self.dir / name

    def ports(self, *names: str) -> dict[str, int]:
        file = self.path("ports.json")
        if file.exists():
            return {k: int(v) for k, v in json.loads(file.read_text()).items()}
        ports = {name: free_port() for name in names}
        file.write_text(json.dumps(ports))
        return ports

    def pid(self) -> int | None:
        file = self.path("pid")
        return int(file.read_text()) if file.exists() else None

    def running_pid(self) -> int | None:
        """The engine's pid if it runs. Every engine's command line names a file in this directory,
        which tells it from an unrelated process that got the pid of a long-dead one."""
        pid = self.pid()
        if pid is None or not alive(pid):
            return None
        try:
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.dir).encode() in command_line else None

    def strays(self, marker: str) -> list[int]:
        """Live processes other than the recorded one whose command line holds `marker` (a file
        of this directory only the engine's command names, such as its config): an instance a
        failed start left running (its pid file since overwritten), which would hold the data
        directory's lock against the next start."""
        recorded, found = self.running_pid(), []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in (os.getpid(), recorded):
                continue
            try:
                command_line = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in command_line and alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def log_tail(self, name: str, lines: int = 30) -> str:
        file = self.path(name)
        text = file.read_text(errors="replace") if file.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    # The kernel picks an unused port; the small window before the engine binds it is accepted.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie (state Z) is dead: our detached engines may be reaped late or never.
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def spawn(cmd: list[str], state: State, log: str, user: str | None = None) -> int:
    """Start cmd detached (own session, outliving this script) under a supervisor; its pid.

    The supervisor only waits for the engine: when the engine dies its pid is reaped at once.
    Orphans are otherwise re-parented to an init that may never reap them, and a zombie's pid
    still looks alive (PostgreSQL, for one, then refuses to restart over its postmaster.pid).
    """
    pid_file = state.path("pid")
    pid_file.unlink(missing_ok=True)
    with open(state.path(log), "ab") as out:
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                str(pid_file),
                user or "-",
                "--",
                *cmd,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=state.dir,
        )
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            raise EngineError(f"{cmd[0]} did not start; {state.path(log)}:\n" + state.log_tail(log))
        time.sleep(0.02)
    return int(pid_file.read_text())


def supervise(pid_file: str, user: str, cmd: list[str]) -> int:
    as_user = {} if user == "-" else {"user": user, "group": user}
    proc = subprocess.Popen(cmd, **as_user)  # type: ignore[call-overload]
    Path(pid_file + ".tmp").write_text(str(proc.pid))
    Path(pid_file + ".tmp").replace(pid_file)
    return int(proc.wait())


def wait_until(ready: Callable[[], bool], state: State, log: str, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if state.running_pid() is None:
            raise EngineError(
                f"{what} exited during start-up; {state.path(log)}:\n" + state.log_tail(log)
            )
        if ready():
            return
        time.sleep(0.3)
    raise EngineError(
        f"{what} did not answer within {START_TIMEOUT_S:.0f}s; "
        f"{state.path(log)}:\n" + state.log_tail(log)
    )


def terminate(pid: int, clean: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
    """A clean shutdown by signal `clean`, then SIGKILL if still there after timeout_s."""
    for sig, wait_s in ((clean, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if not alive(pid):
            return
    raise EngineError(f"process {pid} survived SIGKILL")


def run(cmd: list[str], what: str, **kwargs: object) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise EngineError(f"{what} failed ({result.returncode}): {result.stderr or result.stdout}")
    return str(result.stdout)


def listening(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1], sys.argv[2], sys.argv[4:]))

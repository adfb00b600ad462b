"""Service processes of the platform seen from outside: wait for one to answer its health route,
stop several (light: httpx only, so benches and tests import it without loading the platform)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(
    url: str, timeout_s: float = 30.0, still_starting: Callable[[], None] = lambda: None
) -> None:
    """Wait until `url`/health answers 200. `still_starting` raises when the server can no longer
    come up (its process exited); TimeoutError when it is not healthy in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        still_starting()
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server at {url} did not become healthy in {timeout_s:.0f} s")


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes] | None],
    timeout_s: float = 30.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> None:
    """Ask every running process to stop at once (they shut down side by side), then wait for
    each; one that has not stopped within `timeout_s` is killed."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.send_signal(stop_signal)
    for process in running:
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

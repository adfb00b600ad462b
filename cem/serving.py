"""Waiting for an HTTP service of the platform to answer its health route (light: httpx only, so
benches and tests import it without loading the platform)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


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

"""Checks and output helpers of the `cem` command: a free port, a reachable server, a table."""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cem.cli_errors import CliError


def check_port_free(host: str, port: int, option: str = "--port") -> None:
    """Fail before starting anything when the port cannot be listened on (busy, or not ours);
    `option` is the one that sets it."""
    if not 0 < port < 65536:
        raise CliError(f"port {port} is not a TCP port (1-65535)", status=2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The same option uvicorn sets, so a port in TIME_WAIT is not reported as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror:
            raise CliError(f"cannot listen on {host!r}: not a known address", status=2) from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} on {host} is busy: pass another {option}") from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def reachable(url: str) -> None:
    """Fail in one line when nothing answers at `url` (a wrong port, a typo in the host)."""
    import httpx  # here: every command's start would pay for it

    target = httpx.URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        raise CliError(f"--url must be an http(s) URL with a host, got {url!r}", status=2)
    try:
        httpx.get(f"{url}/health", timeout=5.0, follow_redirects=False, trust_env=False)
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


def _cell(value: Any) -> str:
    # Key timestamps are stored as epoch microseconds; people read RFC 3339.
    if isinstance(value, int) and value > 10**14:
        value = datetime.fromtimestamp(value / 1e6, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return "" if value is None else str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of the same keys as a plain table with a header line, columns aligned."""
    headers = list(rows[0])
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)  # fmt: skip

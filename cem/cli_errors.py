"""How the `cem` command reports a mistake: one line on stderr, a non-zero exit, no traceback.

Commands raise `CliError` for what they detect themselves; the mistakes that surface as library
exceptions (a bad value, an unreachable server, a refused key, a file the user may not write) are
translated here, in one place. `CEM_DEBUG=1` shows the traceback instead, for bug reports.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

from pydantic import ValidationError

from cem.adapters.sqlite_damage import damaged_file_report
from kernel.ports import LogUnavailable

USAGE_ERROR = 2  # argparse's own exit status for bad arguments
FAILED = 1


class CliError(Exception):
    """A mistake or a failure the user can fix; its message is the whole report."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


# The prefixes of the settings read from the environment (pydantic-settings' `env_prefix`).
ENV_PREFIXES = ("CEM_SEGMENT_", "CEM_INGEST_", "CEM_")


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    # A setting read from the environment is named as the user wrote it (`CEM_BACKLOG_LIMIT`).
    where = _variable(where, first.get("input")) or where
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


def _variable(field: str, value: object) -> str | None:
    """The environment variable that gave `field` its bad `value`, if one did."""
    for prefix in ENV_PREFIXES:
        name = f"{prefix}{field.upper()}"
        if field and "." not in field and os.environ.get(name) == value:
            return name
    return None


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The one-line report and exit status of an exception a user can cause; None for a bug."""
    from cem.simulate import SimulationError

    if isinstance(exc, CliError):
        return str(exc), exc.status
    if isinstance(exc, ValidationError):
        return _validation_message(exc), USAGE_ERROR
    if isinstance(exc, SimulationError):
        return str(exc), FAILED
    httpx = sys.modules.get("httpx")  # not imported: the error cannot be one of its own
    if httpx is not None and isinstance(exc, httpx.TransportError):
        return f"cannot reach the server: {exc}", FAILED
    if isinstance(exc, LogUnavailable):  # PostgreSQL, Kafka or a log that cannot answer in time
        return str(exc), FAILED
    if (damaged := damaged_file_report(exc)) is not None:
        return damaged, FAILED
    if isinstance(exc, ValueError):
        return str(exc), USAGE_ERROR
    if isinstance(exc, OSError):
        return exc.strerror and f"{exc.strerror}: {exc.filename}" or str(exc), FAILED
    return None


def run_reporting(command: str, func: Callable[[], int]) -> int:
    """Run one command; report a user's mistake in one line on stderr."""
    try:
        return func()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        described = describe(exc)
        if described is None or os.environ.get("CEM_DEBUG"):
            raise
        message, status = described
        print(f"cem {command}: {message}", file=sys.stderr)
        return status


def positive_number(text: str) -> float:
    """An argparse type: a number above zero (a rate), said in argparse's one line otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0, e.g. 5")
    return value

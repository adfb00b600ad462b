"""Helpers every benchmark shares: statistics, goals, the results table, peak RSS, JSON output.

Pure except for the few functions at the end that read /proc, bind a socket or write a file.
Latencies are kept in seconds and shown in milliseconds; rates are per second.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

Unit = Literal["ev/s", "rows/s", "s", "bytes", "count"]


# --- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), interpolating linearly between the closest ranks.

    The same definition as numpy's default, so numbers match a notebook's; raises on no values.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    weight = position - low
    return ordered[low] * (1 - weight) + ordered[high] * weight


@dataclass(frozen=True)
class Latency:
    """A latency sample summarised; every figure in seconds."""

    count: int
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Latency:
        return cls(
            len(samples),
            percentile(samples, 50),
            percentile(samples, 99),
            max(samples),
            sum(samples) / len(samples),
        )


def in_turns(reads: Mapping[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Each read's times in seconds over `runs` rounds, the reads taking turns so that a busy
    machine slows them alike; each is called once first, untimed, to warm."""
    found: dict[str, list[float]] = {name: [] for name in reads}
    for read in reads.values():
        read()
    for _ in range(runs):
        for name, read in reads.items():
            start = time.perf_counter()
            read()
            found[name].append(time.perf_counter() - start)
    return found


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is zero."""
    if value is None or not reference:
        return None
    return value / reference


# --- goals and the results table -------------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    """A target a metric should meet: `at_least` for rates, `at_most` for latencies."""

    kind: Literal["at_least", "at_most"]
    target: float

    def met(self, value: float) -> bool:
        return value >= self.target if self.kind == "at_least" else value <= self.target

    def text(self, unit: Unit) -> str:
        sign = "≥" if self.kind == "at_least" else "≤"
        return f"{sign} {format_value(self.target, unit)}"


@dataclass(frozen=True)
class Row:
    """One line of the results: a measured value, its goal, and the raw engine's figure if any."""

    metric: str
    value: float
    unit: Unit
    goal: Goal | None = None
    raw_name: str | None = None
    raw_value: float | None = None
    load: tuple[float, float] | None = None  # 1-minute load average before and after the phase

    @property
    def raw_ratio(self) -> float | None:
        return ratio(self.value, self.raw_value)

    def cells(self) -> list[str]:
        goal = ""
        if self.goal is not None:
            goal = (
                f"{self.goal.text(self.unit)} ({'met' if self.goal.met(self.value) else 'MISSED'})"
            )
        versus = ""
        if self.raw_ratio is not None and self.raw_value is not None:
            raw = format_value(self.raw_value, self.unit)
            versus = f"{self.raw_ratio:.3g}× {self.raw_name} ({raw})"
        load = "" if self.load is None else f"{self.load[0]:.1f} → {self.load[1]:.1f}"
        return [self.metric, format_value(self.value, self.unit), goal, versus, load]

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "goal": None if self.goal is None else asdict(self.goal),
            "goal_met": None if self.goal is None else self.goal.met(self.value),
            "raw_name": self.raw_name,
            "raw_value": self.raw_value,
            "raw_ratio": self.raw_ratio,
            "load_average": self.load,
        }


def format_value(value: float, unit: Unit) -> str:
    """Human units: thousands separators for rates, ms below a second, MiB/GiB for memory."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if unit in ("ev/s", "rows/s"):
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "bytes":
        mib = value / 2**20
        return f"{mib:,.0f} MiB" if mib < 1024 else f"{mib / 1024:.2f} GiB"
    return f"{value:,.0f}"


HEADER = ("metric", "value", "goal", "vs raw engine (same run)", "load (1 min) before → after")


def render_table(rows: Iterable[Row]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    lines = [list(HEADER)] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(lines[0]), rule, *(fmt(line) for line in lines[1:])])


# --- memory ----------------------------------------------------------------------------------
def parse_peak_rss(status: str) -> int | None:
    """Bytes of `VmHWM` (peak resident set) in the text of /proc/<pid>/status, if present."""
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name == "VmHWM":
            amount, _, unit = rest.strip().partition(" ")
            scale = {"kB": 1024, "mB": 2**20, "gB": 2**30}.get(unit.strip(), 1)
            return int(amount) * scale
    return None


def peak_rss(pid: int | None = None) -> int | None:
    """Peak RSS in bytes of a process (default: this one); None where /proc is not available."""
    try:
        text = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    except OSError:
        return None
    return parse_peak_rss(text)


def child_pids(pid: int) -> list[int]:
    """The process ids of a live process's children (`/proc/<pid>/task/*/children`); [] where
    /proc does not say."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        return []
    return found


# --- output and ports ------------------------------------------------------------------------
def to_json(data: Any) -> bytes:
    """Indented JSON; dataclasses, paths and non-finite floats are written readably."""

    def default(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

    return orjson.dumps(
        _finite(data), default=default, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_DATACLASS
    )


def _finite(data: Any) -> Any:
    # JSON has no Infinity/NaN; a missing measurement is written as null.
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def write_json(path: str | Path, data: Any) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(to_json(data) + b"\n")
    return target


QUICK_HELP = "a smaller run (100,000 background events, 45 s phases): ≤ 10 min on 2 cores"


def bench_parser(prog: str, default_out: str) -> argparse.ArgumentParser:
    """The options every bench takes, for `python -m bench.<mode>` (the same as `cem bench`)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--data-dir", default=".cem")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true")
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--keep", action="store_true", help="keep the run's data directory")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    return parser

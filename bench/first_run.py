"""First run: seconds from starting `cem up --demo` to data in the default views (issue 13).

Starts the platform as a user would, reads its banner (the sample customer and the demo keys),
then polls the two views a newcomer opens first: the default satisfaction view (last 30 days) and
the sample customer's timeline. Prints the seconds to the banner and to each view being non-empty.

    python -m bench.first_run                 # a fresh data directory, a free port
    python -m bench.first_run -- CMD ARGS...  # time another start command (e.g. `make up PORT=…`)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from cem.serving import free_port, stop_processes

URL = re.compile(r"^\s+health\s+(?P<url>http\S+)/health$")
KEY = re.compile(r"^\s{4}(?P<role>ingest|agent|manager|admin)\s+(?P<secret>cem_\S+)$")
SAMPLE = re.compile(r"^\s+sample customer (?P<name>.+) \(id (?P<key>\S+)\)$")
INGEST = re.compile(r"^\s+ingest\s+POST (?P<url>http\S+)/v1/events$")


@dataclass
class Banner:
    """What `cem up --demo` printed once listening."""

    url: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    sample_key: str = ""
    lines: list[str] = field(default_factory=list)
    posted_to: str = ""  # where events are posted, when the banner names it

    @property
    def ingest_url(self) -> str:
        return self.posted_to or self.url

    def read(self, line: str) -> None:
        self.lines.append(line)
        if m := URL.match(line):
            self.url = m["url"]
        elif m := INGEST.match(line):
            self.posted_to = m["url"]
        elif m := KEY.match(line):
            self.keys[m["role"]] = m["secret"]
        elif m := SAMPLE.match(line):
            self.sample_key = m["key"]

    @property
    def complete(self) -> bool:
        return bool(self.url and self.sample_key and {"agent", "manager"} <= set(self.keys))


def read_banner(lines: Iterator[str], deadline: float) -> Banner:
    banner = Banner()
    for line in lines:
        banner.read(line.rstrip("\n"))
        if banner.complete or time.monotonic() > deadline:
            return banner
    raise RuntimeError("cem up exited before printing its banner:\n" + "\n".join(banner.lines))


def satisfaction_rows(banner: Banner) -> int:
    response = httpx.get(
        f"{banner.url}/v1/satisfaction/touchpoints",
        headers={"Authorization": f"Bearer {banner.keys['manager']}"},
        timeout=10,
    )
    response.raise_for_status()
    return len(response.json()["buckets"])


def timeline_entries(banner: Banner) -> int:
    response = httpx.get(
        f"{banner.url}/v1/customers/{banner.sample_key}/timeline",
        headers={"Authorization": f"Bearer {banner.keys['agent']}"},
        timeout=10,
    )
    if response.status_code == 404:  # not filed yet
        return 0
    response.raise_for_status()
    return len(response.json()["entries"])


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) the process has used so far: unlike wall time, it does not grow
    with other jobs on the same cores. 0 when unknown (not Linux, or the process is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds_until_data(
    banner: Banner, started: float, deadline: float, pid: int | None = None
) -> dict[str, float]:
    """Seconds since `started` until each default view first answers with data; with `pid`, also
    the CPU seconds that process had used by then (`<view> cpu`)."""
    found: dict[str, float] = {}
    views = {"satisfaction": satisfaction_rows, "timeline": timeline_entries}
    while views.keys() - found.keys() and time.monotonic() < deadline:
        for name, count in views.items():
            if name not in found and count(banner) > 0:
                found[name] = time.monotonic() - started
                if pid is not None:
                    found[f"{name} cpu"] = cpu_seconds(pid)
        time.sleep(0.2)
    return found


def start(
    command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # `make` starts cem as a child: stop the whole group
    )


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
    stop_processes([process])  # type: ignore[list-item]


def measure(command: Sequence[str], timeout_s: float = 120.0) -> dict[str, float]:
    started = time.monotonic()
    deadline = started + timeout_s
    process = start(command)
    try:
        out: IO[str] = process.stdout  # type: ignore[assignment]
        banner = read_banner(iter(out.readline, ""), deadline)
        result = {"banner": time.monotonic() - started, "banner cpu": cpu_seconds(process.pid)}
        result |= seconds_until_data(banner, started, deadline, process.pid)
        return result
    finally:
        stop(process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.first_run", description=__doc__)
    parser.add_argument("command", nargs="*", help="start command; default: cem up --demo")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir:
        command = args.command or [
            sys.executable, "-m", "cem.cli", "up", "--demo",
            "--port", str(free_port()), "--data-dir", data_dir,
        ]  # fmt: skip
        result = measure(command)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'':<13} {'wall':>8} {'cpu of cem up':>14}")
    for name in ("banner", "satisfaction", "timeline"):
        if name not in result:
            print(f"{name:<13} not within 120 s")
            continue
        print(f"{name:<13} {result[name]:>6.1f} s {result[f'{name} cpu']:>12.1f} s")
    return 0 if {"satisfaction", "timeline"} <= result.keys() else 1


if __name__ == "__main__":
    raise SystemExit(main())

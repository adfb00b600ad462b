"""`cem up` files in a process of its own (cem/filing_process.py): the events posted are filed
and projected across the two processes; a filing process that dies is reported in one line and
started again, `/ready` naming it meanwhile; and it never outlives `cem up`, whether that stops
on SIGTERM or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from cem.filing_process import HEALTHY_RUN_S, FilingProcess, next_pause
from cem.serving import free_port, wait_until_serving
from kernel.settings import IngestSettings
from tests.events import survey_answer

REPO = Path(__file__).resolve().parents[2]
TENANT = "acme"
T = TypeVar("T")


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    url: str
    ingest_key: str
    agent_key: str
    stderr: Path

    def health(self) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.url}/health", timeout=10).json()
        return found

    def child(self) -> int:
        pid: int = self.health()["filing_process"]["process"]
        # this `cem up`'s, not that of a server another test worker started on the same port
        # (`free_port` only says nobody listened a moment ago): the tests kill it
        assert parent(pid) == self.process.pid, f"{self.url} is not this test's server"
        return pid


def parent(pid: int) -> int | None:
    try:  # /proc/PID/stat: "pid (comm) state ppid ..."
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def cem(data_dir: Path, *args: str) -> str:
    argv = [sys.executable, "-m", "cem.cli", *args, "--data-dir", str(data_dir)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    data_dir, port = tmp_path / "data", free_port()
    keys = [
        cem(data_dir, "keys", "create", "--tenant", TENANT, "--role", r)
        for r in ("ingest", "agent")
    ]
    stderr = tmp_path / "up.log"
    argv = [sys.executable, "-m", "cem.cli", "up", "--port", str(port), "--data-dir", str(data_dir)]
    # The filing stage in a process of its own, on a log and identity store sealed at rest (the
    # child opens what the parent's ingest sealed, with the same keys).
    env = {
        **os.environ,
        "CEM_IDENTITY": "eventsourced",
        "CEM_FILING_PROCESS": "true",
        "CEM_SEAL_PERSONAL_DATA": "true",
    }
    with stderr.open("wb") as err:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, timeout_s=120)
        yield Up(process, url, keys[0], keys[1], stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def eventually(check: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def posted_and_shown(up: Up, email: str) -> bool:
    answer = survey_answer(customer={"email": email})
    headers = {"Authorization": f"Bearer {up.ingest_key}"}
    response = httpx.post(f"{up.url}/v1/events", json=answer, headers=headers, timeout=30)
    assert response.status_code in (200, 202), response.text
    timeline = f"{up.url}/v1/customers/email:{email}/timeline"

    def shown() -> bool:
        auth = {"Authorization": f"Bearer {up.agent_key}"}
        found = httpx.get(timeline, headers=auth, timeout=30)
        return found.status_code == 200 and [e["event_id"] for e in found.json()["entries"]] == [
            answer["event_id"]
        ]

    return eventually(shown, f"{email}'s event in the timeline")


def test_events_are_filed_by_the_filing_process_and_projected_by_the_main_one(up: Up) -> None:
    child = up.child()
    assert child != up.process.pid and alive(child)
    assert httpx.get(f"{up.url}/ready").json()["checks"]["filing"] == "ok"
    assert posted_and_shown(up, "ana@x.io")


def test_a_filing_process_that_dies_is_reported_in_one_line_and_started_again(up: Up) -> None:
    first = up.child()
    os.kill(first, signal.SIGKILL)
    again = eventually(
        lambda: up.health()["filing_process"]["restarts"] == 1 and up.health(), "a restart"
    )
    assert again["filing_process"]["running"] and again["filing_process"]["process"] != first
    eventually(lambda: httpx.get(f"{up.url}/ready").status_code == 200, "ready again")
    lines = up.stderr.read_text().splitlines()
    assert [line for line in lines if "filing stage's process exited" in line] == [
        "the filing stage's process exited (code -9); starting it again in 1 s"
    ]
    assert "Traceback" not in up.stderr.read_text()
    assert posted_and_shown(up, "luis@x.io")  # the new process files


def test_the_filing_process_stops_with_cem_up_on_sigterm(up: Up) -> None:
    child = up.child()
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(60) == 128 + signal.SIGTERM
    assert not alive(child)  # stopped by cem up before it exited
    assert "Traceback" not in up.stderr.read_text()


def test_the_filing_process_exits_when_cem_up_is_killed(up: Up) -> None:
    child = up.child()
    up.process.kill()
    up.process.wait(30)
    eventually(lambda: not alive(child), "the orphaned filing process to exit")


def test_a_filing_process_that_cannot_start_says_why_in_one_line_and_is_not_ready(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A data directory the process cannot use (here a file): the start fails in one line, the
    parent logs the exit in one line and tries again later, and meanwhile the probe says it is
    down (a long first pause here, so that the test reads it while it is)."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    filing = FilingProcess(IngestSettings(data_dir=not_a_dir), first_pause_s=600)

    def exits() -> list[str]:
        return [r.getMessage() for r in caplog.records if "exited" in r.getMessage()]

    filing.start()
    try:
        eventually(exits, "the first start to fail")
        with pytest.raises(RuntimeError, match="filing stage's process is not running"):
            filing.check()
    finally:
        filing.stop()  # ends the pause too
    assert not filing.running() and filing.restarts == 0
    assert exits() == ["the filing stage's process exited (code 1); starting it again in 600 s"]
    errors = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("cem filing process: NotADirectoryError")


def test_the_pause_before_a_restart_doubles_while_it_keeps_failing_and_resets_after_a_good_run() -> (
    None
):
    pauses = [next_pause(0.0, 0.5)]
    for _ in range(7):
        pauses.append(next_pause(pauses[-1], 0.5))
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    assert next_pause(30, HEALTHY_RUN_S + 1) == 1  # ran long enough: not a crash loop

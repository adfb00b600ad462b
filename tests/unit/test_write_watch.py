"""/ready says when the ingest's writes do not get through, though the log still answers reads
(a review locked the SQLite log: every POST answered 503 while /ready said `event_log: ok`); and a
stage whose batch keeps failing says so in /health."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from cem.runner import Runner
from kernel.ports import LogUnavailable, Outgoing, PublishStatus
from kernel.write_watch import FAILURE_MEMORY_S, WatchedPublisher


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Inner:
    def __init__(self) -> None:
        self.fail: Exception | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return [PublishStatus.accepted for _ in events]


def test_a_failed_write_makes_it_unready_until_one_succeeds_or_it_is_forgotten() -> None:
    clock, inner = Clock(), Inner()
    watched = WatchedPublisher(inner, stuck_after_s=5.0, clock=clock)
    watched.check()  # nothing written yet: ready
    inner.fail = LogUnavailable("database is locked")
    with pytest.raises(LogUnavailable):
        watched.publish([])
    clock.now += 3
    with pytest.raises(LogUnavailable, match="latest write failed 3 s ago: .*database is locked"):
        watched.check()
    inner.fail = None
    watched.publish([])
    watched.check()  # a write got through since
    inner.fail = LogUnavailable("readonly database")
    with pytest.raises(LogUnavailable):
        watched.publish([])
    clock.now += FAILURE_MEMORY_S + 1
    watched.check()  # no write since to prove it either way: not unready for ever


def test_a_write_waiting_longer_than_the_ingest_waits_makes_it_unready() -> None:
    clock, inner = Clock(), Inner()
    watched = WatchedPublisher(inner, stuck_after_s=5.0, clock=clock)
    inner.gate = threading.Event()
    writer = threading.Thread(target=watched.publish, args=([],))
    writer.start()
    assert inner.entered.wait(10)  # the write waits (a sleep let a slow thread start after it)
    watched.check()  # waiting, but not longer than an acknowledgement may take
    clock.now += 6
    with pytest.raises(LogUnavailable, match="a write has waited 6 s"):
        watched.check()
    inner.gate.set()
    writer.join(5)
    watched.check()


def test_a_stage_whose_batch_keeps_failing_says_since_when_and_why() -> None:
    calls: list[int] = []

    def step() -> int:
        calls.append(1)
        if len(calls) <= 3:
            raise OSError("attempt to write a readonly database")
        return 0

    runner = Runner("projections", step)
    assert runner.failing() is None
    runner.start()
    deadline = time.monotonic() + 10
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    failing = runner.failing()
    assert failing is not None and failing["attempts"] >= 1
    assert failing["error"] == "OSError: attempt to write a readonly database"
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    assert runner.failing() is None  # it recovered


def test_the_filing_process_tells_its_parent_a_batch_that_keeps_failing(tmp_path: Path) -> None:
    # `cem up` files in a process of its own: a stage failing there was invisible to /health
    # (found by a review). The child writes what its runner says; the parent reads the running
    # child's, not an earlier one's.
    import os
    from types import SimpleNamespace
    from typing import Any, cast

    from cem.filing_process import STATE_FILE, FilingProcess, tell_parent
    from kernel.settings import IngestSettings

    parent = FilingProcess(IngestSettings(data_dir=tmp_path))
    running = SimpleNamespace(pid=os.getpid(), poll=lambda: None)
    parent._process = cast(Any, running)
    failing = {
        "since": "2026-12-06T08:00:00+00:00",
        "attempts": 3,
        "error": "OperationalError: locked",
    }
    tell_parent(tmp_path / STATE_FILE, failing)
    assert parent.failing() == failing
    parent._process = cast(Any, SimpleNamespace(pid=os.getpid() + 1, poll=lambda: None))
    assert parent.failing() is None  # an earlier child's word
    parent._process = cast(Any, running)
    tell_parent(tmp_path / STATE_FILE, None)
    assert parent.failing() is None and not (tmp_path / STATE_FILE).exists()

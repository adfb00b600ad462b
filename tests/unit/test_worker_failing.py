"""A distributed worker whose batch keeps failing says so in /health and /ready (a review saw
`ok` while every batch failed with ClickHouse stopped)."""

from __future__ import annotations

import asyncio

import pytest

import cem.faust_worker as worker
from cem.faust_worker import FAILING, WorkerSettings, until_done


def test_a_retried_call_is_failing_until_it_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "FIRST_RETRY_S", 0.01)
    attempts: list[int] = []
    seen: list[dict[str, object]] = []

    def write() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("ClickHouse at 127.0.0.1:9000")
        seen.append(dict(FAILING.now["writing a batch"]))
        return "written"

    assert (
        asyncio.run(until_done(write, "writing a batch", Exception, WorkerSettings())) == "written"
    )
    [state] = seen  # while it kept failing
    assert state["attempts"] == 2
    assert state["error"] == "ConnectionRefusedError: ClickHouse at 127.0.0.1:9000"
    assert "writing a batch" not in FAILING.now  # done: ok again

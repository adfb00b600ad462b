"""The live-stream prober's figures (bench/console.py), without a server: what it counts."""

from __future__ import annotations

import threading

import pytest

from bench import console
from bench.console import SseProbe


def _stopped_probe(acked: dict[str, float], received: dict[str, float]) -> SseProbe:
    probe = SseProbe("http://ingest", "http://read", "ingest key", "read key", lambda c: {})
    done = threading.Thread(target=lambda: None)
    done.start()
    probe.prober = probe.loop_thread = done
    probe.acked, probe.received = acked, received
    return probe


def test_live_streams_count_only_the_events_posted_once_the_load_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "DRAIN_S", 0.0)  # the lost one is not waited for
    acked = {"idle": 1.0, "loaded": 10.0, "lost": 11.0, "lost before": 2.0}
    received = {"idle": 1.05, "loaded": 10.75}

    during = _stopped_probe(acked, received).stop(since=5.0)
    assert during["count"] == 1 and during["p99"] == pytest.approx(0.75)
    assert during["posted"] == 2 and during["missing"] == 1

    everything = _stopped_probe(acked, received).stop()
    assert everything["count"] == 2 and everything["posted"] == 4 and everything["missing"] == 2

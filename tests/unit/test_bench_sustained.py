"""The pure helpers of the realistic run (bench/sustained.py) and of the Kafka perf tool's
runner (bench/kafka_perf.py): rates, schedules, the backlog's trend, batches, the tool's output.
No timing is asserted (HOUSE_STYLE)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import kafka_perf
from bench.common import Goal
from bench.sustained import (
    BATCH,
    backlog,
    encode_batches,
    interleaved_latency,
    lag_trend,
    open_live,
    people_for,
    phase_rates,
    rows,
    schedule,
)


def test_phase_rates_are_the_shares_of_the_measured_maximum() -> None:
    assert phase_rates(1_000.0) == [(0.5, 500.0), (0.9, 900.0)]
    assert phase_rates(200.0, (0.25,)) == [(0.25, 50.0)]


@pytest.mark.parametrize("maximum", [0.0, -1.0, math.inf, math.nan])
def test_phase_rates_refuse_a_maximum_that_is_no_rate(maximum: float) -> None:
    with pytest.raises(ValueError, match="maximum"):
        phase_rates(maximum)


def test_schedule_spaces_requests_to_post_the_rate() -> None:
    due = schedule(1_000.0, 10.0, 500)
    assert len(due) == 20  # 10,000 events in batches of 500
    assert due[0] == 0.0
    assert due[1] == pytest.approx(0.5)
    assert due[-1] == pytest.approx(9.5)
    assert schedule(1.0, 1.0, 500) == [0.0]  # at least one request
    with pytest.raises(ValueError):
        schedule(0.0, 10.0, 500)


def test_backlog_is_the_slowest_group() -> None:
    assert backlog({"projections": 10, "satisfaction": 700}) == 700
    assert backlog({}) == 0


def test_lag_trend_sees_a_backlog_that_grows() -> None:
    samples = [(t * 0.5, t * 200) for t in range(40)]  # 400 events more every second
    trend = lag_trend(samples)
    assert trend["grew"] is True
    assert trend["slope"] == pytest.approx(400.0)
    assert trend["start"] < trend["end"]
    assert trend["max"] == 39 * 200
    assert trend["samples"] == 40


def test_lag_trend_does_not_call_a_batch_in_flight_growth() -> None:
    steady = [(t * 0.5, BATCH if t % 2 else 0) for t in range(40)]
    assert lag_trend(steady)["grew"] is False
    falling = [(t * 0.5, 5_000 - t * 100) for t in range(40)]
    assert lag_trend(falling)["grew"] is False
    assert lag_trend(falling)["slope"] < 0


def test_lag_trend_of_no_samples_is_unknown() -> None:
    assert lag_trend([])["grew"] is None
    assert lag_trend([(0.0, 3)])["slope"] == 0.0


def test_encode_batches_are_request_bodies_of_the_batch_size() -> None:
    events = [{"event_id": str(n)} for n in range(1_201)]
    bodies = encode_batches(events)
    assert [len(orjson.loads(b)["events"]) for b in bodies] == [500, 500, 201]
    assert orjson.loads(bodies[2])["events"][-1] == {"event_id": "1200"}


def test_people_for_grows_with_the_events_and_has_a_floor() -> None:
    assert people_for(10) == 200
    assert people_for(100_000) == 20_000


def test_interleaved_latency_alternates_and_keeps_a_missing_raw_side_apart() -> None:
    calls: list[str] = []
    found = interleaved_latency(lambda: calls.append("api"), lambda: 0.002, count=5, warmup=1)
    assert found["api"]["count"] == 5
    assert found["raw"]["p50"] == 0.002
    missing = interleaved_latency(lambda: calls.append("api"), lambda: None, count=3, warmup=0)
    assert missing["raw"] is None


def _phase(share: float, p99: float, grew: bool) -> dict[str, object]:
    latency = {"count": 20, "p50": p99 / 2, "p99": p99}
    return {
        "share": share,
        "target_rate": 450.0,
        "achieved_rate": 440.0,
        "freshness": latency,
        "probe_timeouts": 0,
        "probe_timeout_s": 60.0,
        "lag": {"start": 10.0, "end": 4_000.0 if grew else 12.0, "slope": 1.0, "grew": grew},
        "drain_after_load_s": 2.0,
        "load_before": (4.0, 4.0, 4.0),
        "load_after": (5.0, 5.0, 5.0),
    }


_sse = {"p50": 0.3, "p99": 1.2, "count": 90, "streams": 200, "missing": 1, "repeated": 0}


def test_rows_hold_the_goals_and_the_load_beside_each_figure() -> None:
    maximum = {
        "rate": 900.0, "acknowledged_rate": 1_500.0, "accepted": 10_000,
        "load_before": (4.0, 0, 0), "load_after": (6.0, 0, 0),
    }  # fmt: skip
    query = {
        "api": {"p50": 0.01, "p99": 0.03},
        "raw": {"p50": 0.005, "p99": 0.01},
        "load_before": (5.0, 0, 0),
        "load_after": (5.5, 0, 0),
    }
    api = {
        "maximum": {"identity": maximum, "demo": maximum | {"rate": 1_800.0}},
        "sustained": [
            _phase(0.5, 0.8, False) | {"sse": _sse},
            _phase(0.9, 3.0, True),
        ],
        "timeline": query,
        "satisfaction": query,
    }
    found = {row.metric: row for row in rows(api, 20_000, "raw SQLite", 90_000.0)}
    realistic = found["max end-to-end, realistic identifiers (10,000 ev, 500/request)"]
    assert realistic.goal == Goal("at_least", 20_000)
    assert realistic.raw_ratio == pytest.approx(0.01)
    assert realistic.load == (4.0, 6.0)
    half = found["  freshness p99 during 50% load"]
    assert half.goal is not None and half.goal.met(0.8)
    assert found["  freshness p99 during 90% load"].goal is None  # the goal is at 50%
    assert "grew: True" in " ".join(found)
    sse = found["  SSE delivery p99 during 50% load"]
    assert sse.value == 1.2 and sse.goal is not None and not sse.goal.met(sse.value)
    assert found["  SSE events lost or shown twice, 50% load"].value == 1
    assert not any("SSE" in metric and "90%" in metric for metric in found)
    timeline = found["timeline p99 (API; raw = same SQL, same process and phase)"]
    assert timeline.raw_ratio == pytest.approx(3.0)
    assert timeline.goal == Goal("at_most", 0.015)
    assert all(row.load is not None for row in found.values())


SUMMARY = """\
77776 records sent, 15552.1 records/sec (8.90 MB/sec), 1364.5 ms avg latency, 2087.0 ms max latency.
150000 records sent, 34965.0 records/sec (20.01 MB/sec), 1184.23 ms avg latency, 1624.00 ms \
max latency, 1213 ms 50th, 1567 ms 95th, 1609 ms 99th, 1622 ms 99.9th.
"""


def test_the_perf_tools_closing_line_is_read() -> None:
    found = kafka_perf.parse_summary(SUMMARY)
    assert found["records"] == 150_000
    assert found["rate"] == 34_965.0
    assert found["mb_per_s"] == 20.01
    assert found["latency_s"]["p99"] == pytest.approx(1.609)
    assert found["latency_s"]["avg"] == pytest.approx(1.18423)


def test_output_without_a_closing_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no ProducerPerformance summary"):
        kafka_perf.parse_summary(SUMMARY.splitlines()[0])


def test_the_perf_tool_runs_with_acks_all_and_the_record_size() -> None:
    argv = kafka_perf.command(Path("/k/lib"), "127.0.0.1:9092", "t", 1_000, 600)
    assert argv[argv.index("-cp") + 1] == "/k/lib/*"
    assert kafka_perf.TOOL in argv
    assert argv[argv.index("--record-size") + 1] == "600"
    assert argv[argv.index("--throughput") + 1] == "-1"
    assert "acks=all" in argv
    assert "bootstrap.servers=127.0.0.1:9092" in argv


def test_without_the_tools_jar_the_perf_tool_is_reported_missing(tmp_path: Path) -> None:
    assert not kafka_perf.available(tmp_path)
    assert "kafka-tools" in kafka_perf.run(tmp_path, "127.0.0.1:1", 12, 10)["error"]


class _PeriodicCommits:
    """Live streams in front of a pipeline that commits its offsets periodically: while the
    prober posts, the backlog is never seen empty."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.probing = False

    def start(self) -> None:
        self.calls.append("start")

    def probe(self) -> None:
        self.calls.append("probe")
        self.probing = True

    def stop(self, since: float | None = None) -> dict[str, Any]:
        self.probing = False
        return {}

    def lag(self) -> dict[str, int]:
        return {"filing": 3 if self.probing else 0}


def test_live_streams_start_probing_only_once_the_pipeline_took_their_first_events() -> None:
    # The distributed bench hung here: the prober posted before the drain wait, so a backlog
    # that never reads 0 while it posts kept the wait going until its 30-minute timeout.
    streams = _PeriodicCommits()
    assert open_live(streams, streams.lag, timeout_s=5.0) is streams
    assert streams.calls == ["start", "probe"] and streams.probing

"""The distributed benchmark's pure helpers: plan sizes, endpoints, environment, load budget,
raw insert blocks, routing and the results rows. No engines, no timings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from bench.common import Goal
from bench.distributed import (
    DEFAULT_OUT,
    MIN_LOAD_S,
    RUN_BUDGET_S,
    DistributedPlan,
    RoutedTarget,
    load_budget,
    output_path,
    parse_endpoint,
    past_budget,
    service_env,
    summary_rows,
    timeline_columns,
    with_database,
)
from cem.cli import parser

ENDPOINTS = {
    "kafka": "127.0.0.1:9092",
    "clickhouse": "clickhouse://127.0.0.1:9000/default",
    "postgres": "postgresql://cem@127.0.0.1:5432/cem",
}


def test_the_quick_plan_is_smaller_and_says_so() -> None:
    quick = DistributedPlan.quick_plan()
    assert quick.quick and not quick.extras
    assert quick.events == 50_000 and quick.heavy_events == 1_000
    assert quick.sustained_seconds == 45.0
    assert quick.perf_records < DistributedPlan().perf_records
    assert "quick size: 50,000 background events" in quick.describe()
    assert parser().parse_args(["bench", "--quick"]).quick is True
    assert parser().parse_args(["bench"]).quick is False


def test_plan_scales_down_and_never_above_its_defaults() -> None:
    small, full, huge = (DistributedPlan.for_events(n) for n in (20_000, 1_000_000, 10**7))
    assert small.events == 20_000 and small.raw_produce_rows == 10_000
    assert full.raw_produce_rows == 200_000 and full.raw_insert_rows == 500_000
    assert full.batched_events == 100_000 and full.heavy_events == 1_000
    assert huge.batched_events == 100_000 and huge.raw_insert_rows == 500_000


def test_parse_endpoint_reads_the_printed_lines() -> None:
    printed = "KAFKA_BOOTSTRAP=127.0.0.1:1234\n\nCLICKHOUSE_URL=clickhouse://h:1/default?a=b\n"
    assert parse_endpoint(printed) == {
        "KAFKA_BOOTSTRAP": "127.0.0.1:1234",
        "CLICKHOUSE_URL": "clickhouse://h:1/default?a=b",
    }


def test_with_database_replaces_only_the_path() -> None:
    url = "clickhouse://user:pw@127.0.0.1:9000/default?secure=False"
    assert (
        with_database(url, "bench_1") == "clickhouse://user:pw@127.0.0.1:9000/bench_1?secure=False"
    )


def test_service_env_points_at_the_engines_and_drops_the_callers_cem_settings() -> None:
    environ = {"PATH": "/bin", "CEM_KAFKA_BOOTSTRAP": "live:9092", "CEM_BATCH_WITHIN_S": "9"}
    env = service_env(environ, ENDPOINTS, "clickhouse://127.0.0.1:9000/bench_x", Path("/d"))
    assert env["PATH"] == "/bin"
    assert env["CEM_MODE"] == "distributed"
    assert env["CEM_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert env["CEM_CLICKHOUSE_URL"].endswith("/bench_x")
    assert env["CEM_DATA_DIR"] == "/d"
    assert "CEM_BATCH_WITHIN_S" not in env
    assert float(env["CEM_INGEST_QUOTA_RATE_PER_S"]) >= 1e9  # the quota must not cap the figure


def test_load_budget_is_what_is_left_of_the_run_and_at_least_a_minute() -> None:
    assert load_budget(60.0) < load_budget(0.0) < RUN_BUDGET_S
    assert load_budget(0.0) - load_budget(60.0) == pytest.approx(60.0)
    assert load_budget(RUN_BUDGET_S) == MIN_LOAD_S


@pytest.mark.parametrize(
    ("elapsed", "published", "lag", "stop"),
    [
        (10.0, 10_000, {"projections": 0, "satisfaction": 0}, False),
        (100.0, 100_000, {"projections": 50_000, "satisfaction": 10_000}, False),  # drains by 200
        (100.0, 100_000, {"projections": 80_000, "satisfaction": 0}, True),  # drains at 500
        (330.0, 1_000, {"projections": 0, "satisfaction": 0}, True),  # out of time
        (100.0, 5_000, {"projections": 5_000, "satisfaction": 5_000}, False),  # nothing yet
        (170.0, 5_000, {"projections": 5_000, "satisfaction": 5_000}, True),  # …for too long
    ],
)
def test_past_budget_stops_when_the_slowest_group_would_not_drain_in_time(
    elapsed: float, published: int, lag: dict[str, int], stop: bool
) -> None:
    assert past_budget(elapsed, published, lag, budget_s=330.0) is stop


def test_timeline_columns_are_native_blocks_with_unique_events() -> None:
    templates = [
        {"tenant_id": "t", "customer_id": "x", "derived_at": 100, "event_id": "e"},
        {"tenant_id": "t", "customer_id": "y", "derived_at": 200, "event_id": "f"},
    ]
    tenant, customer, derived, event = timeline_columns(templates, 10, 4, customers=3)
    assert tenant == ["t"] * 4
    assert customer == ["c1", "c2", "c0", "c1"]
    assert derived == [110, 211, 112, 213]
    assert len(set(event)) == 4
    assert templates[0]["customer_id"] == "x"  # the templates are left as they were


def test_output_path_never_replaces_the_embedded_results() -> None:
    # `cem bench` leaves --out unset, so each mode writes its own file.
    assert parser().parse_args(["bench", "--distributed"]).out is None
    assert output_path(argparse.Namespace(out=None)) == DEFAULT_OUT
    assert output_path(argparse.Namespace()) == DEFAULT_OUT
    assert output_path(argparse.Namespace(out="x/y.json")) == "x/y.json"


@pytest.mark.parametrize("mode", [[], ["--distributed"]])
def test_bench_without_a_data_dir_runs_under_the_one_every_command_finds(
    mode: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cem bench --distributed --quick` with no --data-dir stopped on a TypeError (None path).
    import bench.distributed
    import bench.embedded
    from cem.cli import main

    seen: list[str] = []
    for module in (bench.embedded, bench.distributed):
        monkeypatch.setattr(module, "main", lambda args: seen.append(args.data_dir) or 0)
    monkeypatch.setenv("CEM_DATA_DIR", str(tmp_path / "state"))
    assert main(["bench", "--quick", *mode]) == 0
    assert seen == [str(tmp_path / "state")]
    monkeypatch.delenv("CEM_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", *mode]) == 0
    assert seen[1] == ".cem" and (tmp_path / ".cem").is_dir()


def test_routed_target_sends_events_to_ingest_and_reads_to_the_query_api() -> None:
    target = RoutedTarget("http://127.0.0.1:1", "ik", "rk", "http://127.0.0.1:2")
    with target.client("ingest") as ingest, target.client("read") as read:
        assert str(ingest.base_url).startswith("http://127.0.0.1:1")
        assert ingest.headers["authorization"] == "Bearer ik"
        assert str(read.base_url).startswith("http://127.0.0.1:2")
        assert read.headers["authorization"] == "Bearer rk"


def _result(cut_short: bool, perf: dict[str, Any] | None = None) -> dict[str, Any]:
    latency = {"p50": 0.01, "p99": 0.02}
    loads = {"load_before": (2.0, 0, 0), "load_after": (3.0, 0, 0)}
    maximum = {"rate": 5_000.0, "acknowledged_rate": 6_000.0, "accepted": 10_000} | loads
    phase = {
        "target_rate": 2_500.0, "achieved_rate": 2_400.0, "freshness": latency | {"count": 9},
        "probe_timeouts": 0, "probe_timeout_s": 60.0, "drain_after_load_s": 1.0,
        "lag": {"start": 0.0, "end": 10.0, "slope": 0.1, "grew": False},
    } | loads  # fmt: skip
    return {
        "raw": {
            "kafka_perf_tool": perf or {"rate": 20_000.0, "load": (1.0, 2.0)},
            "kafka_produce": {"rate": 8_000.0},
            "clickhouse_insert": {"rate": 300_000.0},
            "clickhouse_point_query": latency,
            "load": (1.0, 2.0),
        },
        "load": {
            "events": 250_000,
            "requested": 1_000_000,
            "cut_short": cut_short,
            "rate": 1_500.0,
            "publish_rate": 2_000.0,
            "heavy_customer_events": 1_000,
            "load": (2.0, 3.0),
        },
        "api": {
            "maximum": {"identity": maximum, "demo": maximum | {"rate": 6_000.0}},
            "sustained": [phase | {"share": 0.5}, phase | {"share": 0.9}],
            "timeline": {"api": latency, "raw": latency} | loads,
            "satisfaction": {"api": latency, "raw": None} | loads,
        },
        "stages": {"error": "not measured here"},
        "peak_rss_bytes": {"ingest": 100, "kafka": None},
    }


def test_summary_rows_label_a_load_cut_short_with_what_was_loaded() -> None:
    labels = [row.metric for row in summary_rows(_result(cut_short=True))]
    assert "background load (250,000 of 1,000,000 requested demo events)" in labels
    labels = [row.metric for row in summary_rows(_result(cut_short=False))]
    assert "background load (250,000 demo events)" in labels


def test_summary_rows_compare_end_to_end_with_the_perf_tool_and_the_goals() -> None:
    rows = {row.metric: row for row in summary_rows(_result(cut_short=False))}
    realistic = rows["max end-to-end, realistic identifiers (10,000 ev, 500/request)"]
    assert realistic.raw_name == "perf tool"
    assert realistic.raw_ratio == pytest.approx(5_000 / 20_000)
    assert realistic.goal == Goal("at_least", 10_000)
    fresh = rows["  freshness p99 during 50% load"]
    assert fresh.goal is not None and fresh.goal.met(fresh.value)
    assert rows["peak RSS, kafka"].value == 0  # not measurable: shown as 0, not dropped
    assert any(r.startswith("stage costs not measured") for r in rows)


def test_summary_rows_say_when_the_perf_tool_did_not_run() -> None:
    result = _result(cut_short=False, perf={"error": "no kafka-tools jar"})
    rows = {row.metric: row for row in summary_rows(result)}
    assert "Kafka ProducerPerformance not run: no kafka-tools jar" in rows
    realistic = rows["max end-to-end, realistic identifiers (10,000 ev, 500/request)"]
    assert realistic.raw_value == 8_000.0  # the client library's figure stands in, named so


def test_summary_rows_show_the_extras_when_measured() -> None:
    result = _result(cut_short=False)
    assert not [r for r in summary_rows(result) if "SSE" in r.metric]
    result["api"] |= {
        "batched": {"rate": 5_000.0, "acknowledged_rate": 6_000.0, "batch_size": 500},
        "single": {"rate": 100.0},
        "console_first_page": {"p50": 0.05, "p99": 0.2},
        "sse": {"p50": 0.3, "p99": 0.8, "streams": 200, "missing": 0, "repeated": 1},
    }
    rows = {row.metric: row for row in summary_rows(result)}
    assert rows["console first page p99 (profile + 50 entries)"].goal == Goal("at_most", 0.3)
    assert rows["SSE delivery p99 (200 streams, batched load)"].value == 0.8
    assert rows["SSE messages undelivered 30 s after the load / repeated"].value == 1

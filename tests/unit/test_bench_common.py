"""The benchmark's pure helpers: statistics, goals and the results table. No timings."""

from __future__ import annotations

import math

import orjson
import pytest

from bench.common import (
    HEADER,
    Goal,
    Latency,
    Row,
    format_value,
    in_turns,
    parse_peak_rss,
    per_second,
    percentile,
    ratio,
    render_table,
    to_json,
)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_ignores_input_order_and_handles_one_value() -> None:
    assert percentile([9.0, 1.0, 5.0], 50) == 5.0
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_p99_of_a_hundred_samples_is_near_the_largest() -> None:
    samples = [i / 1000 for i in range(1, 101)]
    latency = Latency.of(samples)
    assert latency.count == 100
    assert latency.p50 == pytest.approx(0.0505)
    assert latency.p99 == pytest.approx(0.09901)
    assert latency.max == 0.1
    assert latency.mean == pytest.approx(0.0505)


def test_reads_take_turns_after_one_untimed_call_each() -> None:
    calls: list[str] = []
    times = in_turns({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, runs=3)
    assert calls == ["a", "b"] * 4  # the warm-up round, then three timed ones
    assert {name: len(found) for name, found in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for found in times.values() for t in found)


def test_rates_and_ratios() -> None:
    assert per_second(1000, 0.5) == 2000
    assert math.isinf(per_second(10, 0))
    assert ratio(5.0, 10.0) == 0.5
    assert ratio(5.0, 0.0) is None
    assert ratio(None, 1.0) is None


def test_goals() -> None:
    assert Goal("at_least", 20_000).met(20_000)
    assert not Goal("at_least", 20_000).met(19_999)
    assert Goal("at_most", 0.015).met(0.014)
    assert not Goal("at_most", 0.015).met(0.016)
    assert Goal("at_most", 0.015).text("s") == "≤ 15 ms"
    assert Goal("at_least", 20_000).text("ev/s") == "≥ 20,000 ev/s"


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (23456.7, "ev/s", "23,457 ev/s"),
        (0.0123, "s", "12.3 ms"),
        (2.5, "s", "2.5 s"),
        (512 * 2**20, "bytes", "512 MiB"),
        (3 * 2**30, "bytes", "3.00 GiB"),
        (1200, "count", "1,200"),
    ],
)
def test_format_value(value: float, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown  # type: ignore[arg-type]


def test_row_cells_show_goal_status_and_ratio_to_raw() -> None:
    row = Row("timeline p99", 0.030, "s", Goal("at_most", 0.015), "warehouse", 0.010)
    assert row.cells() == [
        "timeline p99",
        "30 ms",
        "≤ 15 ms (MISSED)",
        "3× warehouse (10 ms)",
        "",
    ]
    assert Row("raw SQLite append", 50_000, "ev/s").cells()[2:] == ["", "", ""]


def test_row_cells_show_the_load_average_before_and_after_its_phase() -> None:
    row = Row("max end-to-end", 900, "ev/s", load=(4.234, 6.0))
    assert row.cells()[-1] == "4.2 → 6.0"
    assert row.as_dict()["load_average"] == (4.234, 6.0)


def test_row_as_dict_is_complete() -> None:
    row = Row("e2e", 25_000, "ev/s", Goal("at_least", 20_000), "raw SQLite", 100_000)
    assert row.as_dict() == {
        "metric": "e2e",
        "value": 25_000,
        "unit": "ev/s",
        "goal": {"kind": "at_least", "target": 20_000},
        "goal_met": True,
        "raw_name": "raw SQLite",
        "raw_value": 100_000,
        "raw_ratio": 0.25,
        "load_average": None,
    }


def test_render_table_aligns_columns() -> None:
    rows = [
        Row("short", 1_000, "ev/s"),
        Row("a much longer metric name", 0.5, "s", Goal("at_most", 1.0)),
    ]
    lines = render_table(rows).splitlines()
    assert lines[0].startswith(HEADER[0])
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 4
    value_column = lines[0].index("value")
    assert lines[2][value_column:].startswith("1,000 ev/s")
    assert lines[3][value_column:].startswith("500 ms")
    assert "≤ 1 s (met)" in lines[3]


def test_parse_peak_rss_reads_vmhwm() -> None:
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
    assert parse_peak_rss(status) == 123456 * 1024
    assert parse_peak_rss("Name:\tpython\n") is None


def test_to_json_writes_missing_measurements_as_null() -> None:
    data = orjson.loads(to_json({"rate": math.inf, "nested": [math.nan, 1.5]}))
    assert data == {"rate": None, "nested": [None, 1.5]}

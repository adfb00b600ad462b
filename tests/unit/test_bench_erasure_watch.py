"""`python -m bench.erasure_watch` runs on a small population and prints what it measured."""

from __future__ import annotations

import re

import pytest

from bench.erasure_watch import main


def test_the_erasure_watch_bench_prints_the_cost_of_each_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--people", "40", "--checks", "100", "--postgres-dsn", ""]) == 0
    out = capsys.readouterr().out
    assert re.search(r"embedded, SQLite file: [\d,]+ customers from 40 people", out), out
    assert re.search(r"each later check \(erased_among\): \d+ µs wall", out), out
    assert re.search(r"1,000 open streams: 333 checks/s, [\d.]+% of one core", out), out
    assert "PostgreSQL: not measured" in out
    # Then checked while another process filed a second population into the same store.
    filing = (
        r"while another process filed [1-9][\d,]* touchpoints \([\d,]+/s\), "
        r"checked as 1,000 open streams ask: [1-9][\d,]* checks"
    )
    assert re.search(filing + r", p50 [\d.]+ ms, p99 [\d.]+ ms", out), out


def test_no_streams_gives_the_filing_rates_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--people", "40", "--checks", "10", "--postgres-dsn", "", "--streams", "0"]) == 0
    out = capsys.readouterr().out
    filed = r"while another process filed [1-9][\d,]* touchpoints \([\d,]+/s\): nobody checking"
    assert re.search(filed, out), out

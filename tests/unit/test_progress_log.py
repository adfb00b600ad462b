"""A progress bar drawn into a log (stderr not a terminal) keeps its counts, rate and ETA whole."""

from __future__ import annotations

import pytest

from cem.progress import progress_bar


def test_a_bar_in_a_log_is_not_cut_at_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("demo: seeding older weeks, newest first", 120_904) as advance:
        advance(120_904)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "120904/120904" in line and "events/s" in line and "ETA" in line, line

"""A `cem up --demo` stopped mid-seeding resumes the same seeding (found by a review: a restart
seeded a history shifted to a new now beside the first, with 16,156 conflicts)."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

from cem import demo
from cem.up import SEEDING, UpOptions, _seeding_anchor


def test_a_seeding_stopped_before_it_ended_resumes_at_its_moment(tmp_path: Path) -> None:
    opts = UpOptions(data_dir=tmp_path, demo=True, demo_customers=50, demo_days=3)
    first, resumed = _seeding_anchor(opts)
    assert not resumed and (tmp_path / SEEDING).exists()
    again, resumed = _seeding_anchor(opts)
    assert (again, resumed) == (first, True)
    other = UpOptions(data_dir=tmp_path, demo=True, demo_customers=60, demo_days=3)
    assert _seeding_anchor(other)[1] is False  # another demo: a seeding of its own


def test_the_same_moment_generates_the_same_events_with_the_same_ids() -> None:
    def ids(now_text: str) -> list[str]:
        rng = random.Random(42)
        population = demo.Population.generate(rng, 40)
        now = datetime.fromisoformat(now_text)
        return [e["event_id"] for e in demo.history(population, rng, now, 2)]

    first = ids("2026-12-06T07:00:00+00:00")
    assert first and first == ids("2026-12-06T07:00:00+00:00")

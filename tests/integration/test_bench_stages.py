"""`python -m bench.stages` on a tiny mix: its table names every stage and both baselines.

Run as its own process, as a user runs it: chdb lets one process open one data path, and this
test process may hold another. No timing is asserted (HOUSE_STYLE): only the table's shape.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.stages import BASELINES, MIXES, pipeline_stages
from cem.projection_set import default_projections

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_the_stage_table_lists_every_stage_of_the_pipeline(tmp_path: Path, mix: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--events", "45", "--batch", "15"]
        + ["--mix", mix, "--profile-top", "5", "--data-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    first_cells = {line[:34].strip() for line in done.stdout.splitlines()}
    groups = [p.name for p in default_projections()]
    expected = {*pipeline_stages(groups), *BASELINES, "total (pipeline)"}
    assert expected <= first_cells, expected - first_cells
    assert f"45 in the {mix} mix" in done.stdout
    assert "load average before:" in done.stdout
    assert "by cumulative time" in done.stdout
    assert list(tmp_path.iterdir()) == []  # the scratch stores are removed


def test_too_small_a_mix_is_refused_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--events", "10", "--batch", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "bench.stages: --events must be at least three batches (--batch)"


def test_the_identity_mix_is_one_history_with_phones_as_people_write_them() -> None:
    from bench.stages import identity_mix

    mix = identity_mix(7, 400, 10)  # ten people make too few events: more are drawn
    assert len(mix) == 400
    assert [e["occurred_at"] for e in mix] == sorted(e["occurred_at"] for e in mix)
    phones = [e["customer"]["phone"] for e in mix if "phone" in e["customer"]]
    assert any(not phone.startswith("+") for phone in phones)  # national, 00, placeholders

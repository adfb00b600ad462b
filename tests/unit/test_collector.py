"""The collector settings of long-running processes (kernel.collector), applied in a child
process so that this test process keeps CPython's defaults."""

from __future__ import annotations

import subprocess
import sys

from kernel.collector import MIDDLE, OLD, YOUNG

CHILD = """
import gc, json
from kernel.collector import settle_collector
before = gc.get_threshold()
thresholds = settle_collector()
frozen = gc.get_freeze_count()
again = settle_collector()
print(json.dumps({"before": before, "after": thresholds, "frozen": frozen, "again": again,
                  "enabled": gc.isenabled()}))
"""


def _child() -> dict[str, object]:
    import json

    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    return dict(json.loads(done.stdout))


def test_a_settled_process_collects_young_objects_less_often_and_skips_its_start_up_heap() -> None:
    result = _child()
    assert result["before"] == [700, 10, 10]  # CPython's defaults, untouched until settled
    assert result["after"] == [YOUNG, MIDDLE, OLD]
    assert YOUNG > 700
    # Everything alive once started (modules, settings, the app) is out of the collector's reach.
    assert isinstance(result["frozen"], int) and result["frozen"] > 1_000
    assert result["again"] == result["after"]  # idempotent
    assert result["enabled"] is True  # cycles are still collected


def test_the_long_running_entry_points_settle_the_collector() -> None:
    # `cem up`, `cem serve` (HTTP and workers) call it once started; a refactor that drops the
    # call would quietly bring the full collections back.
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for module in ("cem/up.py", "cem/serve.py"):
        assert "settle_collector()" in (root / module).read_text(), module

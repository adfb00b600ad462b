"""The collector settings of long-running processes (kernel.collector), applied in a child
process so that this test process keeps CPython's defaults."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

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


class _Calls(list[str]):
    def note(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: self.append(name)


def test_cem_up_settles_the_collector_once_started_and_before_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cem import up

    calls = _Calls()
    platform = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(accounts=None)),
        keys=None,
        warehouse=None,
        projections=(),
        stop=calls.note("stopped"),
    )
    monkeypatch.setattr(up, "ChdbWarehouse", lambda *a, **k: None)
    monkeypatch.setattr(up, "build", lambda *a, **k: calls.note("built")() or platform)
    monkeypatch.setattr(up, "ensure_tables", lambda *a: None)
    monkeypatch.setattr(up, "refuse_writes", calls.note("read-only"))
    monkeypatch.setattr(up, "announce_when_listening", lambda *a: None)
    monkeypatch.setattr(up.signal, "signal", lambda *a: None)  # this process keeps its handlers
    monkeypatch.setattr(up, "settle_collector", calls.note("settled"))
    monkeypatch.setattr(up.uvicorn, "run", calls.note("serving"))
    up.run(up.UpOptions(data_dir=tmp_path, read_only=True))
    assert calls == ["built", "read-only", "settled", "serving", "stopped"]


def test_cem_serve_settles_the_collector_of_a_worker_and_of_an_http_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    from cem import serve, workers

    calls = _Calls()
    monkeypatch.setattr(serve, "settle_collector", calls.note("settled"))
    monkeypatch.setattr(workers, "run_filing", calls.note("filing"))
    serve.run_worker_service("filing", None, None, None)
    assert calls == ["settled", "filing"]

    calls.clear()
    service = SimpleNamespace(
        app=SimpleNamespace(router=SimpleNamespace(lifespan_context=None)),
        start=calls.note("started"),
        close=calls.note("closed"),
    )
    monkeypatch.setattr(serve, "close_on_shutdown", lambda service: None)
    monkeypatch.setattr(uvicorn, "run", calls.note("serving"))
    serve.serve_http(service, "127.0.0.1", 0)  # type: ignore[arg-type]
    assert calls == ["started", "settled", "serving", "closed"]

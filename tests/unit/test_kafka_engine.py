"""The local Kafka engine's cluster ids (deploy/kafka_engine.py)."""

from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def kafka_engine() -> ModuleType:
    # The engine scripts import each other as top-level modules, as they run from deploy/.
    sys.path.insert(0, str(DEPLOY))
    try:
        return importlib.import_module("kafka_engine")
    finally:
        sys.path.remove(str(DEPLOY))


def test_cluster_ids_are_16_random_bytes_never_read_as_an_option() -> None:
    ids = [kafka_engine().cluster_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert not any(i.startswith("-") for i in ids)  # 1 in 64 would, drawn naively
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)


def test_a_python_without_kafka_python_is_told_before_any_broker_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Found by a review: under a Python without kafka-python the probe failed with an
    ImportError traceback after Java had started, and left the broker running."""
    engine = kafka_engine()
    monkeypatch.setitem(sys.modules, "kafka", None)  # what `import kafka` then raises: ImportError
    spawned: list[object] = []
    monkeypatch.setattr(engine, "spawn", lambda *args, **kwargs: spawned.append(args))
    with pytest.raises(engine.EngineError, match="kafka-python is not installed for"):
        engine.start_kafka(engine.State(tmp_path))
    assert spawned == []

"""The local Kafka engine's cluster ids (deploy/kafka_engine.py)."""

from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path
from types import ModuleType

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

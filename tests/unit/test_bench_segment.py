"""The Segment bench workload (bench/segment.py) and its results rows: no server, no timings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench.embedded import segment_rows
from bench.segment import segment_bodies
from schemas.validate import accept
from services.ingest.segment_config import SEGMENT_BATCH_BYTES
from services.ingest.segment_mapping import Mapped, map_message
from services.ingest.segment_router import batch_of


def test_the_workload_is_valid_segment_batches_within_the_limit() -> None:
    bodies, last = segment_bodies("t", 1_203, 500, clients=3, customers=10)
    assert [len(b) for b in bodies] == [1, 1, 1]  # 401 events per client, 500 per request
    seen: dict[str, str] = {}
    now = datetime.now(UTC)
    for body in (b for client in bodies for b in client):
        assert len(body) <= SEGMENT_BATCH_BYTES
        messages, defaults = batch_of(json.loads(body))
        for message in messages:
            mapped = map_message(message, None, "bench", now, {}, defaults)
            assert isinstance(mapped, Mapped), mapped
            accept(mapped.event, "bench", now)
            seen[message["userId"]] = message["messageId"]
    assert seen == last and len(last) == 10


def test_the_segment_row_has_80_percent_of_the_native_batch_as_its_goal() -> None:
    native = {"rate": 1_000.0, "acknowledged_rate": 2_000.0}
    segment = {"rate": 790.0, "acknowledged_rate": 1_900.0, "batch_size": 500}
    row, acked = segment_rows({"batched": native, "segment_batched": segment})
    assert row.goal is not None and row.goal.target == 800.0 and not row.goal.met(row.value)
    assert (row.raw_value, row.raw_ratio) == (1_000.0, 0.79)
    assert acked.raw_value == 2_000.0
    assert segment_rows({"batched": native}) == []

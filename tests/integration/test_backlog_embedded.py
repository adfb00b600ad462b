"""`cem up` lets bulk requests in by its own runners' progress (services/ingest/backlog.py): the
gate reads the SQLite log's offsets, waits while the runners are behind, and does not wait for
runners that stopped. The distributed ingest reads Kafka's group offsets the same way
(tests/e2e/test_backlog.py)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.adapters.memory_keys import MemoryKeyStore
from cem.bootstrap import Platform, build
from cem.runner import filing_runner
from kernel.filings import FILING_STAGE
from kernel.settings import IngestSettings
from kernel.telemetry import telemetry_of
from services.ingest.backlog import BacklogGate, Reading
from tests.integration.test_unified_history import Client, stop_keeping_warehouse, touch

LIMIT = 30
STALL_S = 3.0


@pytest.fixture
def platform(tmp_path: Path, warehouse: ChdbWarehouse) -> Iterator[Platform]:
    settings = IngestSettings(
        data_dir=tmp_path / "data",
        identity="eventsourced",
        backlog_limit=LIMIT,
        backlog_bulk_events=20,
        backlog_stall_s=STALL_S,
    )
    running = build(settings, warehouse=warehouse, keys=MemoryKeyStore())
    yield running
    stop_keeping_warehouse(running)


def chats(n: int) -> list[dict[str, Any]]:
    email = f"{uuid.uuid4().hex[:10]}@shop.es"
    return [
        touch("message.received", "chat", {"email": email}, i, {"text": "hola"}) for i in range(n)
    ]


def bulk(api: Client, n: int) -> None:
    answer = api.call("POST", "/v1/events", "ingest", json={"events": chats(n)})
    assert answer.status_code == 200 and answer.json()["accepted"] == n, answer.text


def gate_of(platform: Platform) -> BacklogGate:
    gate = getattr(platform.app.state, "backlog_gate", None)
    assert isinstance(gate, BacklogGate)
    return gate


def test_without_runners_started_there_is_nothing_to_wait_for(platform: Platform) -> None:
    api = Client(platform)
    for _ in range(3):
        bulk(api, 25)  # 75 events behind, over the limit, and never processed
    assert getattr(platform.app.state, "backlog_gate", None) is None


def test_a_bulk_request_waits_until_the_filing_stage_has_caught_up(platform: Platform) -> None:
    platform.start()
    # A stall far longer than this test takes: under load the seconds between the first
    # request's backlog read and the check below could pass the 3 s one, letting the second in.
    gate_of(platform).stall_s = 60.0
    api = Client(platform)
    [filing] = [r for r in platform.runners if r.stage == FILING_STAGE]
    filing.stop()
    bulk(api, 40)  # let in: nothing was behind; now 40 are, over the limit
    second = threading.Thread(target=bulk, args=(api, 25))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting: the filing stage is behind and (for now) within the stall
    assert gate_of(platform).read().waiting == 40
    again = filing_runner(platform.log, platform.warehouse, platform.filer, platform.decoder)
    platform.runners.append(again)
    again.start()
    second.join(30)
    assert not second.is_alive()  # let in once the 40 were filed and projected
    api.settle()
    assert gate_of(platform).read() == Reading(0, gate_of(platform).read().done)
    assert telemetry_of(platform.app).observations("cem_ingest_backlog_wait_seconds") == 2


def test_runners_that_stopped_are_not_waited_for_after_the_stall(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    platform.start()
    api = Client(platform)
    api.settle()
    for runner in platform.runners:
        runner.stop()
    bulk(api, 40)  # 40 behind now: over the limit, and nothing moves
    with caplog.at_level(logging.WARNING, logger="services.ingest.backlog"):
        bulk(api, 25)  # waits the stall, then is let in
        bulk(api, 25)  # at once while it stays stalled
    assert gate_of(platform).read().waiting == 90
    assert caplog.text.count("filing committed nothing for 3 s with 40 events waiting") == 1

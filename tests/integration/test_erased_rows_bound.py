"""The main process's `erased-rows` group (`cem.erasure.delete_erased_rows`) deletes only what
an erasure found: rows of events filed after the erasure survive when the group reads it again
(a redelivery) or for the first time over an old log, on chdb and on a ClickHouse server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from cem.adapters.memory_log import MemoryLog
from cem.adapters.memory_vault import MemoryKeyVault
from cem.erasure import CustomerEraser, delete_erased_rows
from cem.runner import ensure_tables, file_once
from kernel.ports import Warehouse
from kernel.processing import decode_value
from schemas.families import filed_subject
from schemas.validate import accept
from services.query_api.routers.erasure import raw_erasure
from tests.integration.test_stream_redelivery import PROJECTIONS, TENANT, chat, project, publish

PLATFORM_KEY = b"p" * 32


def timeline(warehouse: Warehouse, customer: str) -> set[str]:
    rows = warehouse.select(
        "SELECT event_id FROM customer_timeline WHERE customer_id = {c:String}", {"c": customer}
    )
    return {str(r["event_id"]) for r in rows}


def test_a_key_used_again_after_its_erasure_keeps_its_new_rows(any_warehouse: Warehouse) -> None:
    # CEM_IDENTITY=rule in `cem up`'s two processes: the filing process erases without a
    # warehouse; the main process's group reads the log for the first time after the customer
    # key came back (or reads the erasure again after a crash before its commit).
    log, vault = MemoryLog(partitions=2), MemoryKeyVault(PLATFORM_KEY)
    ensure_tables(any_warehouse, [PROJECTIONS])
    customer = f"c-{uuid.uuid4().hex[:8]}"
    before = chat(customer, "mi pedido 4471 no ha llegado")
    named = filed_subject(customer)
    assert named is not None
    erasure = accept(raw_erasure(named, "GDPR request", "key-admin", datetime.now(UTC)), TENANT,
                     datetime.now(UTC))[0]  # fmt: skip
    after = chat(customer, "hola otra vez")
    publish(log, before, erasure)
    filing = CustomerEraser(None, vault, PLATFORM_KEY, None, None)
    while file_once(log, None, None, timeout_s=0, eraser=filing):
        pass
    publish(log, after)  # the same key, after the erasure
    while file_once(log, None, None, timeout_s=0, eraser=filing):
        pass
    project(log, any_warehouse)
    assert timeline(any_warehouse, customer) == {str(e.event_id) for e in (before, erasure, after)}
    main = CustomerEraser(None, vault, PLATFORM_KEY, None, any_warehouse)
    while delete_erased_rows(log, main, decode_value, timeout_s=0):
        pass
    assert timeline(any_warehouse, customer) == {str(erasure.event_id), str(after.event_id)}

"""What an erasure's answer says of the log (`log_sealed`): sealed only when sealing is on, no
identity store was kept in clear, and none of the log's first touchpoints is in clear (a log
written before sealing was the default keeps those; a review found `log_sealed: true` there, on
a directory `migrate-ids` had copied before it sealed, and with no identity store)."""

from __future__ import annotations

from pathlib import Path

import orjson

from cem.adapters.sqlite_log import SqliteLog
from cem.adapters.sqlite_snapshot import first_values
from cem.sealing import log_sealed
from kernel.ports import TOUCHPOINTS_TOPIC, Record
from kernel.settings import CoreSettings

CLEAR = orjson.dumps({"type": "message.received", "customer": {"email": "ana@shop.es"}})
SEALED = orjson.dumps({"type": "message.received", "customer": {}, "sealed": {"k": "x"}})
ERASURE = orjson.dumps({"type": "customer.erased", "customer": {"customer_id": "c_x"}})


def test_a_first_touchpoint_in_clear_says_the_log_is_not_sealed(tmp_path: Path) -> None:
    unset = CoreSettings(data_dir=tmp_path)
    assert log_sealed(unset, None, [])  # a new log: every event sealed from the first
    assert log_sealed(unset, None, [SEALED, ERASURE])  # an erasure's own event is never sealed
    assert not log_sealed(unset, None, [SEALED, CLEAR])  # a partition begun in clear
    assert not log_sealed(CoreSettings(data_dir=tmp_path, seal_personal_data=False), None, [])


def test_first_values_reads_each_partitions_first_record(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    assert first_values(path, TOUCHPOINTS_TOPIC) == []  # no log yet
    log = SqliteLog(path, partitions=2)
    try:  # `a`'s partition begins in clear; whichever partition `b` is in, it begins sealed
        log.append(TOUCHPOINTS_TOPIC, [Record(b"a", CLEAR, ()), Record(b"a", SEALED, ())])
        log.append(TOUCHPOINTS_TOPIC, [Record(b"b", SEALED, ())])
    finally:
        log.close()
    found = first_values(path, TOUCHPOINTS_TOPIC)
    assert found.count(CLEAR) == 1 and set(found) <= {CLEAR, SEALED}
    assert not log_sealed(CoreSettings(data_dir=tmp_path), None, found)

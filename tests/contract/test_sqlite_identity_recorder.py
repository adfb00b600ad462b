"""The embedded identity store's recorder inserts a batch's events in one `executemany`; the
notification ids it returns are the ones the library's own recorder (one insert per event) gives
and `select_notifications` reads back."""

from __future__ import annotations

from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from cem.adapters.sqlite_identity_store import SqliteIdentityRecorder


def _events(batch: int, count: int) -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=uuid5(NAMESPACE_URL, f"aggregate-{batch}-{i % 3}"),
            originator_version=i // 3 + 1,
            topic="tests:Event",
            state=f'{{"batch":{batch},"i":{i}}}'.encode(),
        )
        for i in range(count)
    ]


def _recorder(kind: type[SQLiteApplicationRecorder], path: Path) -> SQLiteApplicationRecorder:
    recorder = kind(SQLiteDatastore(str(path)))
    recorder.create_table()
    return recorder


def test_a_batch_gets_the_notification_ids_the_library_gives_one_insert_at_a_time(
    tmp_path: Path,
) -> None:
    ours = _recorder(SqliteIdentityRecorder, tmp_path / "ours.sqlite")
    theirs = _recorder(SQLiteApplicationRecorder, tmp_path / "theirs.sqlite")
    for batch, count in enumerate([5, 1, 0, 7]):
        events = _events(batch, count)
        assert ours.insert_events(events) == theirs.insert_events(events)
    read = ours.select_notifications(start=1, limit=100)
    assert [n.id for n in read] == list(range(1, 14))
    assert [(n.originator_id, n.originator_version, n.state) for n in read] == [
        (e.originator_id, e.originator_version, e.state)
        for batch, count in enumerate([5, 1, 0, 7])
        for e in _events(batch, count)
    ]


def test_a_conflicting_batch_inserts_none_of_its_events(tmp_path: Path) -> None:
    ours = _recorder(SqliteIdentityRecorder, tmp_path / "ours.sqlite")
    first = _events(0, 4)
    assert ours.insert_events(first) == [1, 2, 3, 4]
    # A new event, then one at a version another writer took first.
    clash = [*_events(1, 1), first[0]]
    with pytest.raises(IntegrityError):
        ours.insert_events(clash)
    assert [n.id for n in ours.select_notifications(start=1, limit=100)] == [1, 2, 3, 4]
    assert ours.insert_events(_events(2, 2)) == [5, 6]

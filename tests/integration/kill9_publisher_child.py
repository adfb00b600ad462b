"""Child process of test_sqlite_log_kill9: publishes numbered events until it is killed.

Usage: python kill9_publisher_child.py <log path> <first sequence number> <batch size>

After each `publish` returns, it prints one line per event, `<event_id> <status>`, and flushes:
that line is the acknowledgement a client would have received.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher
from kernel.partitioning import partition_key
from kernel.ports import Outgoing, Record

TENANT = "acme"
PARTITIONS = 6


def event(seq: int) -> Outgoing:
    event_id = f"evt-{seq:07d}"
    value = f'{{"event_id":"{event_id}","pad":"{"x" * 560}"}}'.encode()
    key = partition_key(TENANT, f"cust-{seq % 37}")
    return Outgoing(TENANT, event_id, hashlib.sha256(value).hexdigest(), Record(key, value))


def main(path: Path, seq: int, batch: int) -> None:
    publisher = SqlitePublisher(SqliteLog(path, PARTITIONS))
    while True:
        events = [event(s) for s in range(seq, seq + batch)]
        statuses = publisher.publish(events)
        sys.stdout.write(
            "".join(f"{e.event_id} {s}\n" for e, s in zip(events, statuses, strict=True))
        )
        sys.stdout.flush()
        seq += batch


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))

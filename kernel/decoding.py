"""Decode each log record once per process, however many consumer groups read it.

In the embedded mode every consumer group runs in one process and reads the same records: each
used to parse the same bytes into the same `Event` again. An `Event` is frozen and projections are
pure, so the groups can share one decoded object. The first group to read a record decodes it;
the others take it from a bounded cache while it is still there, and decode it again (the same
result) once it has been evicted. A cached event is used only for the very bytes it was decoded
from, so a log rebuilt under the same positions can never be read through a stale entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from kernel.ports import Consumed
from kernel.sealing import EventOpener, decode_opened
from schemas.envelope import Event

# Records kept decoded: a few batches of 5,000, so the group that reads second finds them, while
# the memory held stays bounded (an event is a few kilobytes).
CACHE_SIZE = 20_000


class SharedDecoder:
    """A `kernel.processing.Decode` shared by every runner of a process. Thread-safe."""

    def __init__(self, size: int = CACHE_SIZE, opener: EventOpener | None = None) -> None:
        self.size = size
        # Sealed records (personal fields under their subject's key) are opened first.
        self.opener = opener
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, int, int], tuple[bytes, Event]] = OrderedDict()

    def __call__(self, record: Consumed) -> Event:
        position = (record.topic, record.partition, record.offset)
        with self._lock:
            found = self._cache.get(position)
        if found is not None and found[0] == record.value:
            return found[1]
        # Raises on bad bytes (or a sealed blob that does not open): nothing is cached then.
        event = decode_opened(record.value, self.opener)
        with self._lock:
            self._cache[position] = (record.value, event)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return event

    def forget(self) -> None:
        """Drop every decoded event: after an erasure (`cem.erasure`) a record is opened again,
        without the destroyed keys, rather than handed out as it was opened before."""
        with self._lock:
            self._cache.clear()

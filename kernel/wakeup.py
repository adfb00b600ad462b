"""A wake-up call from worker threads to coroutines on event loops.

The embedded platform runs its projections in threads and serves live streams on the app's event
loop in the same process. A stream hub that only polled the warehouse would show a stored event up
to one poll interval late; instead the runner that stored new arrivals calls `notify()` and the hub,
waiting in `wait(timeout_s)`, polls at once. The poll interval stays as the fallback (and is all
there is where the writer runs in another process: the distributed workers).
"""

from __future__ import annotations

import asyncio
import threading


class Wakeup:
    """`notify()` from any thread wakes every coroutine waiting in `wait()` on any loop.

    A notification that comes while nobody waits is kept until the next `wait()` returns at once,
    so an arrival stored between two polls is never left for a whole interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self._pending: set[asyncio.AbstractEventLoop] = set()

    def notify(self) -> None:
        with self._lock:
            waiting = list(self._events.items())
            self._pending.update(loop for loop, _ in waiting)
        for loop, event in waiting:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed: nothing waits there any more
                with self._lock:
                    self._events.pop(loop, None)
                    self._pending.discard(loop)

    async def wait(self, timeout_s: float) -> bool:
        """Until a notification or `timeout_s`; True when notified (possibly before the call)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            event = self._events.setdefault(loop, asyncio.Event())
            if loop in self._pending:
                self._pending.discard(loop)
                event.clear()
                return True
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        with self._lock:
            self._pending.discard(loop)
            event.clear()
        return True

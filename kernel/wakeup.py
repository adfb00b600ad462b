"""A wake-up call from worker threads to coroutines on event loops.

The embedded platform runs its projections in threads and serves live streams on the app's event
loop in the same process. A stream hub that only polled the warehouse would show a stored event up
to one poll interval late; instead the runner that stored new arrivals calls `notify()` and the hub,
waiting in `wait(seen, timeout_s)`, polls at once. The poll interval stays as the fallback (and is
all there is where the writer runs in another process: the distributed workers).

Notifications are counted: a waiter reads the count (`seen()`) before it polls and waits for it to
move, so a notification that came while it was polling (or before it ever waited) ends its next
wait at once: none is lost, and none is used up by another waiter. Only waiters actually waiting
are woken; with nobody waiting, `notify()` only counts.
"""

from __future__ import annotations

import asyncio
import threading


class Wakeup:
    """`notify()` from any thread ends the `wait()` of every coroutine waiting, on any loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def seen(self) -> int:
        """The notifications so far: read before polling, then `wait(seen, ...)`."""
        with self._lock:
            return self._count

    def notify(self) -> None:
        with self._lock:
            self._count += 1
            waiting = list(self._waiting)
        for loop, event in waiting:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop has closed: that waiter is gone
                with self._lock:
                    self._waiting.discard((loop, event))

    async def wait(self, seen: int, timeout_s: float) -> bool:
        """Until a notification after `seen` (possibly already made) or `timeout_s`; True when
        there was one."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self._count != seen:
                return True
            self._waiting.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiting.discard(waiter)
        return self.seen() != seen

    def waiters(self) -> int:
        """How many coroutines wait now (for tests and diagnostics)."""
        with self._lock:
            return len(self._waiting)

"""kernel.wakeup: a notification from a thread ends a coroutine's wait; one made while the waiter
was busy (or before it ever waited) ends its next wait at once; nobody waiting, nothing is woken."""

from __future__ import annotations

import asyncio
import threading

from kernel.wakeup import Wakeup


def _notify_from_a_thread(wakeup: Wakeup) -> None:
    thread = threading.Thread(target=wakeup.notify)
    thread.start()
    thread.join()


def test_a_notification_from_another_thread_ends_the_wait() -> None:
    wakeup = Wakeup()

    async def scenario() -> bool:
        waiting = asyncio.ensure_future(wakeup.wait(wakeup.seen(), 3600))
        while wakeup.waiters() == 0:  # the coroutine is inside its wait
            await asyncio.sleep(0)
        _notify_from_a_thread(wakeup)
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(scenario()) is True
    assert wakeup.waiters() == 0


def test_a_notification_while_the_waiter_was_busy_ends_its_next_wait_at_once() -> None:
    wakeup = Wakeup()

    async def scenario() -> list[bool]:
        seen = wakeup.seen()  # read before "polling"
        _notify_from_a_thread(wakeup)  # stored while it polls; nobody waits yet
        first = await asyncio.wait_for(wakeup.wait(seen, 3600), 10)
        second = await wakeup.wait(wakeup.seen(), 0.01)  # nothing new since
        return [first, second]

    assert asyncio.run(scenario()) == [True, False]


def test_two_waiters_are_both_woken_by_one_notification() -> None:
    wakeup = Wakeup()

    async def scenario() -> list[bool]:
        seen = wakeup.seen()
        both = [asyncio.ensure_future(wakeup.wait(seen, 3600)) for _ in range(2)]
        while wakeup.waiters() < 2:
            await asyncio.sleep(0)
        _notify_from_a_thread(wakeup)
        return list(await asyncio.wait_for(asyncio.gather(*both), 10))

    assert asyncio.run(scenario()) == [True, True]


def test_with_nobody_waiting_a_notification_only_counts() -> None:
    wakeup = Wakeup()
    asyncio.run(wakeup.wait(wakeup.seen(), 0.01))  # a waiter that timed out, on a loop now closed
    before = wakeup.seen()
    wakeup.notify()
    assert wakeup.waiters() == 0 and wakeup.seen() == before + 1

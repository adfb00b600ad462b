"""kernel.wakeup: a notification from a thread wakes a coroutine, and one that came while nobody
waited is not lost."""

from __future__ import annotations

import asyncio
import threading

from kernel.wakeup import Wakeup


def test_a_notification_from_another_thread_ends_the_wait() -> None:
    wakeup = Wakeup()

    async def scenario() -> bool:
        await wakeup.wait(0)  # registers this loop
        waiting = asyncio.ensure_future(wakeup.wait(3600))
        await asyncio.sleep(0)
        thread = threading.Thread(target=wakeup.notify)
        thread.start()
        thread.join()
        return await asyncio.wait_for(waiting, 10)

    assert asyncio.run(scenario()) is True


def test_a_notification_between_waits_makes_the_next_wait_return_at_once() -> None:
    wakeup = Wakeup()

    async def scenario() -> list[bool]:
        first = await wakeup.wait(0)  # nothing yet: times out, the loop is now known
        wakeup.notify()  # while nobody waits (the hub is polling)
        second = await asyncio.wait_for(wakeup.wait(3600), 10)
        third = await wakeup.wait(0)  # that notification was used up
        return [first, second, third]

    assert asyncio.run(scenario()) == [False, True, False]


def test_a_closed_loop_is_forgotten() -> None:
    wakeup = Wakeup()
    asyncio.run(wakeup.wait(0))  # that loop then closes
    wakeup.notify()  # no error, and nothing left for it
    assert asyncio.run(wakeup.wait(0)) is False

"""A customer's live stream tells the page when the customer is erased while it is open
(`services/query_api/routers/stream._erasure_watch`, `CustomerStream.erased`): which erasures count,
a store that fails for a while, and nothing lost while identity is read."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.identity import IdentityResolver
from services.query_api.routers.stream import _erasure_watch
from services.query_api.stream import CustomerStream, StreamHub
from tests.identity_memory import memory_resolver, resolving
from tests.unit.test_customer_stream import CUSTOMER, TENANT, ArrivalsTwin, take


@pytest.fixture
def identity() -> Iterator[IdentityResolver]:
    resolver = memory_resolver()
    yield resolver
    resolver.close()


def app_with(identity: Any) -> Any:
    """A request as the route gets it: only its app's identity is read."""
    return types.SimpleNamespace(app=types.SimpleNamespace(state=types.SimpleNamespace(identity=identity)))  # fmt: skip


def erase(identity: IdentityResolver, customer_id: str) -> None:
    identity.erase_customer("acme", customer_id, "asked", "admin", str(uuid.uuid4()), lambda k, v: v)  # fmt: skip


def customers(identity: IdentityResolver, *emails: str) -> list[str]:
    resolve = resolving(identity, "web", datetime(2026, 1, 1, tzinfo=UTC))
    return [resolve(email=email) for email in emails]


def watched(
    hub: StreamHub, erased: Callable[[], bool] | None, keep_alive_s: float, check_s: float
) -> AsyncIterator[bytes]:
    """The messages of a fresh stream of CUSTOMER that asks `erased` every `check_s`."""
    stream = CustomerStream(
        hub, TENANT, [CUSTOMER], None, keep_alive_s=keep_alive_s, erased=erased,
        erasure_check_s=check_s,
    )  # fmt: skip
    return stream.messages()


def test_a_customer_erased_after_the_stream_opened_is_news(identity: IdentityResolver) -> None:
    [ines] = customers(identity, "ines.ibanez@gmail.com")
    watch = _erasure_watch(app_with(identity), "acme", [ines])
    assert watch is not None and watch() is False
    erase(identity, ines)
    assert watch() is True


def test_a_live_customer_merged_into_an_erased_one_is_not_told_it_was_erased(
    identity: IdentityResolver,
) -> None:
    andrea, carlos = customers(identity, "andrea.alba@gmail.com", "carlos.cano@gmail.com")
    erase(identity, andrea)
    watch = _erasure_watch(app_with(identity), "acme", [carlos])
    assert watch is not None
    identity.merge("acme", andrea, carlos, "by mistake", "admin")
    assert watch() is False  # Carlos is live: the erasure did not take him
    # A page opened on the group since knows Andrea was erased: not news either.
    group = identity.members("acme", andrea)
    since = _erasure_watch(app_with(identity), "acme", list(group))
    assert since is not None and since() is False  # however often it reconnects


def test_a_member_split_off_then_erased_is_news_to_the_page_that_showed_it(
    identity: IdentityResolver,
) -> None:
    sara, ana = customers(identity, "sara.soto@gmail.com", "ana.arias@gmail.com")
    identity.merge("acme", sara, ana, "same person", "admin")
    members = list(identity.members("acme", sara))
    watch = _erasure_watch(app_with(identity), "acme", members)
    identity.split("acme", sara, ana, "not the same", "admin")
    erase(identity, ana)
    assert watch is not None and watch() is True


def test_a_stream_opened_after_the_erasure_is_told_at_once(identity: IdentityResolver) -> None:
    # Erased between the page's first read and its stream, or while a browser was away: its
    # rows are still there until the warehouse deletes them, and the page showed them.
    [ines] = customers(identity, "ines.ibanez@gmail.com")
    erase(identity, ines)
    again = _erasure_watch(app_with(identity), "acme", [ines])
    assert again is not None and again() is True


def test_without_identity_there_is_nothing_to_watch() -> None:
    assert _erasure_watch(app_with(None), "acme", ["c1"]) is None


def test_a_store_that_fails_for_a_while_neither_ends_the_stream_nor_tells_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = {"n": 0}

    class Flaky:
        def erased_before_merge(self, tenant_id: str, members: list[str]) -> set[str]:
            return set()

        def erased_among(self, tenant_id: str, ids: list[str]) -> set[str]:
            calls["n"] += 1
            if 1 < calls["n"] < 5:
                raise ConnectionError("identity store unavailable")
            return set()

    watch = _erasure_watch(app_with(Flaky()), TENANT, [CUSTOMER])
    assert watch is not None
    assert [watch() for _ in range(5)] == [False] * 5
    assert len([r for r in caplog.records if "could not read" in r.message]) == 1  # once


def test_nothing_arriving_while_identity_is_read_is_lost() -> None:
    """The keep-alive moves the client's cursor to the hub's watermark: an arrival the hub
    queued while the erasure check was awaited must be delivered, not passed over."""
    twin = ArrivalsTwin()
    twin.add(0, 0)
    added = []
    closing = threading.Event()

    def slow_check() -> bool:
        if not closing.is_set():
            added.append(twin.add(0, len(added) + 1))  # arrives during the read
        time.sleep(0.03)
        return False

    async def scenario() -> set[str]:
        hub = StreamHub(twin, poll_s=0.005)  # type: ignore[arg-type]
        messages = watched(hub, slow_check, keep_alive_s=0.5, check_s=0.1)
        await anext(messages), await anext(messages)
        seen: set[str] = set()
        end, cap = time.monotonic() + 2.0, time.monotonic() + 30.0
        while (time.monotonic() < end or len(added) < 5) and time.monotonic() < cap:
            message = (await anext(messages)).decode()
            seen.update(re.findall(r'"event_id":"([^"]+)"', message))
        closing.set()
        wanted = {a.event_id for a in added}  # delivered sooner or later, however slow the loop
        while wanted - seen and time.monotonic() < cap:
            message = (await anext(messages)).decode()
            seen.update(re.findall(r'"event_id":"([^"]+)"', message))
        await messages.aclose()
        return wanted - seen

    lost = asyncio.run(scenario())
    assert len(added) >= 5  # checked again and again, keep-alives among them
    assert lost == set()


@pytest.mark.parametrize("is_watched", [False, True])
def test_an_arrival_dispatched_as_the_keep_alive_wait_times_out_is_delivered(
    is_watched: bool,
) -> None:
    # The timed-out wait awaits its cancelled read: the hub may queue a batch and move its
    # watermark past it meanwhile. The keep-alive must not move the cursor over it.
    twin = ArrivalsTwin()
    twin.add(0, 0)

    async def scenario() -> set[str]:
        hub = StreamHub(twin, poll_s=100)  # type: ignore[arg-type]
        check = (lambda: False) if is_watched else None
        messages = watched(hub, check, keep_alive_s=0.5, check_s=0.5)
        await anext(messages), await anext(messages)
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = asyncio.ensure_future(anext(messages))
        # The loop busy across the wait's deadline; the hub dispatches as the wait times out.
        loop.call_at(start + 0.4, lambda: time.sleep(0.3))
        loop.call_at(start + 0.55, lambda: hub.dispatch([twin.add(0, 1)]))
        out = [(await pending).decode()]
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            out.append((await asyncio.wait_for(anext(messages), 10)).decode())
        await messages.aclose()
        await hub.stop()
        return {e for m in out for e in re.findall(r'"event_id":"([^"]+)"', m)}

    assert "e-0-1" in asyncio.run(scenario())


def test_a_group_identity_does_not_know_is_watched_without_an_error(
    identity: IdentityResolver,
) -> None:
    # Events keyed by an id identity never linked: the timeline shows them; nothing to erase.
    watch = _erasure_watch(app_with(identity), "acme", ["crm-unknown-to-identity"])
    assert watch is not None and watch() is False


def test_a_customer_erased_while_the_stream_is_open_is_told_once_and_the_stream_ends() -> None:
    twin = ArrivalsTwin()
    twin.add(0, 0)
    erased = threading.Event()
    asked: list[float] = []

    def was_erased() -> bool:
        asked.append(0.0)
        return erased.is_set()

    async def scenario() -> list[str]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        messages = watched(hub, was_erased, keep_alive_s=3600, check_s=0.02)
        await anext(messages), await anext(messages)  # the retry, then where it starts
        new = twin.add(0, 1)
        [(_, event_id)] = await take(messages, 1)  # live as before, while not erased
        assert event_id == new.event_id
        erased.set()
        told = [m.decode() async for m in messages]  # ends by itself
        return told

    told = asyncio.run(scenario())
    assert len(told) == 1 and "event: erased" in told[0] and "data: {}" in told[0], told
    assert asked  # an identity read, in a thread


class SignOutWhileReading(ArrivalsTwin):
    """Signs the person out while the stream reads the entries of `e-0-2` (a review found the
    entry sent after a check made before that read)."""

    def __init__(self, signed_in: threading.Event) -> None:
        super().__init__()
        self.signed_in = signed_in

    def select(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        if "customer_timeline" in sql and "e-0-2" in (params or {}).values():
            self.signed_in.clear()
        return super().select(sql, params)


@pytest.mark.parametrize("while_reading", [False, True])
def test_a_stream_whose_credential_no_longer_holds_ends_before_its_next_delivery(
    while_reading: bool,
) -> None:
    # Signing out (or a revoked key) left an open stream sending the customer's new touchpoints
    # to whoever held it (found by a browser review): asked once the entries are read, it ends.
    signed_in = threading.Event()
    signed_in.set()
    twin = SignOutWhileReading(signed_in) if while_reading else ArrivalsTwin()
    twin.add(0, 0)

    async def scenario() -> tuple[str, list[str]]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        stream = CustomerStream(
            hub, TENANT, [CUSTOMER], None, keep_alive_s=3600, erasure_check_s=3600,
            authorised=signed_in.is_set,
        )  # fmt: skip
        messages = stream.messages()
        await anext(messages), await anext(messages)  # the retry, then where it starts
        twin.add(0, 1)
        [(_, shown)] = await take(messages, 1)  # live while signed in
        if not while_reading:
            signed_in.clear()
        twin.add(0, 2)  # after signing out, or while its entry is read: not to be sent
        rest: list[str] = []

        async def drain() -> None:
            rest.extend([m.decode() async for m in messages])

        try:
            await asyncio.wait_for(drain(), 10)  # ends by itself
        except TimeoutError:
            rest.append("still open")
        await hub.stop()
        return shown, rest

    shown, rest = asyncio.run(scenario())
    assert shown == "e-0-1"
    assert not any("e-0-2" in m or m == "still open" for m in rest), rest


def test_a_session_signed_out_or_expired_no_longer_authorises_what_it_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cem.adapters.memory_users import MemoryUserStore
    from kernel import auth
    from kernel.accounts import SESSION_LIFETIME, Accounts
    from kernel.clock import FixedClock

    monkeypatch.setattr(auth, "STILL_AUTHORISED_S", 0.0)  # every ask reads the store
    clock = FixedClock(datetime(2026, 12, 7, tzinfo=UTC))
    accounts = Accounts(MemoryUserStore(), clock)
    accounts.create("acme", "agent", "ana@example.com", "a long enough password")

    def request_of(secret: str) -> Any:
        app = types.SimpleNamespace(state=types.SimpleNamespace(accounts=accounts, keys=None))
        return types.SimpleNamespace(
            app=app, headers={}, cookies={auth.SESSION_COOKIE: secret}, method="GET",
            state=types.SimpleNamespace(),
        )  # fmt: skip

    first = accounts.sign_in("ana@example.com", "a long enough password")
    second = accounts.sign_in("ana@example.com", "a long enough password")
    assert first is not None and second is not None
    signed_out, expiring = (
        auth.still_authorised(request_of(s.session_secret)) for s in (first, second)
    )
    assert signed_out() and expiring()
    accounts.sign_out(first.session_secret)
    assert not signed_out() and expiring()
    clock.advance(seconds=SESSION_LIFETIME.total_seconds() + 1)
    assert not expiring()


def test_a_session_store_that_fails_is_not_asked_again_at_once() -> None:
    # Each ask of a PostgreSQL account store that is down waits for its pool: a stream asking
    # before every delivery would stall (a review). The stream goes on, and asks again later.
    from kernel import auth

    asked: list[int] = []

    class Down:
        def session(self, secret: str) -> None:
            asked.append(1)
            raise ConnectionError("the account store does not answer")

    app = types.SimpleNamespace(state=types.SimpleNamespace(accounts=Down(), keys=None))
    request = types.SimpleNamespace(
        app=app, headers={}, cookies={auth.SESSION_COOKIE: "s"}, method="GET",
        state=types.SimpleNamespace(),
    )  # fmt: skip
    check = auth.still_authorised(request)  # type: ignore[arg-type]
    assert check() and check() and check()
    assert len(asked) == 1

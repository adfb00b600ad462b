"""A customer's live stream tells the page when the customer is merged with another, or one is
split off, while it is open (`services/query_api/routers/stream._regroup_watch`,
`CustomerStream.regrouped`): the stream feeds the members it opened on, so a page left on it
would never show the merged history, nor, on the absorbed customer's page, the events filed
under the survivor (a review)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from services.identity import IdentityResolver
from services.query_api.routers.stream import _regroup_watch
from services.query_api.stream import CustomerStream, StreamHub
from tests.identity_memory import memory_resolver
from tests.unit.test_customer_stream import CUSTOMER, TENANT, ArrivalsTwin, take
from tests.unit.test_stream_erasure import app_with, customers


@pytest.fixture
def identity() -> Iterator[IdentityResolver]:
    resolver = memory_resolver()
    yield resolver
    resolver.close()


def test_a_merge_since_the_stream_opened_is_news_to_both_customers_pages(
    identity: IdentityResolver,
) -> None:
    rocio, caller = customers(identity, "rocio.ibarra@movistar.es", "r.ibarra@gmail.com")
    on_rocio = _regroup_watch(app_with(identity), "acme", rocio, [rocio])
    on_caller = _regroup_watch(app_with(identity), "acme", caller, [caller])
    assert on_rocio is not None and on_caller is not None
    assert (on_rocio(), on_caller()) == (False, False)
    identity.merge("acme", rocio, caller, "the same person", "manager")
    assert (on_rocio(), on_caller()) == (True, True)
    # A page opened on the group since is not told again, however often it reconnects.
    group = list(identity.members("acme", rocio))
    since = _regroup_watch(app_with(identity), "acme", caller, group)
    assert since is not None and since() is False


def test_a_split_since_the_stream_opened_is_news(identity: IdentityResolver) -> None:
    sara, ana = customers(identity, "sara.soto@gmail.com", "ana.arias@gmail.com")
    identity.merge("acme", sara, ana, "same person", "admin")
    watch = _regroup_watch(app_with(identity), "acme", sara, list(identity.members("acme", sara)))
    assert watch is not None and watch() is False
    identity.split("acme", sara, ana, "not the same", "admin")
    assert watch() is True


def test_without_identity_there_is_nothing_to_watch() -> None:
    assert _regroup_watch(app_with(None), "acme", "c1", ["c1"]) is None


def test_a_store_that_fails_for_a_while_neither_ends_the_stream_nor_tells_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = {"n": 0}

    class Flaky:
        def locate(self, tenant_id: str, requested: str) -> object:
            calls["n"] += 1
            raise ConnectionError("identity store unavailable")

    watch = _regroup_watch(app_with(Flaky()), TENANT, CUSTOMER, [CUSTOMER])
    assert watch is not None
    assert [watch() for _ in range(4)] == [False] * 4
    assert calls["n"] == 4
    assert len([r for r in caplog.records if "could not read" in r.message]) == 1  # once


def test_a_customer_regrouped_while_the_stream_is_open_is_told_once_and_the_stream_ends() -> None:
    twin = ArrivalsTwin()
    twin.add(0, 0)
    regrouped = threading.Event()

    async def scenario() -> list[str]:
        hub = StreamHub(twin, poll_s=0.01)  # type: ignore[arg-type]
        stream = CustomerStream(
            hub, TENANT, [CUSTOMER], None, keep_alive_s=3600, regrouped=regrouped.is_set,
            erasure_check_s=0.02,
        )  # fmt: skip
        messages = stream.messages()
        await anext(messages), await anext(messages)  # the retry, then where it starts
        new = twin.add(0, 1)
        [(_, event_id)] = await take(messages, 1)  # live as before, while the same group
        assert event_id == new.event_id
        regrouped.set()
        told = [m.decode() async for m in messages]  # ends by itself
        await hub.stop()
        return told

    told = asyncio.run(scenario())
    assert len(told) == 1 and "event: regrouped" in told[0] and "data: {}" in told[0], told

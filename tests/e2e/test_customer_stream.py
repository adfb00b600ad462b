"""The live customer stream (`GET /v1/customers/{id}/stream`) as a console uses it, on every
deployment kind: new and late events once each, reconnection with Last-Event-ID losing and
repeating nothing, 200 streams open at once, and the access rules of the timeline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.deployments import TENANT_A, TENANT_B, Api, Deployment, new_tag
from tests.e2e.sse import StreamReader, open_stream, stream_path
from tests.events import event

# Generous: the deployment's cores are shared; the 1 s goal is measured by `cem bench`.
DELIVERED_WITHIN_S = 60.0
HUB_POLL_MARGIN_S = 1.0  # several of the hub's 200 ms polls
STREAMS = 200


def chat(customer_id: str, at: datetime, text: str) -> dict[str, Any]:
    customer = {"customer_id": customer_id}
    return event("message.received", "chat", customer, at, {"text": text}, touchpoint="chat")


@asynccontextmanager
async def client(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=STREAMS + 20)
    timeout = httpx.Timeout(60.0, read=90.0)
    async with httpx.AsyncClient(
        base_url=deployment.base_url, limits=limits, timeout=timeout
    ) as http:
        yield http


def known_customer(api: Api, deployment: Deployment, customer_id: str) -> None:
    """A customer exists once its first event is processed (a stream of nobody is a 404)."""
    ingest = deployment.key(TENANT_A, "ingest")
    api.post_ok(ingest, chat(customer_id, datetime.now(UTC), "hello"))
    deployment.wait_processed()
    # A stream opened without a cursor starts at the hub's watermark, which follows the arrivals
    # one poll (200 ms) behind: let it pass "hello" so the new stream starts after it.
    time.sleep(HUB_POLL_MARGIN_S)


async def received_ids(reader: StreamReader, count: int) -> list[str]:
    return [m.entry()["event_id"] for m in await reader.touchpoints(count, DELIVERED_WITHIN_S)]


async def reconnect_story(api: Api, deployment: Deployment) -> None:
    ingest, agent = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "agent")
    customer_id = f"stream-{new_tag()}"
    known_customer(api, deployment, customer_id)
    now = datetime.now(UTC)
    async with client(deployment) as http:
        reader = await open_stream(http, agent, customer_id)
        first = chat(customer_id, now, "first")
        api.post_ok(ingest, first)
        [message] = await reader.touchpoints(1, DELIVERED_WITHIN_S)
        assert message.entry() == api.timeline(agent, customer_id)[0]  # the timeline's shape
        cursor = reader.last_id
        await reader.response.aclose()

        # While the console is away: two new events and a late one (a year-old occurred_at).
        missed = [
            chat(customer_id, now + timedelta(seconds=1), "second"),
            chat(customer_id, now - timedelta(days=400), "late"),
            chat(customer_id, now + timedelta(seconds=2), "third"),
        ]
        api.post_ok(ingest, missed)
        deployment.wait_processed()

        again = await open_stream(http, agent, customer_id, last_id=cursor)
        assert sorted(await received_ids(again, 3)) == sorted(e["event_id"] for e in missed)
        after = chat(customer_id, now + timedelta(seconds=3), "after")
        api.post_ok(ingest, after)
        assert await received_ids(again, 1) == [after["event_id"]]
        assert await again.quiet_for(2.0) == []  # nothing repeated
        await again.response.aclose()


def test_reconnect_with_last_event_id_loses_and_repeats_nothing(
    api: Api, deployment: Deployment
) -> None:
    asyncio.run(reconnect_story(api, deployment))


async def many_streams(api: Api, deployment: Deployment) -> None:
    ingest, agent = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "agent")
    tag, now = new_tag(), datetime.now(UTC)
    customers = [f"many-{tag}-{i}" for i in range(STREAMS)]
    api.post_ok(ingest, [chat(c, now, "hello") for c in customers])
    deployment.wait_processed()
    time.sleep(HUB_POLL_MARGIN_S)  # as in known_customer
    async with client(deployment) as http:
        readers = await asyncio.gather(*(open_stream(http, agent, c) for c in customers))
        news = [chat(c, now + timedelta(seconds=1), "news") for c in customers]
        api.post_ok(ingest, news)
        got = await asyncio.gather(*(received_ids(r, 1) for r in readers))
        assert got == [[e["event_id"]] for e in news]  # each stream its own customer's event
        await asyncio.gather(*(r.response.aclose() for r in readers))


def test_200_concurrent_streams_each_get_their_customers_event(
    api: Api, deployment: Deployment
) -> None:
    asyncio.run(many_streams(api, deployment))


def test_stream_follows_the_timelines_access_rules(api: Api, deployment: Deployment) -> None:
    customer_id = f"rules-{new_tag()}"
    known_customer(api, deployment, customer_id)
    path = stream_path(customer_id)
    other_tenant = api.get(path, deployment.key(TENANT_B, "agent"))
    assert other_tenant.status_code == 404
    assert other_tenant.json()["error"]["code"] == "not_found"
    assert api.get(path, None).status_code == 401
    assert api.get(path, deployment.key(TENANT_A, "ingest")).status_code == 403
    bad = api.get(path, deployment.key(TENANT_A, "agent"), last_event_id="not a cursor")
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"  # as on every route with a cursor
    assert bad.json()["error"]["details"][0]["path"] == "query.last_event_id"


async def page_then_stream_story(api: Api, deployment: Deployment) -> None:
    ingest, agent = deployment.key(TENANT_A, "ingest"), deployment.key(TENANT_A, "agent")
    customer_id = f"page-{new_tag()}"
    known_customer(api, deployment, customer_id)
    page = api.timeline_page(agent, customer_id).json()
    assert page["stream_cursor"]  # the first page says where its live stream starts
    # Stored after the page was read and before the console opened its stream: the race a
    # console loses without the cursor (the stream would start after this event).
    between = chat(customer_id, datetime.now(UTC), "while the page was on its way")
    api.post_ok(ingest, between)
    deployment.wait_processed()
    time.sleep(HUB_POLL_MARGIN_S)  # the hub's watermark has passed it: only the cursor finds it
    async with client(deployment) as http:
        reader = await open_stream(http, agent, customer_id, last_id=page["stream_cursor"])
        assert await received_ids(reader, 1) == [between["event_id"]]
    assert (
        api.timeline_page(agent, customer_id).json()["entries"][0]["event_id"]
        == between["event_id"]
    )  # and a page read now holds it first, as the stream said


def test_the_first_pages_stream_cursor_misses_nothing_stored_in_between(
    api: Api, deployment: Deployment
) -> None:
    asyncio.run(page_then_stream_story(api, deployment))

"""The benches' concurrent posting: every client posts its share in order, the counts add up, and
one client's failure is raised after the others finish (an httpx MockTransport stands in for the
ingest: this is the bench's own plumbing, not the platform)."""

from __future__ import annotations

import threading

import httpx
import orjson
import pytest

from bench.workload import post_concurrently


class Target:
    def __init__(self, fail_on: bytes | None = None) -> None:
        self.seen: list[bytes] = []
        self.lock = threading.Lock()
        self.fail_on = fail_on

    def answer(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append(request.content)
        if request.content == self.fail_on:
            return httpx.Response(500, text="boom")
        items = orjson.loads(request.content)
        return httpx.Response(
            200,
            json={"submitted": len(items), "accepted": len(items) - 1, "duplicates": 1,
                  "rejected": 0, "conflicts": 0},
        )  # fmt: skip

    def client(self, role: str) -> httpx.Client:
        assert role == "ingest"
        return httpx.Client(transport=httpx.MockTransport(self.answer), base_url="http://x")


def body(n: int) -> bytes:
    return orjson.dumps([{"n": i} for i in range(n)])


def test_every_share_is_posted_and_the_counts_add_up() -> None:
    target = Target()
    shares = [[body(3), body(2)], [body(4)], []]
    posted = post_concurrently(target, shares)
    assert sorted(target.seen) == sorted([body(3), body(2), body(4)])
    assert (posted.accepted, posted.rejected) == (9, 0)
    assert posted.acked >= posted.began


def test_a_failing_client_is_raised_once_the_others_are_done() -> None:
    target = Target(fail_on=body(5))
    with pytest.raises(RuntimeError, match="a client failed"):
        post_concurrently(target, [[body(5)], [body(1), body(2)]])
    assert body(2) in target.seen  # the other client finished its share

"""Replaying webhook dead letters a page at a time (services/ingest/channels/replay.py).

A letter that now maps to nothing to store (a Shopify test order) was counted as a duplicate, as
if its events had been stored before; it is counted apart. A replay stopped by its limit or by
the time it is allowed says where to go on from (`next_since`): the letters still failing stay
pending and are listed first again, so "ask again" re-ran them and never reached the rest.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from cem.adapters.memory_channels import MemoryChannelStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from kernel.channels import NewDeadLetter
from kernel.ports import TOUCHPOINTS_TOPIC
from kernel.secrets import SecretBox, new_key_text, platform_key
from services.ingest.channels.replay import replay_webhooks
from tests.events import BUCKET_KEY

TENANT = "acme"
FIXTURE = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "channels" / "shopify" / "order_online.json"
    ).read_text()
)
RECEIVED = datetime.fromisoformat(FIXTURE["received_at"])
ORDER = FIXTURE["body"].encode()
TEST_ORDER = json.dumps({**json.loads(FIXTURE["body"]), "test": True}).encode()
BROKEN = b"{not json"


class Shop:
    def __init__(self) -> None:
        self.store = MemoryChannelStore(
            SecretBox(platform_key(Path("/nonexistent"), new_key_text()))
        )
        self.channel = self.store.add(TENANT, "shopify", FIXTURE["secret"], settings={})
        self.log = MemoryLog(partitions=2)
        self.publisher = MemoryPublisher(self.log)

    def keep(self, body: bytes, minutes: int) -> str:
        return self.store.keep_dead_letter(
            NewDeadLetter(TENANT, "shopify", self.channel.channel_id,
                          RECEIVED + timedelta(minutes=minutes), FIXTURE["url"],
                          FIXTURE["headers"], body, "unmappable",
                          [{"path": "customer", "code": "c", "message": "m"}])
        )  # fmt: skip

    def pending(self) -> list[str]:
        return [d.dead_letter_id for d in self.store.dead_letters()]

    def published(self) -> int:
        return len(self.log.poll(TOUCHPOINTS_TOPIC, "reader", 1000, 0))


def test_a_letter_that_now_maps_to_nothing_to_store_is_counted_apart_not_as_a_duplicate() -> None:
    shop = Shop()
    shop.keep(TEST_ORDER, 0)
    report = replay_webhooks(shop.store, shop.publisher, bucket_key=BUCKET_KEY)
    assert (report.restored, report.duplicates, report.unrecorded) == (0, 0, 1)
    assert shop.published() == 0 and shop.pending() == []  # settled: not re-run again
    assert report.line("webhook dead letters").endswith(
        ", 0 still failing, 1 with nothing to store, 0 erased"
    )
    # An order's letter replayed twice is still the duplicate it was.
    shop.keep(ORDER, 1)
    shop.keep(ORDER + b"\n", 2)  # the same order delivered again (a body kept apart)
    again = replay_webhooks(shop.store, shop.publisher, bucket_key=BUCKET_KEY)
    assert (again.restored, again.duplicates, again.unrecorded) == (1, 1, 0)


def test_a_limited_replay_says_where_to_go_on_past_the_letters_that_still_fail() -> None:
    shop = Shop()
    first, second = shop.keep(BROKEN, 0), shop.keep(BROKEN + b"}", 1)
    shop.keep(ORDER, 2)
    page = replay_webhooks(shop.store, shop.publisher, bucket_key=BUCKET_KEY, limit=2)
    assert (page.still_failing, page.restored) == (2, 0)
    assert page.next_since == RECEIVED + timedelta(minutes=2)
    # Asked again as before, the same two failing letters come first and the order never does.
    assert shop.pending()[:2] == [first, second]
    rest = replay_webhooks(
        shop.store, shop.publisher, bucket_key=BUCKET_KEY, limit=2, since=page.next_since
    )
    assert (rest.restored, rest.still_failing, rest.next_since) == (1, 0, None)
    assert shop.published() == 1 and shop.pending() == [first, second]


def test_a_replay_out_of_time_stops_between_letters_and_says_where_to_go_on() -> None:
    shop = Shop()
    shop.keep(ORDER, 0)
    shop.keep(BROKEN, 5)
    shop.keep(TEST_ORDER, 9)
    # No time at all: the first letter is still run (a request always gets somewhere).
    hurried = replay_webhooks(shop.store, shop.publisher, bucket_key=BUCKET_KEY, seconds=0)
    assert (hurried.restored, hurried.still_failing, hurried.unrecorded) == (1, 0, 0)
    assert hurried.next_since == RECEIVED + timedelta(minutes=5)
    done = replay_webhooks(
        shop.store, shop.publisher, bucket_key=BUCKET_KEY, since=hurried.next_since
    )
    assert (done.still_failing, done.unrecorded, done.next_since) == (1, 1, None)

"""What journeys are generated into: the population, the random source, the timing, the events."""

from __future__ import annotations

from random import Random
from typing import Any

from cem.demo.draws import pick, random_hex
from cem.demo.people import Agent, Customer
from cem.demo.population import Population
from cem.demo.reference import SOURCES, TOPIC_CUM, TOPICS
from cem.demo.texts import TEXTS
from cem.demo.timing import Timing

Event = dict[str, Any]
Ids = dict[str, Any]
Payload = dict[str, Any]
Item = tuple[int, int, Event]  # (time in ms, sequence, event): sorts by time, then emission order
# Version 4 and the RFC 4122 variant, set on 128 random bits.
_UUID_CLEAR, _UUID_V4 = ~((0xF000 << 64) | (0xC000 << 48)), (0x4000 << 64) | (0x8000 << 48)


class Sim:
    """Builds journeys as (time in ms, sequence, event) items; the caller orders and stamps them."""

    def __init__(self, population: Population, rng: Random, timing: Timing) -> None:
        self.pop, self.rng, self.timing = population, rng, timing
        self.out: list[Item] = []
        self.seq = 0
        self.last_survey: dict[int, int] = {}  # customer index -> when they were last surveyed
        self.bounced: set[int] = set()  # customers whose email address hard-bounced
        self.force_bad = False  # live mode: this journey goes badly and the customer says so

    def drain(self) -> list[Item]:
        out, self.out = self.out, []
        return out

    def uuid(self) -> str:
        h = "%032x" % (self.rng.getrandbits(128) & _UUID_CLEAR | _UUID_V4)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex(self, bits: int = 48) -> str:
        return random_hex(self.rng, bits)

    def message_id(self) -> str:
        return f"msg-{self.hex(64)}"

    def emit(self, ts: int, channel: str, type_: str, touchpoint: str, customer: Ids,
             payload: Payload, correlation_id: str | None) -> None:  # fmt: skip
        ids = dict(customer)  # a copy: events must not share mutable identifiers
        if "external_ids" in ids:
            ids["external_ids"] = dict(ids["external_ids"])
        event: Event = {
            "event_id": self.uuid(), "source_id": SOURCES[channel], "channel": channel,
            "type": type_, "touchpoint": touchpoint, "customer": ids, "payload": payload,
        }  # fmt: skip
        if correlation_id:
            event["correlation_id"] = correlation_id
        self.seq += 1
        self.out.append((ts, self.seq, event))

    def thread(self, channel: str, tp: str, ids: Ids, prefix: str | None = None) -> Thread:
        """A new interaction, with a fresh correlation id starting with `prefix` if given."""
        return Thread(self, channel, tp, ids, f"{prefix}-{self.hex()}" if prefix else None)

    def topic(self) -> str:
        return pick(self.rng, TOPICS, TOPIC_CUM)

    def agent(self, queue: str, other_than: Agent | None = None) -> Agent:
        team = self.pop.agents_by_queue[queue]
        chosen = self.rng.choice(team)
        if chosen is other_than and len(team) > 1:
            chosen = self.rng.choice([a for a in team if a is not other_than])
        return chosen

    def say(self, c: Customer, key: str) -> str:
        """One of the catalogue's texts for `key`, in the customer's language."""
        es, en = self.rng.choice(TEXTS[key])
        return es if c.language == "es" else en

    def between(self, low: int, high: int) -> int:
        """A uniform integer in [low, high]; cheaper than randint, which matters at 1M events."""
        return low + int(self.rng.random() * (high - low + 1))


class Thread:
    """One interaction — a call, a conversation, an order: the channel, touchpoint, customer
    identifiers and correlation id that all its events share."""

    __slots__ = ("sim", "channel", "touchpoint", "ids", "corr")

    def __init__(self, sim: Sim, channel: str, touchpoint: str, ids: Ids, corr: str | None) -> None:
        self.sim, self.channel, self.touchpoint, self.ids, self.corr = (
            sim, channel, touchpoint, ids, corr)  # fmt: skip

    def __call__(self, ts: int, type_: str, payload: Payload) -> None:
        self.sim.emit(ts, self.channel, type_, self.touchpoint, self.ids, payload, self.corr)

    def message(self, ts: int, sender: str, text: str, **extra: Any) -> None:
        kind = "message.received" if sender == "customer" else "message.sent"
        self(ts, kind, {"sender": sender, "text": text, **extra})

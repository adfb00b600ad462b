"""The public generators: months of history up to `now`, and an endless live stream."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from datetime import datetime
from random import Random

from cem.demo.journeys.contact_centre import call, chat
from cem.demo.journeys.days import journey, run_day
from cem.demo.journeys.sim import Event, Item, Sim
from cem.demo.people import Customer
from cem.demo.population import Population
from cem.demo.timing import DAY, HISTORY, LIVE, IsoStamper, to_ms


def history(population: Population, rng: Random, now: datetime, days: int) -> Iterator[Event]:
    """Raw events of the `days` before `now`, in time order, across every event family.

    Journeys are generated a day at a time into a heap; an event is released once no journey
    still to be generated can start before it, so memory stays bounded by the journeys in
    flight. Steps that would happen after `now` (a survey not answered yet) are left out.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    end = to_ms(now)
    start = end - days * DAY
    joined = [end - int(c.joined_days_ago * DAY) for c in population.customers]
    joiners = _joiners_by_day(population, joined, start, end)
    sim, stamp, pending = Sim(population, rng, HISTORY), IsoStamper(), list[Item]()
    for midnight in range(start - start % DAY, end, DAY):
        lo, hi = max(midnight, start), min(midnight + DAY, end)
        run_day(sim, midnight, lo, hi, joined, joiners.get(midnight // DAY, ()))
        for item in sim.drain():
            heapq.heappush(pending, item)
        while pending and pending[0][0] < midnight + DAY:
            ts, _, event = heapq.heappop(pending)
            if ts <= end:
                event["occurred_at"] = stamp(ts)
                yield event


def _joiners_by_day(
    population: Population, joined: list[int], start: int, end: int
) -> dict[int, list[Customer]]:
    """The customers who sign up within [start, end), by the day (since the epoch) they do."""
    joiners: dict[int, list[Customer]] = {}
    for c in population.customers:
        if start <= joined[c.index] < end:
            joiners.setdefault(joined[c.index] // DAY, []).append(c)
    return joiners


def live(population: Population, rng: Random, now_fn: Callable[[], datetime]) -> Iterator[Event]:
    """An endless stream of journeys that end "now" (`now_fn()`), each in time order.

    About one journey in twenty goes badly on purpose — a long wait, a transfer, no resolution —
    and the customer answers the survey at the bottom of the scale with a comment, which should
    raise an at-risk alert within seconds.
    """
    sim, stamp = Sim(population, rng, LIVE), IsoStamper()
    while True:
        items = _one_live_journey(sim, rng, population)
        if not items:
            continue
        shift = to_ms(now_fn()) - items[-1][0]
        for ts, _, event in items:
            event["occurred_at"] = stamp(ts + shift)
            yield event


def _one_live_journey(sim: Sim, rng: Random, population: Population) -> list[Item]:
    """A journey of a random customer, starting at 0, as time-ordered items."""
    c = rng.choices(population.customers, cum_weights=population.activity_cum)[0]
    sim.force_bad = rng.random() < 0.05
    if sim.force_bad:
        (call if c.phone else chat)(sim, c, 0)
    else:
        journey(sim, c, 0)
    return sorted(sim.drain())

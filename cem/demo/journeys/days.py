"""A day of demo traffic: which customers start journeys when, and of which kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cem.demo.draws import pick
from cem.demo.journeys import cases, contact_centre, messaging, shopping
from cem.demo.journeys.marketing import campaigns, onboarding
from cem.demo.journeys.sim import Sim
from cem.demo.people import Customer
from cem.demo.reference import HOUR_CUM, KINDS
from cem.demo.timing import DAY, HOUR

Journey = Callable[[Sim, Customer, int], None]
JOURNEYS: dict[str, Journey] = {
    "web": shopping.web, "app": shopping.app, "call": contact_centre.call,
    "chat": contact_centre.chat, "sms": messaging.sms, "social": messaging.social,
    "store": shopping.store, "email": cases.email_support,
}  # fmt: skip


def journey(sim: Sim, c: Customer, t: int) -> None:
    """One journey of a kind drawn from the customer's channel mix, starting at `t`."""
    JOURNEYS[pick(sim.rng, KINDS, c.journey_cum)](sim, c, t)


def run_day(sim: Sim, midnight: int, lo: int, hi: int, joined: Sequence[int],
            joiners: Sequence[Customer]) -> None:  # fmt: skip
    """Every journey that starts in [lo, hi), within the UTC day that starts at `midnight`.

    `joined` is when each customer signed up (by index); `joiners` are those who do that day.
    """
    r, pop = sim.rng, sim.pop
    weekend = (midnight // DAY + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    expected = pop.activity_cum[-1] * (0.8 if weekend else 1.0) * r.uniform(0.85, 1.15)
    n = int(expected + r.random())
    picks = r.choices(pop.customers, cum_weights=pop.activity_cum, k=n)
    hours = r.choices(range(24), cum_weights=HOUR_CUM, k=n)
    for c, hour in zip(picks, hours, strict=True):
        t = midnight + hour * HOUR + sim.between(0, HOUR - 1)
        if lo <= t < hi and t >= joined[c.index]:
            journey(sim, c, t)
    for c in joiners:
        onboarding(sim, c, joined[c.index])
    campaigns(sim, midnight, lo, hi, joined)

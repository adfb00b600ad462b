"""Seeding the demo's history so that the default views have data within seconds of `cem up`.

The history is generated in time order (journeys carry state from one day to the next), then sent a
week at a time, newest week first (and that week a day at a time, newest day first): the default views (the last 30 days of satisfaction, a customer's
latest timeline page) fill from the first week on, while older weeks keep arriving behind them.
Projections do not depend on arrival order, so the tables end up as if it had been sent in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cem.demo import Customer, Population
from services.identity.person_names import name_in

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
Event = dict[str, Any]


@dataclass(frozen=True)
class SampleCustomer:
    """A customer to show in the banner: `key` addresses it in every customer route."""

    name: str
    key: str


def weeks_newest_first(
    events: Iterable[Event], now: datetime, period: timedelta = WEEK
) -> list[list[Event]]:
    """`events` cut into periods (weeks) ending at `now`, the most recent first, each in time
    order."""
    periods: dict[int, list[Event]] = {}
    for event in events:
        age = now - datetime.fromisoformat(event["occurred_at"])
        periods.setdefault(max(0, age // period), []).append(event)
    return [periods[age] for age in sorted(periods)]


def sample_customer(population: Population, recent: Iterable[Event]) -> SampleCustomer | None:
    """The customer with the most recent events among those known by email (a key people can
    type), so that their timeline is full as soon as the first week is in; among those whose
    name an order of that week carried when there are any, so that the name the banner prints
    finds them in the console's search too."""
    by_email = {c.email: c for c in population.customers if c.email}
    events = list(recent)
    counts = Counter(
        email for event in events if (email := event.get("customer", {}).get("email")) in by_email
    )
    named = {
        event["customer"]["email"]
        for event in events
        if event.get("customer", {}).get("email") in by_email
        and name_in(event.get("payload") or {})  # what the projections keep for the search
    }
    if not counts:
        return None
    ranked = [email for email, _ in counts.most_common()]
    chosen = next((e for e in ranked if e in named), ranked[0])
    customer: Customer = by_email[chosen]
    # Ingest folds email case, so the key is written as it is stored.
    email = str(customer.email).lower()
    # No name on record that week (a small demo): the banner names them by what finds them.
    return SampleCustomer(name=customer.name if chosen in named else email, key=f"email:{email}")

"""Seeded demo traffic: a realistic customer population, months of its history, a live stream.

Pure and reproducible: every random choice comes from the `random.Random` passed in and every
time from the `now` given, so one seed always yields the same events. Events are dicts in the
producer format that `schemas.validate.accept` takes (EventIn JSON), carrying only the identifiers
each channel really knows: the phone system a number, the web SDK a cookie, the till a loyalty card.
"""

from __future__ import annotations

from cem.demo.history import history, live
from cem.demo.journeys.sim import Event
from cem.demo.people import Agent, Customer
from cem.demo.population import Population
from cem.demo.reference import TOUCHPOINT_BASELINE
from cem.demo.timing import DAY, HOUR, MINUTE, SECOND

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "SECOND",
    "TOUCHPOINT_BASELINE",
    "Agent",
    "Customer",
    "Event",
    "Population",
    "history",
    "live",
]

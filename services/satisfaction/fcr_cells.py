"""fcr@1 and repeat_contact_rate@1 per touchpoint × channel × queue × agent × bucket. Pure.

A contact counts in the cell of its own touchpoint and channel (its first inbound event), the
latest queue and agent its conversation names, and the bucket its first inbound event falls in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from services.satisfaction.buckets import bucket_start
from services.satisfaction.fcr import FcrContact, Outcome, repeated_contacts
from services.satisfaction.metrics import MetricValue, wilson_interval

# Bucket start (epoch s), touchpoint, channel, queue, agent.
CellKey = tuple[int, str, str, str, str]


@dataclass(frozen=True)
class FcrCell:
    bucket_start: int  # epoch seconds
    touchpoint: str
    channel: str
    queue: str
    agent: str
    contacts: int
    repeat_contacts: int
    resolved_first_contacts: int
    fcr_final: int
    fcr_provisional: int
    repeated: int

    @property
    def fcr(self) -> MetricValue:
        """FCR% = 100 × FCR contacts (final or provisional) / resolved first contacts."""
        return _percent(self.fcr_final + self.fcr_provisional, self.resolved_first_contacts)

    @property
    def repeat_contact_rate(self) -> MetricValue:
        """100 × contacts that repeat an earlier one within 7 days / contacts."""
        return _percent(self.repeat_contacts, self.contacts)

    @property
    def final(self) -> bool:
        """Whether no FCR figure of the cell can still change (no provisional contact)."""
        return self.fcr_provisional == 0


def _percent(count: int, n: int) -> MetricValue:
    if n == 0:
        return MetricValue(None, 0)
    value = 100 * count / n
    return MetricValue(value, n, wilson_interval(value, n))


def _key(contact: FcrContact, bucket: str, since: int, zone: str = "UTC") -> CellKey:
    c = contact.contact
    return (
        bucket_start(c.at, bucket, since, zone),
        c.touchpoint,
        c.channel,
        contact.queue,
        contact.agent,
    )


def to_cells(
    contacts: Iterable[FcrContact],
    found: Iterable[Outcome],
    since: int,
    until: int,
    bucket: str,
    zone: str = "UTC",
) -> list[FcrCell]:
    """Cells of the contacts whose first inbound event is in [since, until) (epoch micros),
    oldest bucket first, in `zone`'s buckets."""
    everyone = list(contacts)
    repeated = repeated_contacts(everyone)
    counts: dict[CellKey, Counter[str]] = {}
    for contact in everyone:
        if since <= contact.contact.at < until:
            cell = counts.setdefault(_key(contact, bucket, since, zone), Counter())
            cell["contacts"] += 1
            cell["repeat_contacts"] += contact.contact.event_id in repeated
    for outcome in found:
        if since <= outcome.contact.contact.at < until:
            cell = counts.setdefault(_key(outcome.contact, bucket, since, zone), Counter())
            cell["resolved_first_contacts"] += 1
            cell[outcome.status] += 1
    return [_cell(key, counts[key]) for key in sorted(counts)]


def _cell(key: CellKey, counts: Counter[str]) -> FcrCell:
    start, touchpoint, channel, queue, agent = key
    return FcrCell(
        bucket_start=start,
        touchpoint=touchpoint,
        channel=channel,
        queue=queue,
        agent=agent,
        contacts=counts["contacts"],
        repeat_contacts=counts["repeat_contacts"],
        resolved_first_contacts=counts["resolved_first_contacts"],
        fcr_final=counts["fcr_final"],
        fcr_provisional=counts["fcr_provisional"],
        repeated=counts["repeated"],
    )

"""fcr@1 and repeat_contact_rate@1 per cell from contact events, in one tight pass. Pure.

The rule is `fcr.py`'s, word for word (the reference, over timeline rows, that the tests compare
this with on seeded populations); this computes it from `contact_events` rows, whose payload
facts were read when projected, with tuples instead of an object per fact, and decides outcomes
only for the contacts the range counts (the read also spans the 7 days either side, which only
tell whether those are first contacts and whether they were repeated). A request over 100 000
calls pairs them in a fraction of the time the reference takes (docs/metrics.md).

A contact here is a tuple `(at, event_id, channel, touchpoint, queue, agent, topics, cases,
resolved, reopens)`: the first inbound event of its conversation, the latest queue and agent its
conversation and cases name, their topics, its cases, whether resolved, and the (derived_at,
event_id) of its cases' reopens, oldest first.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from services.projections.repeat_contact import WINDOW_MICROS
from services.satisfaction.buckets import bucket_start
from services.satisfaction.fcr_cells import CellKey, FcrCell

# The columns read, in the order `_fold` unpacks each event's values.
COLUMNS = ("customer_id", "event_id", "derived_at", "received_at", "channel", "touchpoint",
           "correlation_id", "contact", "resolves", "reopens", "topic", "case_id", "agent",
           "queue")  # fmt: skip
Event = tuple[Any, ...]
Contact = tuple[Any, ...]
Order = tuple[int, str]
_QUARTER = 900_000_000  # micros
_STATUS = {"fcr_final": 3, "fcr_provisional": 4, "repeated": 5}
_ORDER = itemgetter(0, 1)
_NO_TOPICS: frozenset[str] = frozenset()


class _Facts:
    """What the events of one conversation (or of one case) tell, folded as they are read."""

    __slots__ = ("agent", "cases", "first", "queue", "reopens", "resolved", "topics")

    def __init__(self) -> None:
        self.first: tuple[int, str, str, str] | None = None
        self.queue: tuple[Order, str] | None = None  # the latest named, by (derived_at, id)
        self.agent: tuple[Order, str] | None = None
        self.topics: set[str] = set()
        self.cases: set[str] = set()
        self.resolved = False
        self.reopens: set[Order] = set()

    def note(self, event: Event, order: Order) -> None:
        *_, resolves, reopens, topic, _case, agent, queue = event
        if queue and (self.queue is None or order > self.queue[0]):
            self.queue = (order, queue)
        if agent and (self.agent is None or order > self.agent[0]):
            self.agent = (order, agent)
        if topic:
            self.topics.add(topic)
        if resolves:
            self.resolved = True
        if reopens:
            self.reopens.add(order)


def _latest(a: tuple[Order, str] | None, b: tuple[Order, str] | None) -> tuple[Order, str] | None:
    return b if a is None or (b is not None and b[0] > a[0]) else a


def _fold(
    columns: Mapping[str, Sequence[Any]], redirects: Mapping[str, str], as_of: int
) -> dict[str, list[Contact]]:
    """Each canonical customer's contacts (unsorted) from the contact events known as of
    `as_of`: their time and their receipt both at or before it."""
    found: dict[str, list[Contact]] = defaultdict(list)
    groups: dict[tuple[str, bool, str], _Facts] = {}
    cases: dict[tuple[str, str], _Facts] = defaultdict(_Facts)
    topics_of: dict[str, frozenset[str]] = {}
    for event in zip(*(columns[name] for name in COLUMNS), strict=True):
        (filed, event_id, at, received, channel, touchpoint, corr, contact, resolves, reopens,
         topic, case, agent, queue) = event  # fmt: skip
        if at > as_of or received > as_of:
            continue
        customer = redirects.get(filed, filed)
        if corr or case:
            _fold_linked(event, customer, groups, cases)
        elif contact:  # a conversation of one event: a contact with its own facts only
            if topic not in topics_of:
                topics_of[topic] = frozenset((topic,)) if topic else _NO_TOPICS
            found[customer].append((
                at, event_id, channel, touchpoint, queue, agent, topics_of[topic], _NO_TOPICS,
                bool(resolves), ((at, event_id),) if reopens else (),
            ))  # fmt: skip
        # else: an event of no conversation or case that is not a contact pairs with nothing
    for (customer, _, _), facts in groups.items():
        if facts.first is not None:
            linked = [cases[(customer, c)] for c in facts.cases]
            found[customer].append(_contact(facts.first, facts, linked))
    return found


def _fold_linked(
    event: Event,
    customer: str,
    groups: dict[tuple[str, bool, str], _Facts],
    cases: dict[tuple[str, str], _Facts],
) -> None:
    """Fold an event of a conversation or a case into its conversation's and case's facts."""
    _, event_id, at, _, channel, touchpoint, corr, contact, *_, case, _, _ = event
    key = (customer, True, corr) if corr else (customer, False, event_id)
    facts = groups.get(key)
    if facts is None:
        facts = groups[key] = _Facts()
    order = (at, event_id)
    if contact:
        first = (at, event_id, channel, touchpoint)
        if facts.first is None or first < facts.first:
            facts.first = first
    facts.note(event, order)
    if case:
        facts.cases.add(case)
        cases[(customer, case)].note(event, order)


def _contact(first: tuple[int, str, str, str], facts: _Facts, linked: list[_Facts]) -> Contact:
    queue, agent, topics, resolved, reopens = (
        facts.queue, facts.agent, facts.topics, facts.resolved, facts.reopens
    )  # fmt: skip
    if linked:
        topics, reopens = set(topics), set(reopens)
        for case in linked:
            queue, agent = _latest(queue, case.queue), _latest(agent, case.agent)
            topics |= case.topics
            resolved = resolved or case.resolved
            reopens |= case.reopens
    at, event_id, channel, touchpoint = first
    return (
        at, event_id, channel, touchpoint, queue[1] if queue else "", agent[1] if agent else "",
        frozenset(topics), frozenset(facts.cases), resolved, tuple(sorted(reopens)),
    )  # fmt: skip


def _same_topic(a: Contact, b: Contact) -> bool:
    if not a[6] or not b[6]:
        return True
    return not a[6].isdisjoint(b[6]) or not a[7].isdisjoint(b[7])


def _repeat(mine: list[Contact], ats: list[int], i: int, window: int) -> str | None:
    """The event that made contact i not FCR: the first later contact about the same topic, or
    reopen of its cases, within the window."""
    contact = mine[i]
    at = contact[0]
    found: Order | None = None
    for later in mine[i + 1 : bisect_right(ats, at + window)]:
        if _same_topic(later, contact):
            found = (later[0], later[1])
            break
    own = (at, contact[1])
    reopen = next((r for r in contact[9] if r >= own and r[0] - at <= window), None)
    if reopen is not None and (found is None or reopen < found):
        found = reopen
    return found[1] if found else None


def _status(mine: list[Contact], ats: list[int], i: int, as_of: int, window: int) -> str | None:
    """fcr@1's status of contact i; None when it is not a resolved first contact."""
    contact = mine[i]
    if not contact[8]:
        return None
    lo = bisect_left(ats, contact[0] - window, 0, i)
    if any(_same_topic(earlier, contact) for earlier in mine[lo:i]):
        return None
    if _repeat(mine, ats, i, window) is not None:
        return "repeated"
    return "fcr_final" if as_of > contact[0] + window else "fcr_provisional"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the contacts are built: they are 100 000s of
    containers, none of them cyclic, and each collection would walk all of them (a third of the
    fold's time measured); paused for the whole process, so only for that moment."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def columns_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Contact event rows (dicts) as the columns `pair_cells` reads."""
    listed = list(rows)
    return {name: [row[name] for row in listed] for name in COLUMNS}


def pair_cells(
    columns: Mapping[str, Sequence[Any]],
    canonical: Mapping[str, str] | None,
    as_of: int,
    since: int,
    until: int,
    bucket: str,
    window: int = WINDOW_MICROS,
    zone: str = "UTC",
) -> list[FcrCell]:
    """The cells of the contacts whose first inbound event is in [since, until), as of `as_of`,
    from contact events by column (`COLUMNS`), each event once (as the read's `LIMIT 1 BY
    event_id` gives them): what `to_cells(fcr_contacts(...), outcomes(...))` gives from the same
    events' timeline rows known as of `as_of`, oldest bucket first."""
    with _collector_paused():
        by_customer = _fold(columns, canonical or {}, as_of)
    counts: dict[CellKey, list[int]] = {}
    starts: dict[int, int] = {}
    for mine in by_customer.values():
        mine.sort(key=_ORDER)
        ats = [c[0] for c in mine]
        for i, contact in enumerate(mine):
            at = contact[0]
            if not since <= at < until:
                continue
            quarter = at // _QUARTER  # every zone's offset is whole quarters of an hour
            if quarter not in starts:
                starts[quarter] = bucket_start(at, bucket, since, zone)
            key = (starts[quarter], contact[3], contact[2], contact[4], contact[5])
            cell = counts.setdefault(key, [0, 0, 0, 0, 0, 0])
            cell[0] += 1
            cell[1] += i > 0 and at - ats[i - 1] <= window
            status = _status(mine, ats, i, as_of, window) if contact[8] else None
            if status is not None:
                cell[2] += 1
                cell[_STATUS[status]] += 1
    return [_cell(key, counts[key]) for key in sorted(counts)]


def _cell(key: CellKey, counts: list[int]) -> FcrCell:
    start, touchpoint, channel, queue, agent = key
    contacts, repeats, resolved_first, final, provisional, repeated = counts
    return FcrCell(start, touchpoint, channel, queue, agent, contacts, repeats, resolved_first,
                   final, provisional, repeated)  # fmt: skip

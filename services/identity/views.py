"""Read models that follow the identity store's notification log: the versioned identity map and the
merge candidate list.

Both catch up on every read, so a replica sees every committed merge; the store stays the only
truth and these can be thrown away and rebuilt at any time. The version of the identity map is the
position (notification id) of the last merge or split of the tenant: monotonically increasing, so
a projection can read "the members of X as of version V" and get the same answer every time.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper
from eventsourcing.utils import get_topic

from services.identity.domain import Customer, MergeCandidate
from services.identity.models import CandidateView

_BATCH = 500


class _Follower:
    """Applies the notifications of some event types, in order, exactly once."""

    topics: Sequence[type[Any]] = ()

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        self._recorder, self._mapper = recorder, mapper
        self._topics = [get_topic(t) for t in self.topics]
        self._position = 0  # the last notification applied
        self._scanned = 0  # every notification up to here has been looked at
        self._lock = threading.RLock()

    def catch_up(self) -> int:
        """Apply everything recorded since the last call; returns the position reached.

        Scans only what was recorded since the last scan, up to the log's end as it was when the
        scan began: the recorders commit notification ids in order (PostgreSQL locks the table to
        insert), so nothing below that end can appear later. Without the end, every read would
        scan the whole tail after the last merge looking for more."""
        with self._lock:
            end = self._recorder.max_notification_id() or 0
            start = self._scanned + 1
            while start <= end:
                batch = self._recorder.select_notifications(
                    start=start, limit=_BATCH, stop=end, topics=self._topics
                )
                for notification in batch:
                    self._apply(notification.id, self._mapper.to_domain_event(notification))
                    self._position = notification.id
                if len(batch) < _BATCH:
                    break
                start = batch[-1].id + 1
            self._scanned = max(self._scanned, end)
            return self._position

    def _apply(self, position: int, event: Any) -> None:
        raise NotImplementedError


@dataclass
class _TenantMap:
    version: int = 0
    # customer -> [(version, survivor it redirects to or None)], in version order
    parents: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)
    # survivor -> every customer ever merged into it, so members are found without a scan
    absorbed: dict[str, set[str]] = field(default_factory=dict)


class IdentityMap(_Follower):
    """Which customer each customer id stands for, at any version."""

    topics = (Customer.MergedIntoSurvivor, Customer.RestoredBySplit)

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        super().__init__(recorder, mapper)
        self._tenants: dict[str, _TenantMap] = {}

    def _apply(self, position: int, event: Any) -> None:
        tenant = self._tenants.setdefault(event.tenant_id, _TenantMap())
        parent = event.survivor_id if isinstance(event, Customer.MergedIntoSurvivor) else None
        tenant.parents.setdefault(event.absorbed_id, []).append((position, parent))
        tenant.absorbed.setdefault(event.survivor_id, set()).add(event.absorbed_id)
        tenant.version = position

    def version(self, tenant_id: str) -> int:
        with self._lock:
            return self._current(tenant_id).version

    def canonical(self, tenant_id: str, customer_id: str, as_of: int | None = None) -> str:
        """The survivor a customer id redirects to (itself if never merged), as of a version."""
        with self._lock:
            return _canonical(self._current(tenant_id), customer_id, as_of)

    def members(self, tenant_id: str, customer_id: str, as_of: int | None = None) -> list[str]:
        """Every customer id whose events belong to this customer's timeline, as of a version."""
        return self.groups(tenant_id, [customer_id], as_of)[customer_id]

    def groups(
        self, tenant_id: str, customer_ids: Sequence[str], as_of: int | None = None
    ) -> dict[str, list[str]]:
        """`members` of each customer id, caught up once (a search's results: one read of the
        store, not one per result)."""
        with self._lock:
            tenant = self._current(tenant_id)
            return {c: _members(tenant, _canonical(tenant, c, as_of), as_of) for c in customer_ids}

    def redirects(self, tenant_id: str, as_of: int | None = None) -> dict[str, str]:
        """absorbed id -> survivor id of every merged customer as of a version (warehouse joins)."""
        with self._lock:
            tenant = self._current(tenant_id)
            found = {c: _canonical(tenant, c, as_of) for c in tenant.parents}
            return {c: s for c, s in found.items() if c != s}

    def _current(self, tenant_id: str) -> _TenantMap:
        """The tenant's map after catching up; callers hold the lock while they read it."""
        self.catch_up()
        return self._tenants.get(tenant_id, _TenantMap())


def _members(tenant: _TenantMap, canonical: str, as_of: int | None) -> list[str]:
    found, queue = set(), [canonical]
    while queue:
        survivor = queue.pop()
        for member in tenant.absorbed.get(survivor, ()):
            if member not in found and _parent_at(tenant, member, as_of) == survivor:
                found.add(member)
                queue.append(member)
    return [canonical, *sorted(found - {canonical})]


def _canonical(tenant: _TenantMap, customer_id: str, as_of: int | None) -> str:
    current, seen = customer_id, {customer_id}
    while (parent := _parent_at(tenant, current, as_of)) is not None and parent not in seen:
        current = parent
        seen.add(parent)
    return current


def _parent_at(tenant: _TenantMap, customer_id: str, as_of: int | None) -> str | None:
    history = tenant.parents.get(customer_id)
    if not history:
        return None
    if as_of is None:
        return history[-1][1]
    index = bisect.bisect_right(history, as_of, key=lambda entry: entry[0])
    return history[index - 1][1] if index else None


class CandidateBoard(_Follower):
    """Merge candidates of every tenant, with their decisions."""

    topics = (
        MergeCandidate.Opened,
        MergeCandidate.Proposed,
        MergeCandidate.Accepted,
        MergeCandidate.Rejected,
    )

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        super().__init__(recorder, mapper)
        self._pairs: dict[str, tuple[str, str, str]] = {}  # candidate id -> tenant, first, second
        self._views: dict[str, dict[str, CandidateView]] = {}  # tenant -> candidate id -> view

    def _apply(self, position: int, event: Any) -> None:
        candidate_id = str(event.originator_id)
        if isinstance(event, MergeCandidate.Opened):
            self._pairs[candidate_id] = (event.tenant_id, event.first_id, event.second_id)
            return
        tenant_id, first_id, second_id = self._pairs[candidate_id]
        views = self._views.setdefault(tenant_id, {})
        if isinstance(event, MergeCandidate.Proposed):
            views[candidate_id] = _proposed(candidate_id, first_id, second_id, event)
        elif candidate_id in views:
            views[candidate_id] = _decided(views[candidate_id], event)

    def list(self, tenant_id: str, status: str | None = None) -> list[CandidateView]:
        with self._lock:
            self.catch_up()
            views = list(self._views.get(tenant_id, {}).values())
        chosen = [v for v in views if status is None or v.status == status]
        return sorted(chosen, key=lambda v: (v.proposed_at, v.candidate_id))

    def get(self, tenant_id: str, candidate_id: str) -> CandidateView | None:
        with self._lock:
            self.catch_up()
            return self._views.get(tenant_id, {}).get(candidate_id)


def _proposed(candidate_id: str, first_id: str, second_id: str, event: Any) -> CandidateView:
    return CandidateView(
        candidate_id=candidate_id,
        first_id=first_id,
        second_id=second_id,
        proposer_id=event.proposer_id,
        reason=event.reason,
        identifiers=tuple(event.identifiers),
        evidence_event_id=event.evidence_event_id,
        status="open",
        proposed_at=event.timestamp,
    )


def _decided(view: CandidateView, event: Any) -> CandidateView:
    accepted = isinstance(event, MergeCandidate.Accepted)
    return replace(
        view,
        status="accepted" if accepted else "rejected",
        decided_at=event.timestamp,
        decided_by=event.actor,
        decision_reason=event.reason,
        merge_id=(event.merge_id or None) if accepted else None,
    )

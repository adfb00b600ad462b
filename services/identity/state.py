"""What one identity command reads and changes: aggregates loaded once per attempt.

A command (resolve, merge, split ...) runs against an `IdentityState`, triggers events on the
aggregates it loaded or created, and the resolver saves every aggregate with pending events in one
transaction. A conflicting concurrent write fails the whole transaction and the command runs again
on fresh state, so no attempt ever acts on a stale view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate

from services.identity.domain import (
    Customer,
    Filing,
    IdentifierIndex,
    MergeCandidate,
    named_id,
)
from services.identity.errors import CandidateNotFound, CustomerNotFound
from services.identity.policy import Claim, Group
from services.identity.rules import Identifier

A = TypeVar("A", bound=Aggregate)
# Redirect chains longer than this mean corrupted data, not a real merge history.
MAX_CHAIN = 1000


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply stored events in order: the library's default projector without its runtime protocol
    check per event, which took over a quarter of a resolution's time in profiles."""
    for stored in events:
        aggregate = stored.mutate(aggregate)
    return aggregate


def parse_id(value: str) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


class IdentityState:
    def __init__(self, repository: Repository[UUID], tenant_id: str) -> None:
        self.repository = repository
        self.tenant_id = tenant_id
        self._loaded: dict[UUID, Aggregate | None] = {}

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        if aggregate_id not in self._loaded:
            try:
                self._loaded[aggregate_id] = self.repository.get(
                    aggregate_id, projector_func=replay
                )
            except AggregateNotFoundError:
                self._loaded[aggregate_id] = None
        found = self._loaded[aggregate_id]
        if not isinstance(found, kind) or getattr(found, "tenant_id", None) != self.tenant_id:
            return None  # another tenant's aggregate is as good as absent
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._loaded[aggregate.id] = aggregate

    def pending(self) -> list[Aggregate]:
        return [a for a in self._loaded.values() if a is not None and a.pending_events]

    # customers

    def find_customer(self, customer_id: str) -> Customer | None:
        """The customer with this id: its name, or (for a customer registered without one) the
        aggregate's UUID."""
        named = self._get(named_id(self.tenant_id, customer_id), Customer)
        if named is not None:
            return named
        parsed = parse_id(customer_id)
        return self._get(parsed, Customer) if parsed else None

    def customer(self, customer_id: str) -> Customer:
        found = self.find_customer(customer_id)
        if found is None:
            raise CustomerNotFound(customer_id)
        return found

    def canonical(self, customer_id: str) -> str:
        current = self.customer(customer_id)
        for _ in range(MAX_CHAIN):
            if current.merged_into is None:
                return current.customer_id
            current = self.customer(current.merged_into)
        raise RuntimeError(f"redirect chain from {customer_id} does not end")

    def members(self, customer_id: str) -> list[str]:
        """The customer and every customer merged into it, directly or not (breadth first)."""
        found, queue = [customer_id], [customer_id]
        while queue:
            absorbed = self.customer(queue.pop(0)).absorbed
            for member in sorted(absorbed.values()):
                found.append(member)
                queue.append(member)
        return found

    def group(self, customer_id: str) -> Group:
        canonical = self.canonical(customer_id)
        members = self.members(canonical)
        identifiers = {i for m in members for i in self.customer(m).links}
        return Group(canonical, frozenset(members), frozenset(identifiers))

    # identifiers

    def index(self, identifier: Identifier) -> IdentifierIndex | None:
        index_id = IdentifierIndex.create_id(self.tenant_id, identifier.kind, identifier.value)
        return self._get(index_id, IdentifierIndex)

    def index_or_new(self, identifier: Identifier) -> IdentifierIndex:
        found = self.index(identifier)
        if found is None:
            found = IdentifierIndex(self.tenant_id, identifier.kind, identifier.value)
            self.add(found)
        return found

    def claim(self, identifier: Identifier) -> Claim:
        index = self.index(identifier)
        if index is None:
            return Claim(identifier)
        return Claim(
            identifier,
            holders=tuple(index.holders),
            released=frozenset(index.released),
            saturated=index.saturated,
            suppressed=index.suppressed,
        )

    # pairs and filings

    def pair(self, first_id: str, second_id: str) -> MergeCandidate | None:
        pair_id = MergeCandidate.create_id(self.tenant_id, first_id, second_id)
        return self._get(pair_id, MergeCandidate)

    def pair_or_new(self, first_id: str, second_id: str) -> MergeCandidate:
        found = self.pair(first_id, second_id)
        if found is None:
            low, high = sorted((first_id, second_id))
            found = MergeCandidate(self.tenant_id, low, high)
            self.add(found)
        return found

    def candidate(self, candidate_id: str) -> MergeCandidate:
        parsed = parse_id(candidate_id)
        found = self._get(parsed, MergeCandidate) if parsed else None
        if found is None or found.status is None:
            raise CandidateNotFound(candidate_id)
        return found

    def filing(self, evidence_event_id: str) -> Filing | None:
        return self._get(Filing.create_id(self.tenant_id, evidence_event_id), Filing)

    def kept_apart(self, groups: dict[str, Group]) -> frozenset[frozenset[str]]:
        """Canonical pairs among the given groups that a reviewer or a split has kept apart."""
        by_canonical = {g.canonical_id: g for g in groups.values()}
        apart = set()
        canonicals = sorted(by_canonical)
        for i, first in enumerate(canonicals):
            for second in canonicals[i + 1 :]:
                if self._any_pair_apart(by_canonical[first], by_canonical[second]):
                    apart.add(frozenset({first, second}))
        return frozenset(apart)

    def _any_pair_apart(self, first: Group, second: Group) -> bool:
        return any(
            (pair := self.pair(a, b)) is not None and pair.kept_apart
            for a in first.members
            for b in second.members
        )


def events_of(repository: Repository[UUID], aggregate_id: UUID) -> list[Any]:
    """Every stored event of one aggregate, oldest first."""
    return list(repository.event_store.get(aggregate_id))

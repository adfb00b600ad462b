"""What one identity command reads and changes: aggregates loaded once per attempt.

A command (resolve, merge, split ...) runs against an `IdentityState`, triggers events on the
aggregates it loaded or created, and the resolver saves every aggregate with pending events in one
transaction. A conflicting concurrent write fails the whole transaction and the command runs again
on fresh state, so no attempt ever acts on a stale view.

Reads are cheap in bulk: `preload` reads what a batch of resolutions will read in a few queries
(filings, one query for the batch; identifier indexes, named customers, then the groups of their
holders, then the pairs among them), `preload_customers` the names its new customers will most
likely get (`naming.likely_name`), and an `AggregateReader` with an `AggregateCache` keeps
aggregates between commands, bringing every one it hands out up to date with the store in the
same query (only the events recorded since are read and applied). So an attempt always acts on the store's current state, as
if it had replayed everything, and anything not preloaded is read when first asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import AggregateRecorder, Mapper, StoredEvent

from services.identity.domain import (
    Customer,
    Filing,
    IdentifierIndex,
    IndexNaming,
    MergeCandidate,
    SlipKey,
    named_id,
)
from services.identity.errors import CandidateNotFound, CustomerNotFound
from services.identity.policy import Claim, Group, one_slip_apart
from services.identity.ports import Versions
from services.identity.rules import Identifier

UNKEYED = IndexNaming()  # how stores written before keyed names (2026-12-05) name identifiers

A = TypeVar("A", bound=Aggregate)
# The tenant's filings of some touchpoints, by event id (`IdentityStore.select_filings`).
FilingReader = Callable[[str, Sequence[str]], dict[str, Filing]]
# The tenant's email index ids under some slip key ids (`IdentityStore.select_slips`).
SlipReader = Callable[[str, Sequence[str]], dict[str, list[str]]]
# Aggregates an identity resolver keeps in memory between commands (see AggregateCache).
DEFAULT_CACHE_SIZE = 50_000
# Redirect chains longer than this mean corrupted data, not a real merge history.
MAX_CHAIN = 1000


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply stored events in order: the library's default projector without its runtime protocol
    check per event, which took over a quarter of a resolution's time in profiles."""
    for stored in events:
        aggregate = stored.mutate(aggregate)
    return aggregate


# What `_get` finds for an aggregate never read in this state.
_UNREAD: Any = object()


def parse_id(value: str) -> UUID | None:
    text = str(value)
    if len(text) < 32:
        return None  # a UUID has 32 hex digits, whatever else its spelling has
    try:
        return UUID(text)
    except ValueError:
        return None


class AggregateCache:
    """Aggregates as last read or saved by one resolver, least recently used evicted first.

    Not thread-safe, and what it holds is handed out without copying: the resolver uses it under
    its command lock, puts aggregates back only once their events are saved, and discards every
    aggregate an attempt changed when the attempt fails (a conflict, an error)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        # By the id's `int`: hashing a UUID runs Python code, hashing an int does not.
        self._entries: OrderedDict[int, Aggregate] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def aggregates(self) -> list[Aggregate]:
        """What it holds, least recently used first."""
        return list(self._entries.values())

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        found = self._entries.get(aggregate_id.int)
        if found is not None:
            self._entries.move_to_end(aggregate_id.int)
        return found

    def put(self, aggregate: Aggregate) -> None:
        key = aggregate.id.int
        self._entries[key] = aggregate
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def discard(self, aggregate_ids: Iterable[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            self._entries.pop(aggregate_id.int, None)

    def clear(self) -> None:
        self._entries.clear()


class AggregateReader:
    """Reads many aggregates in one query: a cached one is brought up to date with the events
    recorded since its version, any other is replayed from its first event."""

    def __init__(
        self,
        recorder: AggregateRecorder,
        mapper: Mapper[UUID],
        select_since: Callable[[AggregateRecorder, Versions], dict[int, list[StoredEvent]]],
        cache: AggregateCache | None = None,
    ) -> None:
        """Reads with `select_since` (the `IdentityStore`'s, on this recorder)."""
        self.recorder, self.mapper, self.cache = recorder, mapper, cache
        self.select_since = select_since

    def load(self, aggregate_ids: Sequence[UUID]) -> list[Aggregate | None]:
        """The aggregates with these (distinct) ids, in order; None for those never recorded."""
        cache = self.cache
        known: list[Aggregate | None] = (
            [cache.get(i) for i in aggregate_ids]
            if cache is not None
            else [None] * len(aggregate_ids)
        )
        versions = [
            (i, 0 if a is None else a.version) for i, a in zip(aggregate_ids, known, strict=True)
        ]
        recorded = self.select_since(self.recorder, versions)
        if not recorded:
            return known
        loaded = []
        for aggregate_id, aggregate in zip(aggregate_ids, known, strict=True):
            events = recorded.get(aggregate_id.int)
            if events:
                aggregate = replay(aggregate, map(self.mapper.to_domain_event, events))
                if cache is not None and aggregate is not None:
                    cache.put(aggregate)
            loaded.append(aggregate)
        return loaded


class IdentityState:
    def __init__(
        self,
        repository: Repository[UUID],
        tenant_id: str,
        reader: AggregateReader | None = None,
        filings: FilingReader | None = None,
        slips: SlipReader | None = None,
        naming: IndexNaming = UNKEYED,
    ) -> None:
        """Reads through `reader` (many aggregates per query, maybe cached) when given, else one
        aggregate at a time from the repository; filings through `filings`, slip keys through
        `slips` (without them: none); identifiers named as the store names them (`naming`)."""
        self.repository = repository
        self.naming = naming
        self.tenant_id = tenant_id
        self.reader = reader
        self.filings = filings
        self.slips = slips
        self._filed: dict[str, Filing | None] = {}  # read or added, by event id
        self._new_filings: list[Filing] = []
        self._slipped: dict[str, list[str]] = {}  # index ids read or added, by slip key id
        self._new_slips: list[SlipKey] = []
        self._loaded: dict[int, Aggregate | None] = {}  # by the id's `int` (see AggregateCache)
        # Answers computed from loaded aggregates, kept with the versions they were computed at
        # and used again only while those versions stand (every change is an event: a new version).
        self._customers: dict[str, Customer] = {}
        self._groups: dict[str, tuple[tuple[tuple[Customer, int], ...], Group]] = {}
        self._claims: dict[Identifier, tuple[IdentifierIndex | None, int, Claim]] = {}

    def _fetch(self, aggregate_ids: Iterable[UUID]) -> None:
        loaded = self._loaded
        missing = list({i.int: i for i in aggregate_ids if i.int not in loaded}.values())
        if not missing:
            return
        if self.reader is not None:
            for aggregate_id, aggregate in zip(missing, self.reader.load(missing), strict=True):
                loaded[aggregate_id.int] = aggregate
            return
        for aggregate_id in missing:
            try:
                loaded[aggregate_id.int] = self.repository.get(aggregate_id, projector_func=replay)
            except AggregateNotFoundError:
                loaded[aggregate_id.int] = None

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        found = self._loaded.get(aggregate_id.int, _UNREAD)
        if found is _UNREAD:
            self._fetch((aggregate_id,))
            found = self._loaded[aggregate_id.int]
        if not isinstance(found, kind) or getattr(found, "tenant_id", None) != self.tenant_id:
            return None  # another tenant's aggregate is as good as absent
        return found

    def add(self, aggregate: Aggregate) -> None:
        self._loaded[aggregate.id.int] = aggregate

    def pending(self) -> list[Aggregate]:
        return [a for a in self._loaded.values() if a is not None and a.pending_events]

    def preload(
        self,
        event_ids: Iterable[str],
        identifiers: Iterable[Identifier],
        names: Iterable[str],
        touchpoints: Iterable[Collection[Identifier]] = (),
        named_emails: Iterable[Identifier] = (),
    ) -> None:
        """Read in a few queries what resolving touchpoints with these event ids, identifiers and
        preferred customer names reads: their filings, identifier indexes and named customers; the
        groups of the holders and filed customers (redirects and members, to the end); and, for
        each touchpoint (its identifiers) reaching several groups, the pairs across them. The
        slips of new emails are read, and of `named_emails` (the emails of touchpoints carrying
        a name: `resolution._held_slips`) held already.
        Only reads: whatever a resolution asks for that is not preloaded is read then."""
        tenant = self.tenant_id
        identifiers = list(identifiers)
        filings = self._read_filings(event_ids)
        indexes = [self.naming.index_id(tenant, i.kind, i.value) for i in identifiers]
        self._fetch([*indexes, *(i for name in names for i in _customer_keys(tenant, name))])
        customers = [
            h
            for i in indexes
            if (index := self._peek(i, IdentifierIndex))
            for h in (*index.holders, *index.presented_by)
        ]
        customers += [f.home_id for f in filings]
        new = [
            i
            for i, x in zip(identifiers, indexes, strict=True)
            if not self._peek(x, IdentifierIndex)
        ]
        customers += self._preload_slips(dict.fromkeys([*new, *named_emails]))
        seen: set[str] = set()
        while customers := [c for c in dict.fromkeys(customers) if c not in seen]:
            seen.update(customers)
            self._fetch(i for c in customers for i in _customer_keys(tenant, c))
            customers = [
                related
                for c in customers
                if (customer := self.find_customer(c)) is not None
                for related in (customer.merged_into, *customer.absorbed.values())
                if related is not None
            ]
        self._fetch(self._pairs_reached(touchpoints))

    def _preload_slips(self, new: Iterable[Identifier]) -> list[str]:
        """Read the slip keys of new emails and the indexes they name (two queries); the holders
        of those indexes, to read next."""
        keys = [k for i in new for k in self.naming.slip_key_ids(self.tenant_id, i)]
        named = self._slip_indexes(keys)
        self._fetch(named)
        return [
            h for i in named if (index := self._peek(i, IdentifierIndex)) for h in index.holders
        ]

    def _slip_indexes(self, ids: Sequence[str]) -> list[UUID]:
        """The ids of the email indexes under these slip key ids, read in one query (those not
        read yet), in order of the keys."""
        wanted = [k for k in dict.fromkeys(ids) if k not in self._slipped]
        found = self.slips(self.tenant_id, wanted) if self.slips and wanted else {}
        for key_id in wanted:
            self._slipped[key_id] = list(found.get(key_id, ()))
        return [UUID(i) for i in dict.fromkeys(i for k in ids for i in self._slipped[k])]

    def preload_customers(self, customer_ids: Iterable[str]) -> None:
        """Read, in one query, the customers with these ids that are not read yet (those that do
        not exist are then known absent: `find_customer` asks the store no more)."""
        self._fetch(i for c in customer_ids for i in _customer_keys(self.tenant_id, c))

    def _peek(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        return self._get(aggregate_id, kind) if aggregate_id.int in self._loaded else None

    def _pairs_reached(self, touchpoints: Iterable[Collection[Identifier]]) -> list[UUID]:
        """The pair ids `kept_apart` reads for touchpoints whose holders form several groups, as
        the groups stand now."""
        groups: dict[str, Group | None] = {}
        pairs: list[UUID] = []
        for identifiers in touchpoints:
            reached = {}
            for identifier in identifiers:
                for holder in self._held_by(identifier):
                    if holder not in groups:
                        groups[holder] = self._group_if_known(holder)
                    group = groups[holder]
                    if group is not None:
                        reached[group.canonical_id] = group
            if len(reached) < 2:
                continue
            ordered = sorted(reached.values(), key=lambda g: g.canonical_id)
            for i, first in enumerate(ordered):
                for second in ordered[i + 1 :]:
                    pairs.extend(
                        MergeCandidate.create_id(self.tenant_id, a, b)
                        for a in first.members
                        for b in second.members
                    )
        return pairs

    def _held_by(self, identifier: Identifier) -> tuple[str, ...]:
        index_id = self.naming.index_id(self.tenant_id, identifier.kind, identifier.value)
        index = self._peek(index_id, IdentifierIndex)
        return tuple(index.holders) if index else ()

    def _group_if_known(self, customer_id: str) -> Group | None:
        try:
            return self.group(customer_id)
        except (CustomerNotFound, RuntimeError):
            return None  # not preloadable: the resolution reads it (and fails) as it would have

    # customers

    def find_customer(self, customer_id: str) -> Customer | None:
        """The customer with this id: its name, or (for a customer registered without one) the
        aggregate's UUID."""
        known = self._customers.get(customer_id)
        if known is not None:
            return known  # an id, once found, always finds the same aggregate
        named = named_id(self.tenant_id, customer_id)
        parsed = parse_id(customer_id)
        if parsed is not None and named.int not in self._loaded:
            self._fetch((named, parsed))  # one query for both aggregates a UUID may name
        found = self._get(named, Customer)
        if found is None and parsed is not None:
            found = self._get(parsed, Customer)
        if found is not None:
            self._customers[customer_id] = found
        return found

    def customer(self, customer_id: str) -> Customer:
        found = self.find_customer(customer_id)
        if found is None:
            raise CustomerNotFound(customer_id)
        return found

    def canonical(self, customer_id: str) -> str:
        return self._chain(customer_id)[-1].customer_id

    def _chain(self, customer_id: str) -> list[Customer]:
        """The customer and every survivor it redirects to, up to the canonical one."""
        current = self.customer(customer_id)
        chain = [current]
        for _ in range(MAX_CHAIN):
            if current.merged_into is None:
                return chain
            current = self.customer(current.merged_into)
            chain.append(current)
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
        known = self._groups.get(customer_id)
        if known is not None and all(c.version == v for c, v in known[0]):
            return known[1]
        chain = self._chain(customer_id)
        canonical = chain[-1].customer_id
        members = self.members(canonical)
        customers = [self.customer(m) for m in members]
        identifiers = {i for c in customers for i in c.links}
        names = frozenset(n for c in customers for n in c.names)
        group = Group(canonical, frozenset(members), frozenset(identifiers), names)
        # What it was computed from: redirects, members and their links, at these versions.
        self._groups[customer_id] = (tuple((c, c.version) for c in chain + customers), group)
        return group

    # identifiers

    def index(self, identifier: Identifier) -> IdentifierIndex | None:
        index_id = self.naming.index_id(self.tenant_id, identifier.kind, identifier.value)
        return self._get(index_id, IdentifierIndex)

    def index_or_new(self, identifier: Identifier) -> IdentifierIndex:
        kind, value = identifier.kind, identifier.value
        index_id = self.naming.index_id(self.tenant_id, kind, value)
        found = self._get(index_id, IdentifierIndex)
        if found is None:
            found = IdentifierIndex.named(index_id, self.tenant_id, kind, value)
            self.add(found)
            keys = self.naming.slip_key_ids(self.tenant_id, identifier)  # findable by its slips
            self._slip_indexes(keys)
            for key_id in keys:
                filed = self._slipped[key_id]
                filed.append(found.id.hex)
                self._new_slips.append(SlipKey(self.tenant_id, key_id, found.id.hex, len(filed)))
        return found

    def new_slips(self) -> list[SlipKey]:
        """The slip keys of the emails indexed by this state, saved with its events."""
        return list(self._new_slips)

    def slips_of(self, identifier: Identifier) -> list[Claim]:
        """The claims of the emails the tenant knows one slip from this one
        (`policy.one_slip_apart`), by value; none for anything but an email."""
        named = self._slip_indexes(self.naming.slip_key_ids(self.tenant_id, identifier))
        self._fetch(named)
        found = [
            index.identifier
            for i in named
            if (index := self._get(i, IdentifierIndex)) and index.identifier != identifier
        ]
        return [self.claim(i) for i in sorted(found) if one_slip_apart(identifier, i)]

    def claim(self, identifier: Identifier) -> Claim:
        index = self.index(identifier)
        version = index.version if index is not None else 0
        known = self._claims.get(identifier)
        if known is not None and known[0] is index and known[1] == version:
            return known[2]
        claim = self._claim(identifier, index)
        self._claims[identifier] = (index, version, claim)
        return claim

    @staticmethod
    def _claim(identifier: Identifier, index: IdentifierIndex | None) -> Claim:
        if index is None:
            return Claim(identifier)
        return Claim(
            identifier,
            holders=tuple(index.holders),
            released=frozenset(index.released),
            saturated=index.saturated,
            suppressed=index.suppressed,
            confirmed=dict(index.confirmed),
            presented_by=tuple(c for c in index.presented_by if c not in index.holders),
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
        if evidence_event_id not in self._filed:
            self._read_filings((evidence_event_id,))
        return self._filed[evidence_event_id]

    def file(self, filing: Filing) -> None:
        """Record a touchpoint's filing, saved with the aggregates' pending events."""
        self._filed[filing.event_id] = filing
        self._new_filings.append(filing)

    def new_filings(self) -> list[Filing]:
        return list(self._new_filings)

    def _read_filings(self, event_ids: Iterable[str]) -> list[Filing]:
        """The recorded filings of those touchpoints not read yet (one query)."""
        wanted = [e for e in dict.fromkeys(event_ids) if e not in self._filed]
        found = self.filings(self.tenant_id, wanted) if self.filings and wanted else {}
        for event_id in wanted:
            self._filed[event_id] = found.get(event_id)
        return list(found.values())

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


def _customer_keys(tenant_id: str, customer_id: str) -> list[UUID]:
    """The aggregate ids `find_customer` reads for a customer id."""
    parsed = parse_id(customer_id)
    return [named_id(tenant_id, customer_id), *([parsed] if parsed else [])]


def events_of(repository: Repository[UUID], aggregate_id: UUID) -> list[Any]:
    """Every stored event of one aggregate, oldest first."""
    return list(repository.event_store.get(aggregate_id))

"""Event-sourced identity: the aggregates and their events.

- `Customer`: a person as the platform knows them; links, unlinks, merges and splits are its
  events. A merge never moves identifiers or events: the survivor records the absorbed id, the
  absorbed customer records its survivor, and a split appends the reverse on both. Its id
  (`customer_id`) is the name it was registered with (naming.py), which never changes.
- `IdentifierIndex`: one per (tenant, kind, value), with a deterministic id, so two concurrent
  claims of one identifier collide at the recorder (optimistic concurrency) instead of creating
  two customers.
- `MergeCandidate`: one per pair of customers: proposals for review and every decision about the
  pair (accepted, rejected, separated by a split), so a rejected or split pair is never merged
  automatically.
- `SlipKey` (a record, not an aggregate): one per (tenant, slip key, email index): a new email
  finds the known ones one slip from it (slips.py) without reading every email of the tenant.
- `Filing` (a record, not an aggregate): one per touchpoint event: which customer the evidence was
  filed under, so a replay or a redelivery resolves to the same customer and never resurrects an
  unlinked identifier.

Every event says who (`actor`) and why (`reason` or `rule`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.identity.rules import Identifier
from services.identity.slips import slip_keys

# All identity ids derive from this namespace, so they are stable across processes and replicas.
IDENTITY_NAMESPACE = uuid5(NAMESPACE_URL, "https://cem.invalid/identity")


@lru_cache(maxsize=65536)  # resolutions derive the same ids over and over; uuid5 is not free
def stable_id(*parts: str) -> UUID:
    """A deterministic UUID for a tuple of strings (unambiguous: parts are length-prefixed)."""
    return uuid5(IDENTITY_NAMESPACE, length_prefixed(parts))


def length_prefixed(parts: tuple[str, ...]) -> str:
    """`3:abc2:de`: parts joined so that no two tuples give the same text."""
    return "".join(f"{len(p)}:{p}" for p in parts)


def named_id(tenant_id: str, name: str) -> UUID:
    """The aggregate id of the customer called `name` in the tenant."""
    return stable_id(tenant_id, "customer-name", name)


@dataclass(frozen=True)
class LinkInfo:
    """Why a customer holds an identifier, and since when (the touchpoint's time)."""

    source: str
    rule: str
    evidence_event_id: str | None
    actor: str
    seen_at: int = 0  # epoch microseconds of the touchpoint that linked it; 0 when unknown


class Customer(Aggregate):
    class Registered(Aggregate.Created):
        tenant_id: str
        seed: str
        reason: str
        actor: str
        source: str
        evidence_event_id: str | None
        name: str

    class IdentifierLinked(Aggregate.Event):
        kind: str
        value: str
        source: str
        rule: str
        evidence_event_id: str | None
        actor: str
        seen_at: int

    class NameRecorded(Aggregate.Event):
        """A touchpoint filed under it carried the person's name (normalised, person_names.py),
        which the customer had not been recorded with: identity keeps it as evidence of who
        the customer is (policy `_users_named`), never as an identifier."""

        name: str
        evidence_event_id: str | None

    class IdentifierUnlinked(Aggregate.Event):
        kind: str
        value: str
        reason: str
        actor: str
        erased: bool

    class ErasedIdentifierPresented(Aggregate.Event):
        """A touchpoint filed under it carried an identifier erased before (suppressed: it
        links nobody), recorded once per identifier: its events are sealed under that
        identifier's subject, so erasing this customer destroys that subject's key too."""

        kind: str
        value: str
        evidence_event_id: str | None

    class SkippedIdentifierCarried(Aggregate.Event):
        """A touchpoint filed under it was sealed under an identifier resolution skipped and it
        does not hold (a call from a home line alone), recorded once per identifier beside the
        identifier's `IdentifierIndex.CarriedWhileSkipped`: erasing this customer destroys that
        key too when nobody else may need it (its holders erased before, no other carrier)."""

        kind: str
        value: str

    class Erased(Aggregate.Event):
        """An admin erased the customer's personal data (`customer.erased`, issue 11): its
        identifiers were unlinked and suppressed, its subject keys destroyed, its warehouse rows
        deleted; `counts` says how many of each went. No identifier or name here."""

        reason: str
        actor: str
        erasure_event_id: str
        key_ids: list[str]  # the vault's names of the keys to destroy (HMACs, no subject)
        counts: dict[str, int]
        # The group when erased (opaque ids): whose rows the erasure deletes, even when read
        # again after a customer was merged in since. Absent from an `Erased` recorded before.
        members: tuple[str, ...] = ()

    class NamesForgotten(Aggregate.Event):
        """A customer merged into one that was erased (`Erased` is on the canonical customer):
        the names its touchpoints carried stop being evidence too."""

        erasure_event_id: str

    class ErasureCompleted(Aggregate.Event):
        """The keys and warehouse rows of an erasure are gone: how many of each."""

        erasure_event_id: str
        counts: dict[str, int]

    class ErasedRowsDeleted(Aggregate.Event):
        """The warehouse rows of an erasure whose keys went before (`ErasureCompleted`) are
        gone, deleted apart by the `erased-rows` group: how many per table."""

        erasure_event_id: str
        counts: dict[str, int]

    class MergeRecorded(Aggregate.Event):
        """What every merge and split event says: which merge, of whom into whom, who and why."""

        tenant_id: str
        merge_id: str
        survivor_id: str
        absorbed_id: str
        reason: str
        actor: str

    class CustomersMerged(MergeRecorded):
        """On the survivor: it absorbed another customer."""

    class MergedIntoSurvivor(MergeRecorded):
        """On the absorbed customer: its id now redirects to the survivor."""

    class CustomersSplit(MergeRecorded):
        """On the survivor: a merge is reversed."""

    class RestoredBySplit(MergeRecorded):
        """On the absorbed customer: it stands on its own again, exactly as before the merge."""

    @staticmethod
    def create_id(tenant_id: str, seed: str, name: str = "") -> UUID:
        # A named customer is found from its name alone (one read, no index to keep).
        return named_id(tenant_id, name) if name else stable_id(tenant_id, "customer", seed)

    @event(Registered)
    def __init__(
        self,
        tenant_id: str,
        seed: str,
        reason: str,
        actor: str,
        source: str,
        evidence_event_id: str | None,
        name: str = "",
    ) -> None:
        self.tenant_id = tenant_id
        self.seed = seed
        self.name = name
        self.links: dict[Identifier, LinkInfo] = {}
        self.merged_into: str | None = None
        self.merge_in: str | None = None  # the merge that absorbed this customer
        self.absorbed: dict[str, str] = {}  # merge id -> absorbed customer id, for active merges

    @property
    def merge_reasons(self) -> dict[str, str]:
        """merge id -> why, for active merges (kept beside `absorbed`; a customer restored from a
        snapshot taken before reasons were kept has none for its older merges)."""
        return self.__dict__.setdefault("_merge_reasons", {})

    @property
    def customer_id(self) -> str:
        """The id users, projections and every other identity event know the customer by."""
        return self.name or str(self.id)

    @event(IdentifierLinked)
    def link(
        self,
        kind: str,
        value: str,
        source: str,
        rule: str,
        evidence_event_id: str | None,
        actor: str,
        seen_at: int = 0,
    ) -> None:
        info = LinkInfo(source, rule, evidence_event_id, actor, seen_at)
        self.links[Identifier(kind, value)] = info

    @property
    def names(self) -> list[str]:
        """The person's names its touchpoints carried, normalised, in the order first seen
        (`NameRecorded`; a customer restored from a snapshot taken before names has none)."""
        return self.__dict__.setdefault("_names", [])

    @event(NameRecorded)
    def record_name(self, name: str, evidence_event_id: str | None) -> None:
        if name not in self.names:
            self.names.append(name)

    @property
    def presented_erased(self) -> list[Identifier]:
        """Identifiers erased before that its touchpoints carried, in the order first seen
        (`ErasedIdentifierPresented`; none for a customer restored from a snapshot before)."""
        return self.__dict__.setdefault("_presented_erased", [])

    @event(ErasedIdentifierPresented)
    def present_erased(self, kind: str, value: str, evidence_event_id: str | None) -> None:
        if Identifier(kind, value) not in self.presented_erased:
            self.presented_erased.append(Identifier(kind, value))

    @property
    def carried_skipped(self) -> list[Identifier]:
        """Identifiers it does not hold that its touchpoints were sealed under while resolution
        skipped them, in order (`SkippedIdentifierCarried`; none before 2026-12-05)."""
        return self.__dict__.setdefault("_carried_skipped", [])

    @event(SkippedIdentifierCarried)
    def carry_skipped(self, kind: str, value: str) -> None:
        if Identifier(kind, value) not in self.carried_skipped:
            self.carried_skipped.append(Identifier(kind, value))

    @property
    def erasure(self) -> dict[str, Any] | None:
        """The last erasure of the customer (`Erased`'s fields), None if never erased."""
        found: dict[str, Any] | None = self.__dict__.get("_erasure")
        return found

    @event(Erased)
    def erase(
        self,
        reason: str,
        actor: str,
        erasure_event_id: str,
        key_ids: list[str],
        counts: dict[str, int],
        members: tuple[str, ...] = (),
    ) -> None:
        self.__dict__["_erasure"] = {
            "reason": reason,
            "actor": actor,
            "erasure_event_id": erasure_event_id,
            "key_ids": list(key_ids),
            "counts": dict(counts),
            "members": list(members),
            "completed": None,
            "rows_deleted": None,
        }
        # The names its touchpoints carried stop being evidence of who it is (`policy`); the
        # `NameRecorded` events stay in the store (docs/erasure.md, "What erasure leaves").
        self.names.clear()

    @event(NamesForgotten)
    def forget_names(self, erasure_event_id: str) -> None:
        self.names.clear()

    @event(ErasureCompleted)
    def complete_erasure(self, erasure_event_id: str, counts: dict[str, int]) -> None:
        erasure = self.__dict__.get("_erasure")
        if erasure is not None and erasure["erasure_event_id"] == erasure_event_id:
            erasure["completed"] = dict(counts)

    @event(ErasedRowsDeleted)
    def record_erased_rows(self, erasure_event_id: str, counts: dict[str, int]) -> None:
        erasure = self.__dict__.get("_erasure")
        if erasure is not None and erasure["erasure_event_id"] == erasure_event_id:
            erasure["rows_deleted"] = dict(counts)

    @event(IdentifierUnlinked)
    def unlink(self, kind: str, value: str, reason: str, actor: str, erased: bool) -> None:
        self.links.pop(Identifier(kind, value), None)

    @event(CustomersMerged)
    def absorb(
        self,
        tenant_id: str,
        merge_id: str,
        survivor_id: str,
        absorbed_id: str,
        reason: str,
        actor: str,
    ) -> None:
        self.absorbed[merge_id] = absorbed_id
        self.merge_reasons[merge_id] = reason

    @event(MergedIntoSurvivor)
    def merge_into(
        self,
        tenant_id: str,
        merge_id: str,
        survivor_id: str,
        absorbed_id: str,
        reason: str,
        actor: str,
    ) -> None:
        self.merged_into, self.merge_in = survivor_id, merge_id

    @event(CustomersSplit)
    def split_off(
        self,
        tenant_id: str,
        merge_id: str,
        survivor_id: str,
        absorbed_id: str,
        reason: str,
        actor: str,
    ) -> None:
        self.absorbed.pop(merge_id, None)
        self.merge_reasons.pop(merge_id, None)

    @event(RestoredBySplit)
    def restore(
        self,
        tenant_id: str,
        merge_id: str,
        survivor_id: str,
        absorbed_id: str,
        reason: str,
        actor: str,
    ) -> None:
        self.merged_into, self.merge_in = None, None


class IdentifierIndex(Aggregate):
    """Who holds one identifier: the customers that linked it (merges never rewrite them)."""

    class Indexed(Aggregate.Created):
        tenant_id: str
        kind: str
        value: str

    class Claimed(Aggregate.Event):
        customer_id: str
        evidence_event_id: str | None
        rule: str

    class Released(Aggregate.Event):
        customer_id: str
        reason: str
        actor: str

    class Confirmed(Aggregate.Event):
        """A holder used it again (at: the touchpoint's time, epoch microseconds), which keeps a
        reassignable identifier (a mobile number) theirs; see `KindRule.reassign_after_days`."""

        customer_id: str
        at: int

    class Presented(Aggregate.Event):
        """A customer that does not hold it was filed with a touchpoint carrying it (a device
        beside somebody else's mobile): it counts toward the customers the device is shared by
        (see `policy._shared_by`), though it could not link it. `at`: the touchpoint's time."""

        customer_id: str
        at: int

    class Saturated(Aggregate.Event):
        """Shared by more customers than the tenant allows: it stops linking anyone."""

        limit: int
        evidence_event_id: str | None

    class CarriedAfterErasure(Aggregate.Event):
        """Suppressed, it was carried by a touchpoint filed under this customer (recorded once
        per customer, beside the customer's `ErasedIdentifierPresented`): every such customer
        has events sealed under its subject, so one erasure of them does not destroy the key
        while another that is not erased carries it."""

        customer_id: str

    class CarriedWhileSkipped(Aggregate.Event):
        """Skipped by resolution (a home line alone, a hub ...), it named the subject a
        touchpoint filed under this customer, which does not hold it, was sealed under
        (recorded once per customer, up to `changes.MAX_CARRIERS`): erasing its holders leaves
        the key to this customer's events while it is not erased. Read by erasure only."""

        customer_id: str

    class CarriersOverflowed(Aggregate.Event):
        """More customers than `changes.MAX_CARRIERS` carried it while skipped: its key is
        never destroyed by an erasure."""

    class ReadNationally(Aggregate.Event):
        """A touchpoint filed under this customer, happened `at` (epoch microseconds), carried a
        number written without its country code, invalid in the tenant's region and valid in
        several of its other regions (`readings`, this one among them: `normalise.
        ambiguous_readings`), when none was held, released or erased (recorded again for the
        same customer at most once a week, for up to `changes.MAX_READERS` customers). A later
        touchpoint carrying this reading in full may link it to that customer
        (`resolution._settle_readings`)."""

        customer_id: str
        at: int
        readings: list[str]

    class Suppressed(Aggregate.Event):
        """Erased: it never links anyone again, whatever is replayed."""

        reason: str
        actor: str

    @staticmethod
    def create_id(tenant_id: str, kind: str, value: str) -> UUID:
        # The unkeyed name: stores written before keyed names (`IndexNaming`) keep it.
        return stable_id(tenant_id, "identifier", kind, value)

    @classmethod
    def named(cls, index_id: UUID, tenant_id: str, kind: str, value: str) -> IdentifierIndex:
        """A new index under the id its store's naming gives (`IndexNaming.index_id`): the same
        `Indexed` event as the class call, under another id."""
        return cls._create(cls.Indexed, id=index_id, tenant_id=tenant_id, kind=kind, value=value)

    @event(Indexed)
    def __init__(self, tenant_id: str, kind: str, value: str) -> None:
        self.tenant_id = tenant_id
        self.identifier = Identifier(kind, value)
        self.holders: list[str] = []
        self.released: set[str] = set()
        self.confirmed: dict[str, int] = {}  # holder -> when its use was last confirmed
        self.saturated = False
        self.suppressed = False

    @event(Claimed)
    def claim(self, customer_id: str, evidence_event_id: str | None, rule: str) -> None:
        if customer_id not in self.holders:
            self.holders.append(customer_id)
        self.released.discard(customer_id)

    @event(Released)
    def release(self, customer_id: str, reason: str, actor: str) -> None:
        if customer_id in self.holders:
            self.holders.remove(customer_id)
        self.released.add(customer_id)
        self.confirmed.pop(customer_id, None)

    @event(Confirmed)
    def confirm(self, customer_id: str, at: int) -> None:
        self.confirmed[customer_id] = max(at, self.confirmed.get(customer_id, 0))

    @property
    def presented_by(self) -> list[str]:
        """Customers that presented it without holding it, in order (see `Presented`); kept
        beside `holders` (an index restored from a snapshot taken before them has none)."""
        return self.__dict__.setdefault("_presented_by", [])

    @event(Presented)
    def present(self, customer_id: str, at: int) -> None:
        if customer_id not in self.presented_by:
            self.presented_by.append(customer_id)

    @property
    def carried_after_erasure(self) -> list[str]:
        """Customers whose touchpoints carried it once suppressed, in order (see
        `CarriedAfterErasure`; none for an index restored from a snapshot before)."""
        return self.__dict__.setdefault("_carried_after_erasure", [])

    @event(CarriedAfterErasure)
    def carry_after_erasure(self, customer_id: str) -> None:
        if customer_id not in self.carried_after_erasure:
            self.carried_after_erasure.append(customer_id)

    @property
    def carried_while_skipped(self) -> list[str]:
        """Customers not holding it whose touchpoints were sealed under its subject while it was
        skipped, in order (see `CarriedWhileSkipped`; none before 2026-12-05)."""
        return self.__dict__.setdefault("_carried_while_skipped", [])

    @property
    def carriers_overflowed(self) -> bool:
        return bool(self.__dict__.get("_carriers_overflowed", False))

    @event(CarriedWhileSkipped)
    def carry_while_skipped(self, customer_id: str) -> None:
        if customer_id not in self.carried_while_skipped:
            self.carried_while_skipped.append(customer_id)

    @event(CarriersOverflowed)
    def overflow_carriers(self) -> None:
        self.__dict__["_carriers_overflowed"] = True

    @property
    def read_nationally(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """Customers whose touchpoints carried it as one of a national number's readings, in
        order, each with when and all the readings (see `ReadNationally`; none for an index
        restored from a snapshot before)."""
        return self.__dict__.setdefault("_read_nationally", {})

    @event(ReadNationally)
    def read_nationally_by(self, customer_id: str, at: int, readings: list[str]) -> None:
        known = self.read_nationally.get(customer_id)
        self.read_nationally[customer_id] = (max(at, known[0]) if known else at, tuple(readings))

    @event(Saturated)
    def saturate(self, limit: int, evidence_event_id: str | None) -> None:
        self.saturated = True

    @event(Suppressed)
    def suppress(self, reason: str, actor: str) -> None:
        self.suppressed = True


class MergeCandidate(Aggregate):
    """Everything decided about one pair of customers (stored in a fixed order of the two ids)."""

    class Opened(Aggregate.Created):
        tenant_id: str
        first_id: str
        second_id: str

    class Proposed(Aggregate.Event):
        proposer_id: str
        reason: str
        identifiers: list[str]
        evidence_event_id: str | None

    class Accepted(Aggregate.Event):
        merge_id: str
        reason: str
        actor: str

    class Rejected(Aggregate.Event):
        reason: str
        actor: str

    class Separated(Aggregate.Event):
        """A merge of the pair was split: they are different people."""

        merge_id: str
        reason: str
        actor: str

    @staticmethod
    def create_id(tenant_id: str, first_id: str, second_id: str) -> UUID:
        return stable_id(tenant_id, "pair", *sorted((first_id, second_id)))

    @event(Opened)
    def __init__(self, tenant_id: str, first_id: str, second_id: str) -> None:
        self.tenant_id = tenant_id
        self.first_id, self.second_id = first_id, second_id
        self.status: str | None = None  # None: never proposed; else open, accepted or rejected
        self.kept_apart = False
        self.proposal: dict[str, Any] = {}
        self.decision: dict[str, Any] = {}

    @event(Proposed)
    def propose(
        self, proposer_id: str, reason: str, identifiers: list[str], evidence_event_id: str | None
    ) -> None:
        self.status = "open"
        self.proposal = {
            "proposer_id": proposer_id,
            "reason": reason,
            "identifiers": list(identifiers),
            "evidence_event_id": evidence_event_id,
        }

    @event(Accepted)
    def accept(self, merge_id: str, reason: str, actor: str) -> None:
        self.status, self.kept_apart = "accepted", False
        self.decision = {"merge_id": merge_id, "reason": reason, "actor": actor}

    @event(Rejected)
    def reject(self, reason: str, actor: str) -> None:
        self.status, self.kept_apart = "rejected", True
        self.decision = {"reason": reason, "actor": actor}

    @event(Separated)
    def separate(self, merge_id: str, reason: str, actor: str) -> None:
        self.kept_apart = True


@dataclass(frozen=True)
class Filing:
    """Which customer one touchpoint event was filed under, decided once. Not an aggregate: a
    row the identity store keeps by (tenant, event id), written in the same transaction as the
    aggregates' events of the resolution that decided it (see `ports.IdentityStore`)."""

    tenant_id: str
    event_id: str
    home_id: str
    source: str
    # `path:reason` of each identifier of the touchpoint that linked nobody (never the value:
    # the store keeps no personal data of a touchpoint). Filings recorded before it: none.
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlipKey:
    """An email index filed under one of its slip keys (`slips.slip_keys`). Not an aggregate:
    a row the identity store keeps beside the filings, written in the transaction that creates
    the index (see `ports.IdentityStore`). It holds ids only: `key_id` is the key's id
    (`IndexNaming.slip_key_ids`), `index_id` the `IdentifierIndex`'s id, so an erasure leaves nothing here to delete (the
    index it names is suppressed, and a suppressed index is nobody's slip)."""

    tenant_id: str
    key_id: str
    index_id: str
    # Its place under the key (1, 2 ...), unique per key: two writers that read the key alike
    # and file an index under it both take the same place, so the second one's transaction
    # conflicts and runs again on what the first wrote (each then sees the other's email).
    seq: int


@lru_cache(maxsize=16_384)  # an email's keys are asked for again by each read of them
def _slip_key_ids(key: bytes, tenant_id: str, identifier: Identifier) -> tuple[str, ...]:
    """BLAKE2b of the tenant and the key (length-prefixed), 16 bytes in hex; keyed by `key`
    (BLAKE2b's own MAC mode) unless it is empty. Not `stable_id`: an email has a score of keys,
    which would crowd the ids resolutions derive over and over out of its cache."""
    return tuple(
        blake2b(f"{len(tenant_id)}:{tenant_id}{slip}".encode(), digest_size=16, key=key).hexdigest()
        for slip in slip_keys(identifier)
    )


_INDEX_LABEL = b"cem identifier index names v1"
_CHECK_LABEL = b"cem identifier index names check"
# The one aggregate that says how a store names its identifiers (`NamingChosen`).
NAMING_ID = stable_id("cem", "identity-store", "identifier-naming")
KEYED = "hmac-sha256"


@dataclass(frozen=True)
class IndexNaming:
    """How a store names its identifier indexes and email slip keys: the aggregate id of
    `email:ana@x.io` and the rows filed under her address's slips.

    Unkeyed (`key` None, stores written before 2026-12-05): uuid5 and BLAKE2b of the tenant and
    the identifier, which whoever holds a copy of the store and guesses an address can compute,
    learning whether the tenant knows it. Keyed: HMAC-SHA256 (the index id) and keyed BLAKE2b (the
    slip keys) under a key derived from the customer-id key (`kernel.opaque_ids`), so a copy of
    the store alone confirms nothing. A store keeps the naming it started with (`NamingChosen`)."""

    key: bytes | None = None

    @classmethod
    def keyed(cls, id_key: bytes) -> IndexNaming:
        return cls(hmac.new(id_key, _INDEX_LABEL, hashlib.sha256).digest())

    def index_id(self, tenant_id: str, kind: str, value: str) -> UUID:
        if self.key is None:
            return IdentifierIndex.create_id(tenant_id, kind, value)
        return _keyed_id(self.key, tenant_id, kind, value)

    def slip_key_ids(self, tenant_id: str, identifier: Identifier) -> tuple[str, ...]:
        return _slip_key_ids(self.key or b"", tenant_id, identifier)

    def check(self) -> str:
        """What the store records of its key: tells a key from another, reveals nothing."""
        assert self.key is not None
        return hmac.new(self.key, _CHECK_LABEL, hashlib.sha256).hexdigest()[:16]


@lru_cache(maxsize=65536)  # as `stable_id`: the same identifiers, over and over
def _keyed_id(key: bytes, tenant_id: str, kind: str, value: str) -> UUID:
    message = length_prefixed((tenant_id, "identifier", kind, value)).encode()
    return UUID(bytes=hmac.new(key, message, hashlib.sha256).digest()[:16], version=4)


class NamingChosen(Aggregate):
    """The store's one record of how it names identifiers (`IndexNaming`): written with its
    first resolution when the store starts keyed; a store without it is unkeyed."""

    class Chosen(Aggregate.Created):
        scheme: str
        check: str

    @staticmethod
    def create_id(scheme: str, check: str) -> UUID:
        return NAMING_ID

    @event(Chosen)
    def __init__(self, scheme: str, check: str) -> None:
        self.scheme, self.check = scheme, check


# Stores written before filings had a table of their own kept each filing as the one event of an
# aggregate (fields tenant_id, evidence_event_id, home_id, source, ignored) of this topic; each
# adapter copies them into its table once, when it creates the table.
LEGACY_FILED_TOPIC = "services.identity.domain:Filing.Filed"

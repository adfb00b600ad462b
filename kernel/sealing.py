"""Sealing events on their way into the log and opening them on their way out (issue 11, step 2
of docs/erasure.md): the glue between `kernel.shredding` (pure) and a `KeyVault`.

- `EventSealer` seals a stored event's personal fields under its subject's data key. The subject
  comes from a function the composition root gives (identity's normalisation, with the tenant's
  rules: the kernel may not import services).
- `EventOpener` puts them back for the stages that read the log (filing, projections,
  satisfaction, replay). It only *finds* keys, never makes one: a key the vault no longer holds
  opens the event as erased (the anonymous rest, `erased: true`).
- `KeyCache` keeps the data keys of hot subjects per process (most events come from customers
  seen before), bounded, least recently used out first. Erasing a subject (step 4) drops its key
  from the vault and from the erasing process's cache; every other process (embedded: the main
  process beside the filing process; distributed: ingest replicas, filing and projection workers,
  the query API) learns of it from the vault's destruction feed (`KeyVault.destructions_after`),
  which its cache reads before it uses a key (`KeyCache.follow`): at once before each batch a
  projection stage projects and each batch the ingest seals, at most every `FOLLOW_S` for the
  other readers. A key is also read from the vault again after `CACHE_TTL_S` at the latest,
  should the feed be unreadable for that long.
- `ErasureCheck` tells whether the subjects stored events name had a key destroyed at or after a
  time (`KeyVault.last_destroyed_at`): a webhook dead letter that arrived before an erasure and
  maps only now is the erased person's, and must not be sealed under a returning subject's new
  key (`services.ingest.channels.replay`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import orjson

from kernel.ports import Consumed, KeyVault
from kernel.shredding import (
    ERASED,
    SEALED,
    UNATTRIBUTED,
    NotUnderThisKey,
    TenantKeyring,
    key_fingerprint,
    open_sealed,
    seal,
    sealed_fingerprint,
    sealed_key_id,
    subject_key_id,
)
from schemas.envelope import Event
from schemas.families import payload_model
from schemas.personal import payload_fields
from schemas.validate import decode, decode_parsed

log = logging.getLogger(__name__)

# Data keys kept per process: 32 bytes each plus their names, a few MB at most.
CACHE_SIZE = 50_000
# What a personal field an erased event's type requires reads as (`readable`).
ERASED_TEXT = "(erased)"
# How long a process keeps a key it read before asking the vault again: the bound on how long a
# key erased by another process is still used here while the destruction feed cannot be read.
CACHE_TTL_S = 300.0
# How often a cache in use reads the vault's destruction feed (one small query): the bound on how
# long a key another process destroyed is still used here, except where a stage asks at once.
FOLLOW_S = 1.0

# (tenant id, the event's `customer` member as stored) -> the subject (`shredding.subject_of`).
SubjectOf = Callable[[str, dict[str, Any]], str]


class KeyCache:
    """Data keys by (tenant, key id), bounded (LRU), each kept `ttl_s` at most, and dropped once
    the vault's destruction feed lists them (`follow`). Thread-safe."""

    def __init__(
        self,
        size: int = CACHE_SIZE,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        follow_s: float = FOLLOW_S,
    ) -> None:
        self.size, self.ttl_s, self.clock, self.follow_s = size, ttl_s, clock, follow_s
        self._keys: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        # The destruction feed: where this cache read it to, and when it last asked.
        self._feed_lock = threading.Lock()
        self._feed_at: int | None = None
        self._asked_at = float("-inf")
        self._failed_at = float("-inf")  # when reading the feed last failed
        self._on_destroyed: list[Callable[[], None]] = []
        self._drops = 0  # how many times `follow` dropped keys: a read older than one is stale

    def get(self, tenant_id: str, key_id: str) -> bytes | None:
        with self._lock:
            found = self._keys.get((tenant_id, key_id))
            if found is None:
                return None
            if found[1] <= self.clock():  # read again from the vault: it may have been erased
                del self._keys[(tenant_id, key_id)]
                return None
            self._keys.move_to_end((tenant_id, key_id))
            return found[0]

    def drops(self) -> int:
        """Read before a key is read from the vault, and handed to `put`."""
        return self._drops

    def put(self, tenant_id: str, key_id: str, key: bytes, drops: int | None = None) -> None:
        """Keep `key`; with `drops` (`drops()` before the vault was read) only if `follow`
        dropped nothing since: a key read before its destruction, and put after the feed listed
        it, would otherwise stay until its time to live."""
        with self._lock:
            if drops is not None and drops != self._drops:
                return
            self._keys[(tenant_id, key_id)] = (key, self.clock() + self.ttl_s)
            self._keys.move_to_end((tenant_id, key_id))
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def drop(self, tenant_id: str, key_ids: list[str]) -> None:
        with self._lock:
            for key_id in key_ids:
                self._keys.pop((tenant_id, key_id), None)

    def on_destroyed(self, listener: Callable[[], None]) -> None:
        """Call `listener` after `follow` dropped keys (what was opened with them is stale)."""
        self._on_destroyed.append(listener)

    def follow(self, vault: KeyVault, *, now: bool = False, strict: bool | None = None) -> None:
        """Drop the keys the vault's destruction feed lists since this cache last read it, in
        whichever process destroyed them. Read at most every `follow_s`, or at once with `now`.

        Called before a key is taken from the cache or the vault, so the first read (the feed's
        end) comes before any key this cache holds was read from the vault: a key destroyed
        after it was read is on the feed after that point. `strict` (by default `now`): a feed
        that cannot be read raises (the caller's batch is retried, as for a vault that is down),
        and a cache never used reads nothing; otherwise the cache goes on as it was and logs
        it, its keys still bounded by `ttl_s`."""
        strict = now if strict is None else strict
        if not now and self.clock() - self._asked_at < self.follow_s:
            return
        if strict and self._feed_at is None and not self._keys:
            return  # never used yet: nothing to drop, and its first use reads the feed first
        # Held until the keys are dropped and the listeners heard it: no other reader finds the
        # feed read while the keys it listed are still cached.
        with self._feed_lock:
            asked_at = self.clock()
            if not now and asked_at - self._asked_at < self.follow_s:
                return  # another thread read it meanwhile
            if not strict and asked_at - self._failed_at < self.follow_s:
                return  # it failed just now: go on with the cache rather than queue on the vault
            first = self._feed_at is None
            try:
                self._feed_at, destroyed = vault.destructions_after(self._feed_at)
            except Exception as exc:
                self._failed_at = self.clock()
                if strict:
                    raise
                log.warning("the key vault's destruction feed cannot be read: %s", exc)
                return
            self._asked_at = asked_at
            with self._lock:
                if first:  # keys read before the feed's first position was known (it failed)
                    destroyed = list(self._keys)
                for named in destroyed:
                    self._keys.pop(named, None)
                if first or destroyed:  # a read older than this one may hold a destroyed key
                    self._drops += 1
            if destroyed:
                for listener in self._on_destroyed:
                    listener()


class EventSealer:
    """Seals stored events (their JSON bytes) under their subjects' data keys."""

    def __init__(
        self,
        vault: KeyVault,
        platform_key: bytes,
        subject_of: SubjectOf,
        cache: KeyCache,
        clear_types: frozenset[str] = frozenset(),
    ) -> None:
        """`clear_types`: event types stored as they are, never sealed — an erasure's own event
        (no personal data), which must still name its customer after it destroyed the keys it
        would have been sealed under, when its batch is filed again."""
        self.vault, self.subject_of, self.cache = vault, subject_of, cache
        self.clear_types = clear_types
        self._keyring = TenantKeyring(platform_key)

    def seal_value(self, value: bytes) -> bytes:
        """The stored event's bytes with its personal fields sealed (`kernel.shredding.seal`);
        bytes already sealed are refused (ShreddingError), never sealed twice."""
        return self.seal_values([value])[0]

    def seal_values(self, values: Sequence[bytes]) -> list[bytes]:
        """`seal_value` of each, the batch's new subjects' keys made in one vault transaction."""
        events = [orjson.loads(value) for value in values]
        clear = [event.get("type") in self.clear_types for event in events]
        if not all(clear):
            # At once (one small query): a key another process destroyed is never used to seal
            # after its destruction committed. A feed that cannot be read is logged, not raised.
            self.cache.follow(self.vault, now=True, strict=False)
        named: list[tuple[str, str]] = []  # (tenant, key id) of each event
        for event in (e for e, kept in zip(events, clear, strict=True) if not kept):
            tenant_id = str(event["tenant_id"])
            named.append((tenant_id, self._key_id(tenant_id, _customer(event))))
        keys: dict[tuple[str, str], bytes] = {}
        missing: dict[str, list[str]] = {}
        for tenant_id, key_id in dict.fromkeys(named):
            found = self.cache.get(tenant_id, key_id)
            if found is None:
                missing.setdefault(tenant_id, []).append(key_id)
            else:
                keys[(tenant_id, key_id)] = found
        drops = self.cache.drops()
        for tenant_id, key_ids in missing.items():
            for key_id, key in self.vault.get_or_create_many(tenant_id, key_ids).items():
                keys[(tenant_id, key_id)] = key
                self.cache.put(tenant_id, key_id, key, drops)
        names = iter(named)
        prints: dict[tuple[str, str], str] = {}  # one fingerprint per key of the batch
        sealed: list[bytes] = []
        for value, event, kept in zip(values, events, clear, strict=True):
            if kept:
                sealed.append(value)
                continue
            tenant_id, key_id = next(names)
            key = keys[(tenant_id, key_id)]
            if (tenant_id, key_id) not in prints:
                prints[(tenant_id, key_id)] = key_fingerprint(key)
            print_ = prints[(tenant_id, key_id)]
            sealed.append(
                orjson.dumps(seal(event, key_id, key, tenant_id, str(event["event_id"]), print_))
            )
        return sealed

    def _key_id(self, tenant_id: str, customer: dict[str, Any]) -> str:
        return subject_key_id(self._keyring.of(tenant_id), self.subject_of(tenant_id, customer))

    def key_ids_named(self, value: bytes) -> list[tuple[str, str]]:
        """(tenant, key id) of each subject a stored event in clear names: the one it would be
        sealed under, and each of its identifiers' own (`one_by_one`), for an erasure destroys
        the key of every identifier of the person, and a touchpoint identity never saw may
        have its strongest identifier new (a shop's customer id) beside an erased email. None
        for a type stored in clear, nor the unattributed subject (no erasure destroys its key)."""
        event = orjson.loads(value)
        if event.get("type") in self.clear_types:
            return []
        tenant_id, customer = str(event["tenant_id"]), _customer(event)
        subjects = [self.subject_of(tenant_id, c) for c in (customer, *one_by_one(customer))]
        keys = self._keyring.of(tenant_id)
        return [
            (tenant_id, subject_key_id(keys, subject))
            for subject in dict.fromkeys(subjects)
            if subject != UNATTRIBUTED
        ]


def _customer(event: dict[str, Any]) -> dict[str, Any]:
    customer = event.get("customer")
    return customer if isinstance(customer, dict) else {}


def one_by_one(customer: dict[str, Any]) -> list[dict[str, Any]]:
    """Each identifier of an event's `customer` member as a member of its own (each external id
    apart), so that its subject is the one that identifier alone names."""
    alone: list[dict[str, Any]] = []
    for name, value in customer.items():
        if name == "external_ids" and isinstance(value, dict):
            alone.extend({name: {namespace: v}} for namespace, v in value.items() if v)
        elif value:
            alone.append({name: value})
    return alone


# How far apart the ingest hosts' clocks and the vault's may be for the replay's erasure check
# (`ErasureCheck.erased_since`): a minute, well beyond what NTP leaves between hosts.
CLOCK_MARGIN = timedelta(minutes=1)


class ErasureCheck:
    """Whether any subject that stored events name (`EventSealer.key_ids_named`) had a key
    destroyed at or after a time, for one run over a batch of old deliveries. Each id's time is
    read from the vault on every check, never kept from one letter to the next: an erasure filed
    while the run goes on (minutes, for a large backlog replayed from the shell) must refuse the
    letters checked after it (a time kept from an earlier letter let one through, published
    under the returning subject's new key: a review)."""

    def __init__(self, sealer: EventSealer) -> None:
        self.sealer = sealer

    def erased_since(self, values: Sequence[bytes], since: datetime) -> bool:
        """True when a key of a subject the events name was destroyed at or after `since` less
        `CLOCK_MARGIN` (or at an unknown time: `DESTROYED_AT_UNKNOWN`, after every time): what
        arrived then is the erased person's, even when the subject came back since with a new
        key. The margin: `since` is the ingest host's clock, the destruction's the vault's (the
        PostgreSQL server's when distributed); a host running ahead of it by less than the
        margin lets no letter of the erased person through. What it costs: a returning
        subject's letter that arrived within the margin after the erasure is settled erased."""
        for named in dict.fromkeys(n for v in values for n in self.sealer.key_ids_named(v)):
            at = self.sealer.vault.last_destroyed_at(*named)
            if at is not None and at >= since - CLOCK_MARGIN:
                return True
        return False


@runtime_checkable
class ChecksErasures(Protocol):
    """A publisher that seals under subjects' keys (`cem.sealing.SealingPublisher`): one whose
    subjects an erasure can have destroyed. A publisher in clear has no such check."""

    def erasure_check(self) -> ErasureCheck: ...


class EventOpener:
    """Opens sealed stored events; an event never sealed passes through untouched."""

    def __init__(self, vault: KeyVault, cache: KeyCache) -> None:
        self.vault, self.cache = vault, cache

    def open_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event with its personal fields back, or the anonymous rest marked `erased` when
        the vault no longer has the key it was sealed under; a blob that does not open raises
        ShreddingError.

        A key id is a fixed function of the subject, so a subject that comes back after its
        erasure (the same email) gets a new key under the same id: an event sealed before the
        erasure then meets a key it was not sealed under. It opens erased when the vault holds
        a tombstone of the id with the fingerprint of the key it names (`kf`: that key was
        destroyed), and raises otherwise (tampered, copied, or sealed under the present key).
        A blob sealed before fingerprints were opens erased on the tombstone alone. Asked only
        on that failure, so opening costs no more vault reads."""
        key_id = sealed_key_id(event)
        if key_id is None:
            return event
        tenant_id, event_id = str(event["tenant_id"]), str(event["event_id"])
        self.cache.follow(self.vault)
        key = self.cache.get(tenant_id, key_id)
        if key is not None:
            try:
                return open_sealed(event, key, tenant_id, event_id)
            except NotUnderThisKey:  # the cache may hold a key destroyed since: ask the vault
                self.cache.drop(tenant_id, [key_id])
        drops = self.cache.drops()
        key = self.vault.find(tenant_id, key_id)
        if key is not None:  # an erased subject's absence is not cached: it stays absent
            self.cache.put(tenant_id, key_id, key, drops)
        try:
            return open_sealed(event, key, tenant_id, event_id)
        except NotUnderThisKey:
            if not self.vault.destroyed(tenant_id, key_id, sealed_fingerprint(event)):
                raise
            return open_sealed(event, None, tenant_id, event_id)

    def follow(self) -> None:
        """Drop every key destroyed so far, in any process (`KeyCache.follow` at once): a stage
        calls it before the events of a batch are opened, so a filing appended after an
        erasure's keys were destroyed is never opened with one of them. Raises when the vault
        cannot be read (LogUnavailable: the batch is retried)."""
        self.cache.follow(self.vault, now=True)

    def close(self) -> None:
        self.vault.close()


def maybe_sealed(value: bytes) -> bool:
    """False when the bytes surely hold no sealed event (the cheap test before parsing): a
    sealed event's JSON has a `"sealed"` member. True may still be a clear event whose text
    says it; the parsed event decides (`shredding.sealed_key_id`)."""
    return f'"{SEALED}"'.encode() in value


def readable(event: dict[str, Any]) -> dict[str, Any]:
    """An opened event as the readers decode it (`decode_parsed`). An erased one (its key
    destroyed) loses its `erased` mark, and each personal payload field its type requires gets
    `ERASED_TEXT` (a page view's url, a resolved alert's note), so that its rows are built with
    the anonymous rest: same types, times, scores and amounts, no personal data. The optional
    personal fields stay absent (empty in the rows)."""
    if event.get(ERASED) is not True:
        return event
    rest = {k: v for k, v in event.items() if k != ERASED}
    event_type, payload = str(rest.get("type", "")), rest.get("payload")
    found = payload_model(event_type)
    if found is not None and isinstance(payload, dict):
        fields = found[0].model_fields
        missing = [
            name
            for name in payload_fields(event_type)
            if name not in payload and name in fields and fields[name].is_required()
        ]
        rest["payload"] = {**payload, **dict.fromkeys(missing, ERASED_TEXT)}
    return rest


def decode_opened(value: bytes, opener: EventOpener | None) -> Event:
    """`schemas.validate.decode` of a stored event's bytes, opened first when sealed."""
    if opener is None or not maybe_sealed(value):
        return decode(value)
    return decode_parsed(readable(opener.open_event(orjson.loads(value))))


def opening_decode(opener: EventOpener | None) -> Callable[[Consumed], Event]:
    """A `kernel.processing.Decode` that opens sealed records (`decode_value` when None)."""
    return lambda record: decode_opened(record.value, opener)

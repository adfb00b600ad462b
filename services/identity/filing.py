"""The filer of the filing stage: which customer each touchpoint is filed under.

Implements `kernel.processing.Filer` over the identity resolver, for the filing stage
(`kernel.filings`), the one consumer of the touchpoints: its answer goes on the log as the event's
filing, which every projection and every replay reads instead of asking identity again. Every
answer is also a recorded `Filing` in the identity store, so a touchpoint delivered to the filing
stage again (after a crash between appending its filings and committing) gets the same customer,
and the rows written under it never need rewriting: merges and splits change which customers a
read gathers (the identity map), never where a row was filed.

Resolution runs under a lock, and answers are kept in a bounded cache (a filing never changes),
so a batch redelivered to the same process is answered from memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from eventsourcing.persistence import PersistenceError

from kernel.processing import Unfiled
from schemas.envelope import CustomerRef, Event
from services.identity.errors import IdentityBusy
from services.identity.person_names import name_in
from services.identity.resolver import IdentityResolver

# The store cannot answer now: the whole batch is retried later, nothing is dead-lettered.
TRANSIENT = (PersistenceError, IdentityBusy)
CHUNK = 500  # touchpoints per identity transaction: bounds the work redone after a conflict
CACHE_SIZE = 200_000
# (identifiers, event id, source, time, the person's name it carries or "")
Touchpoint = tuple[CustomerRef, str, str, datetime, str]


class IdentityFiler:
    def __init__(
        self, resolver: IdentityResolver, chunk: int = CHUNK, cache_size: int = CACHE_SIZE
    ) -> None:
        self.resolver, self.chunk, self.cache_size = resolver, chunk, cache_size
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()

    def file(self, events: Sequence[Event]) -> list[str | Unfiled]:
        """The customer of each event, in order; resolved per tenant in log order."""
        with self._lock:
            answers: dict[int, str | Unfiled] = {}
            pending: dict[str, list[int]] = {}
            for i, event in enumerate(events):
                cached = self._cached(event)
                if cached is None:
                    pending.setdefault(event.tenant_id, []).append(i)
                else:
                    answers[i] = cached
            for tenant_id, indexes in pending.items():
                for start in range(0, len(indexes), self.chunk):
                    chunk = indexes[start : start + self.chunk]
                    filed = self._resolve(tenant_id, [events[i] for i in chunk])
                    answers.update(zip(chunk, filed, strict=True))
            return [answers[i] for i in range(len(events))]

    def _cached(self, event: Event) -> str | None:
        key = (event.tenant_id, str(event.event_id))
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def _remember(self, event: Event, home_id: str) -> None:
        self._cache[(event.tenant_id, str(event.event_id))] = home_id
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _resolve(self, tenant_id: str, events: list[Event]) -> list[str | Unfiled]:
        touchpoints: list[Touchpoint] = [
            (e.customer, str(e.event_id), e.source_id, e.derived_at, name_in(e.payload))
            for e in events
        ]
        try:
            resolved = self.resolver.resolve_batch(tenant_id, touchpoints)
            filed: list[str | Unfiled] = [r.home_id for r in resolved]
        except TRANSIENT:
            raise
        except Exception:  # one touchpoint cannot be resolved: find it, file the others
            filed = [self._resolve_one(tenant_id, touchpoint) for touchpoint in touchpoints]
        for event, home in zip(events, filed, strict=True):
            if isinstance(home, str):
                self._remember(event, home)
        return filed

    def _resolve_one(self, tenant_id: str, touchpoint: Touchpoint) -> str | Unfiled:
        try:
            ref, event_id, source, at, name = touchpoint
            return self.resolver.resolve(tenant_id, ref, event_id, source, at=at, name=name).home_id
        except TRANSIENT:
            raise
        except Exception as exc:
            return Unfiled(f"identity resolution failed: {type(exc).__name__}: {exc}")

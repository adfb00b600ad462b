"""Subjects' data keys in memory: the KeyVault twin for unit tests (wrapped as the real ones)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from kernel.clock import SystemClock
from kernel.ports import DESTROYED_AT_UNKNOWN, Clock
from kernel.shredding import (
    TenantKeyring,
    check_key_id,
    keep_first,
    keep_first_many,
    key_fingerprint,
    unwrap_data_key,
)


class MemoryKeyVault:
    """A KeyVault in a dict: (tenant, key id) -> the data key wrapped by the tenant key."""

    def __init__(self, platform_key: bytes, clock: Clock | None = None) -> None:
        self._keyring = TenantKeyring(platform_key)
        self._lock = threading.Lock()
        self._clock = clock or SystemClock()
        self.wrapped: dict[tuple[str, str], bytes] = {}
        self.tombstones: set[tuple[str, str]] = set()
        # When each tombstone's id was last destroyed; a tombstone without one was kept before
        # times were (`last_destroyed_at`: unknown).
        self.destroyed_at: dict[tuple[str, str], datetime] = {}
        self.fingerprints: dict[tuple[str, str], set[str]] = {}  # of the keys destroyed
        self.destructions: list[tuple[str, str]] = []  # the feed: its position is its length

    def get_or_create(self, tenant_id: str, key_id: str) -> bytes:
        def insert_then_read(offered: bytes) -> bytes:
            with self._lock:
                return self.wrapped.setdefault((tenant_id, key_id), offered)

        return keep_first(self._keyring.of(tenant_id), key_id, insert_then_read)

    def get_or_create_many(self, tenant_id: str, key_ids: Sequence[str]) -> dict[str, bytes]:
        def insert_then_read(offered: dict[str, bytes]) -> dict[str, bytes]:
            with self._lock:
                return {
                    key_id: self.wrapped.setdefault((tenant_id, key_id), wrapped)
                    for key_id, wrapped in offered.items()
                }

        return keep_first_many(self._keyring.of(tenant_id), key_ids, insert_then_read)

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        with self._lock:
            wrapped = self.wrapped.get((tenant_id, check_key_id(key_id)))
        if wrapped is None:
            return None
        return unwrap_data_key(self._keyring.of(tenant_id), key_id, wrapped)

    def destroy(self, tenant_id: str, key_ids: Sequence[str]) -> int:
        keys = self._keyring.of(tenant_id)
        now: datetime = self._clock.now()
        with self._lock:
            found = 0
            for key_id in dict.fromkeys(check_key_id(k) for k in key_ids):
                wrapped = self.wrapped.pop((tenant_id, key_id), None)
                self.tombstones.add((tenant_id, key_id))
                before = self.destroyed_at.get((tenant_id, key_id))
                self.destroyed_at[(tenant_id, key_id)] = now if before is None else max(before, now)
                self.destructions.append((tenant_id, key_id))
                # Recorded even when no key was held: the id is then known to have none.
                recorded = self.fingerprints.setdefault((tenant_id, key_id), set())
                if wrapped is not None:
                    found += 1
                    recorded.add(key_fingerprint(unwrap_data_key(keys, key_id, wrapped)))
        return found

    def destroyed(self, tenant_id: str, key_id: str, fingerprint: str | None = None) -> bool:
        with self._lock:
            named = (tenant_id, check_key_id(key_id))
            if named not in self.tombstones:
                return False
            known = self.fingerprints.get(named)  # None: a tombstone from before fingerprints
            return fingerprint is None or known is None or fingerprint in known

    def last_destroyed_at(self, tenant_id: str, key_id: str) -> datetime | None:
        with self._lock:
            named = (tenant_id, check_key_id(key_id))
            if named not in self.tombstones:
                return None
            return self.destroyed_at.get(named, DESTROYED_AT_UNKNOWN)

    def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
        with self._lock:
            end = len(self.destructions)
            return end, [] if position is None else self.destructions[position:end]

    def close(self) -> None:
        pass

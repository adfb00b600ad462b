"""API keys in memory (the twin for unit tests), and the key format every key store shares.

A secret reads `cem_<key_id>_<random>`: the key id lets a store find the one row to check without
scanning, and the random part (256 bits from `secrets`) is what makes the key unguessable.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kernel.ports import ROLES, Principal
from kernel.tenants import check_tenant_id

SECRET_PATTERN = re.compile(r"^cem_([0-9a-f]{16})_([A-Za-z0-9_\-]{32,128})$")
MAX_NAME_LENGTH = 200


def check_new_key(tenant_id: str, role: str, name: str) -> None:
    """Reject what would make a key unusable or ambiguous, before anything is stored."""
    check_tenant_id(tenant_id)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"key name is longer than {MAX_NAME_LENGTH} characters")


def mint_key() -> tuple[str, str]:
    """A fresh (key_id, secret)."""
    key_id = secrets.token_hex(8)
    return key_id, f"cem_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(secret: str) -> str | None:
    """The key id inside a well-formed secret, else None (so malformed input never hits storage)."""
    found = SECRET_PATTERN.fullmatch(secret) if isinstance(secret, str) else None
    return found.group(1) if found else None


def digest(secret: str) -> str:
    """What is stored instead of the secret.

    A plain SHA-256 is right here, unlike for passwords: the secret carries 256 random bits, so
    there is no dictionary to try and brute force is hopeless however fast the hash. A slow KDF
    (bcrypt, scrypt) would only add its cost to every authenticated request.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    # Constant-time, so response timing does not reveal how much of a guess was right.
    return hmac.compare_digest(digest(secret), stored_digest)


@dataclass(frozen=True)
class StoredKey:
    """A key as a store keeps it: metadata and a digest, never the secret."""

    key_id: str
    tenant_id: str
    role: str
    name: str
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None = None

    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, tenant_id=self.tenant_id, role=self.role)

    def public(self) -> dict[str, Any]:
        """What `list` shows: everything but the digest."""
        return {
            "key_id": self.key_id,
            "tenant_id": self.tenant_id,
            "role": self.role,
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "active": self.revoked_at is None,
        }


def principal_of(secret: str, lookup: Callable[[str], StoredKey | None]) -> Principal | None:
    """The principal of a valid, unrevoked key, looking its record up by the id in the secret."""
    key_id = key_id_of(secret)
    stored = lookup(key_id) if key_id else None
    if stored is None or stored.revoked_at is not None:
        return None
    return stored.principal() if matches(secret, stored.secret_sha256) else None


class ValidKeyCache:
    """Valid keys remembered briefly, since authentication runs on every request. The TTL bounds how
    long a revocation made elsewhere (another process or replica) takes to apply; a revocation
    through the same store applies at once (`forget`). Thread-safe."""

    def __init__(self, ttl_s: float = 1.0, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[StoredKey, float]] = {}
        self._lock = threading.Lock()

    def lookup(self, key_id: str, load: Callable[[str], StoredKey | None]) -> StoredKey | None:
        with self._lock:
            cached = self._entries.get(key_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        stored = load(key_id)
        if stored is not None and stored.revoked_at is None:
            self._remember(stored)
        return stored

    def _remember(self, stored: StoredKey) -> None:
        # Only existing key ids are cached, so random guesses cannot grow the cache.
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[stored.key_id] = (stored, time.monotonic() + self.ttl_s)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._entries.pop(key_id, None)


class MemoryKeyStore:
    """A KeyStore in memory, with the SQLite store's rules. Thread-safe."""

    def __init__(self) -> None:
        self._keys: dict[str, StoredKey] = {}
        self._lock = threading.Lock()

    def create(self, tenant_id: str, role: str, name: str = "") -> tuple[str, str]:
        check_new_key(tenant_id, role, name)
        key_id, secret = mint_key()
        stored = StoredKey(key_id, tenant_id, role, name, digest(secret), datetime.now(UTC))
        with self._lock:
            self._keys[key_id] = stored
        return key_id, secret

    def authenticate(self, secret: str) -> Principal | None:
        return principal_of(secret, self._keys.get)

    def revoke(self, key_id: str) -> None:
        """Revoke a key (again is a no-op); KeyError if there is no such key."""
        with self._lock:
            stored = self._keys[key_id]
            if stored.revoked_at is None:
                self._keys[key_id] = replace(stored, revoked_at=datetime.now(UTC))

    def list(self, tenant_id: str) -> builtins.list[dict[str, Any]]:
        """The tenant's keys, oldest first, without secrets or digests."""
        with self._lock:
            mine = [k for k in self._keys.values() if k.tenant_id == tenant_id]
        return [k.public() for k in sorted(mine, key=lambda k: (k.created_at, k.key_id))]

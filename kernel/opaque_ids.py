"""Customer ids that carry no personal data: a keyed hash (HMAC-SHA256) of what a customer is
first seen with.

A readable id (`email:maria@example.com`) would copy an identifier into every URL, log line,
Kafka key and header and table key that names the customer, where no erasure reaches it. A hash
without a key would not do: anyone can hash a list of guessed emails and compare. The key is
derived from the platform key of `kernel.secrets` (CEM_SECRET_KEY, else the data directory's
`secret.key`) under its own label, so the channel-secret key is never used for two purposes and
an id reveals nothing about it. Derived, not random: the same first identifier at the same
version gives the same id in every run and on every replica sharing the key, so a re-resolution
of the same log (a migration, a rebuilt identity store) names customers as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "c_"
_LABEL = b"cem customer ids v1"
_ID_BYTES = 16  # 128 bits: collisions are out of reach; naming still checks and retries


def customer_id_key(platform_key: bytes) -> bytes:
    """The key customer ids are derived with, derived from the platform key."""
    return hmac.new(platform_key, _LABEL, hashlib.sha256).digest()


def opaque_customer_id(key: bytes, tenant_id: str, material: str) -> str:
    """`c_` and 26 base32 letters, derived from a tenant's `material` (a seed naming what the
    customer was first seen with). The tenant is part of the input, so two tenants' customers
    first seen with the same identifier get unrelated ids."""
    message = tenant_id.encode() + b"\x00" + material.encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:_ID_BYTES]
    return PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()

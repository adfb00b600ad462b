"""The seal the platform's own ingest puts on the records it publishes (RELIABILITY S08).

A record in the stored form (`tenant_id`, `received_at`, `derived_at` in the body) is trusted as
it stands: the ingest validated it, stamped the tenant from the credential and applied the
idempotency rule. Anyone else able to write to the topic must not get that trust, so the ingest
adds an HMAC-SHA256 of the record's value, under a key only the platform holds, in the
`cem_seal` header; a consumer takes the stored form only with a seal it can verify.
"""

from __future__ import annotations

import hashlib
import hmac

from kernel.ports import Consumed, Record

SEAL_HEADER = "cem_seal"


def seal_of(value: bytes, key: bytes) -> bytes:
    return hmac.new(key, value, hashlib.sha256).hexdigest().encode("ascii")


def sealed(record: Record, key: bytes) -> Record:
    """The record with its seal header (any header of that name a caller set is replaced)."""
    headers = tuple(h for h in record.headers if h[0] != SEAL_HEADER)
    return Record(record.key, record.value, (*headers, (SEAL_HEADER, seal_of(record.value, key))))


def is_sealed(rec: Consumed, key: bytes) -> bool:
    """True when the record carries exactly one seal and it is the value's (constant time)."""
    seals = [value for name, value in rec.headers if name == SEAL_HEADER]
    return len(seals) == 1 and hmac.compare_digest(seals[0], seal_of(rec.value, key))

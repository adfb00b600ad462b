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

from kernel.filings import CUSTOMER_HEADER, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER
from kernel.ports import Consumed, Record

SEAL_HEADER = "cem_seal"
# A filing's own seal: it binds the customer and the touchpoint's position to the bytes, so the
# value's seal an ingested touchpoint already carries cannot be copied onto a forged filing.
FILING_SEAL_HEADER = "cem_filing_seal"
_FILING_FIELDS = (CUSTOMER_HEADER, SOURCE_PARTITION_HEADER, SOURCE_OFFSET_HEADER)


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


def _filing_seal(fields: list[bytes], value: bytes, key: bytes) -> bytes:
    message = b"\0".join([b"cem-filing", *fields, value])
    return hmac.new(key, message, hashlib.sha256).hexdigest().encode("ascii")


def _filing_fields(headers: tuple[tuple[str, bytes], ...]) -> list[bytes] | None:
    """The values of the headers a filing seal covers, each present exactly once; else None."""
    found: list[bytes] = []
    for name in _FILING_FIELDS:
        values = [value for header, value in headers if header == name]
        if len(values) != 1:
            return None
        found.append(values[0])
    return found


def sealed_filing(record: Record, key: bytes) -> Record:
    """A filing with the value's seal (so its event reads as the ingest's) and its own seal over
    the customer, the touchpoint's position and the value."""
    fields = _filing_fields(record.headers)
    if fields is None:
        raise ValueError("a filing names exactly one customer and one source position")
    with_value_seal = sealed(record, key)
    headers = tuple(h for h in with_value_seal.headers if h[0] != FILING_SEAL_HEADER)
    seal = _filing_seal(fields, record.value, key)
    return Record(record.key, record.value, (*headers, (FILING_SEAL_HEADER, seal)))


def is_sealed_filing(rec: Consumed, key: bytes) -> bool:
    """True when the filing carries exactly one customer, one position and one filing seal, and the
    seal is theirs and the value's (constant time)."""
    fields = _filing_fields(rec.headers)
    seals = [value for name, value in rec.headers if name == FILING_SEAL_HEADER]
    if fields is None or len(seals) != 1:
        return False
    return hmac.compare_digest(seals[0], _filing_seal(fields, rec.value, key))

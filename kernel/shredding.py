"""Crypto-shredding: an event's personal fields sealed under its subject's data key, so that
destroying the key erases them everywhere the event was copied, replays included (issue 11,
docs/erasure.md). Pure: no engine, no clock; the key vault (`kernel.ports.KeyVault`) is the
caller's.

- **Which fields** are personal is declared once in `schemas.personal`; `seal` takes exactly those
  out of the event and puts back one `sealed` member (the key id and the AES-256-GCM ciphertext of
  the removed fields, nonce first, base64). Types, times, scores, amounts, queues stay in clear.
- **Associated data** is `tenant/event_id`: a blob copied onto another event does not open.
- **The subject** is the event's strongest identifier, normalised as identity normalises it.
  Normalisation is identity's (`services/identity/normalise.py`, with the tenant's rules) and the
  kernel may not import services, so the caller normalises and passes the identifiers to
  `subject_of`, which only ranks them.
- **Keys:** a tenant key is derived from the platform key with HKDF (the tenant id as info); two
  keys are expanded from it, one to wrap data keys at rest and one to name subjects, so no key
  serves two algorithms. A subject's key id is an HMAC of the subject under the naming key: the
  vault never holds the subject itself, and without the platform key an id cannot be matched
  to a guessed email.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from schemas.personal import (
    CUSTOMER_PATHS,
    is_personal_attribute,
    payload_fields,
    whole_payload,
)

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16  # AES-GCM's authentication tag, after the ciphertext
SEALED = "sealed"
ERASED = "erased"
# The subject of an event with no identifier identity could use: its key is ended by retention,
# never by one customer's erasure.
UNATTRIBUTED = "cem:unattributed"
# Strongest first, as the plan and `kernel.customer_key` rank them.
SUBJECT_ORDER = ("customer_id", "external", "email", "phone", "anonymous_id")
_SALT = b"cem crypto-shredding v1"
# Its own salt, not `_SALT` with a label as info: info is where tenant keys put the tenant id, so
# no tenant, whatever its id, can be given the identity store's key.
_IDENTITY_STORE_SALT = b"cem identity store v1"
_KEY_ID = re.compile(r"^[0-9a-f]{32}$")
_FINGERPRINT = b"cem data key fingerprint v1"
FINGERPRINT_HEX = 16  # 64 bits: tells a tenant's few keys of one id apart, no more
_CUSTOMER_FIELDS = tuple(path.removeprefix("customer.") for path in CUSTOMER_PATHS)

Event = dict[str, Any]


class ShreddingError(ValueError):
    """A sealed blob or wrapped key that does not open: tampered, copied, or another key."""


class NotUnderThisKey(ShreddingError):
    """A well-formed sealed blob that the key given does not open (`open_sealed`)."""


@dataclass(frozen=True)
class TenantKeys:
    """A tenant's two keys, derived from the platform key (`tenant_keys`)."""

    tenant_id: str
    wrapping: bytes  # wraps data keys at rest (AES-256-GCM)
    naming: bytes  # names subjects (HMAC-SHA256)


def _expand(key: bytes, label: bytes) -> bytes:
    return HKDFExpand(hashes.SHA256(), KEY_BYTES, label).derive(key)


def tenant_keys(platform_key: bytes, tenant_id: str) -> TenantKeys:
    """HKDF-SHA256 of the platform key, the tenant id as info, then one key per use."""
    hkdf = HKDF(hashes.SHA256(), KEY_BYTES, salt=_SALT, info=tenant_id.encode())
    tenant_key = hkdf.derive(platform_key)
    return TenantKeys(
        tenant_id, _expand(tenant_key, b"wrap data keys"), _expand(tenant_key, b"name subjects")
    )


def identity_store_key(platform_key: bytes) -> bytes:
    """The key the identity store's events and snapshots are encrypted with as a whole (the
    library's cipher, `CEM_SEAL_PERSONAL_DATA`): HKDF-SHA256 of the platform key under a salt of
    its own, one key for every tenant (the library's tables are shared by all of them)."""
    hkdf = HKDF(hashes.SHA256(), KEY_BYTES, salt=_IDENTITY_STORE_SALT, info=b"events at rest")
    return hkdf.derive(platform_key)


class TenantKeyring:
    """Every tenant's keys from one platform key, each derived once per process."""

    def __init__(self, platform_key: bytes) -> None:
        self._platform_key = platform_key
        self._derived: dict[str, TenantKeys] = {}

    def of(self, tenant_id: str) -> TenantKeys:
        keys = self._derived.get(tenant_id)
        if keys is None:  # a race derives the same keys twice: harmless
            keys = self._derived[tenant_id] = tenant_keys(self._platform_key, tenant_id)
        return keys


# --- subjects and their key ids ----------------------------------------------------------------
def _rank(identifier: tuple[str, str]) -> tuple[int, str, str]:
    kind, value = identifier
    family = kind.partition(":")[0]
    order = SUBJECT_ORDER.index(family) if family in SUBJECT_ORDER else len(SUBJECT_ORDER)
    return order, kind, value


def subject_of(identifiers: Iterable[tuple[str, str]]) -> str:
    """`kind:value` of the strongest identifier: explicit customer id, else an external id (the
    first namespace), else email, phone, anonymous id. `identifiers` are (kind, value) pairs the
    caller has normalised with identity's rules, leaving out those identity ignores; with none
    left the subject is `UNATTRIBUTED`."""
    usable = [i for i in identifiers if i[1]]
    if not usable:
        return UNATTRIBUTED
    kind, value = min(usable, key=_rank)
    return f"{kind}:{value}"


def subject_key_id(keys: TenantKeys, subject: str) -> str:
    """The vault's name for a subject's key: 128 bits of HMAC-SHA256, hex."""
    return hmac.new(keys.naming, subject.encode(), hashlib.sha256).hexdigest()[:32]


def check_key_id(key_id: str) -> str:
    """A key id as `subject_key_id` makes it; anything else (a subject by mistake) is refused."""
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 32 lowercase hex digits (subject_key_id), never a subject")
    return key_id


# --- data keys, wrapped at rest ------------------------------------------------------------------
def _aad(*parts: str) -> bytes:
    return "/".join(parts).encode()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    if len(sealed) < NONCE_BYTES + TAG_BYTES:  # AES-GCM would refuse the nonce in its own words
        raise ShreddingError(f"{what} does not open with this key")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise ShreddingError(f"{what} does not open with this key") from None


def wrap_data_key(keys: TenantKeys, key_id: str, data_key: bytes) -> bytes:
    """The data key encrypted under the tenant's wrapping key, bound to `tenant/key_id`."""
    return _encrypt(keys.wrapping, data_key, _aad(keys.tenant_id, key_id))


def unwrap_data_key(keys: TenantKeys, key_id: str, wrapped: bytes) -> bytes:
    return _decrypt(keys.wrapping, wrapped, _aad(keys.tenant_id, key_id), f"the data key {key_id}")


def keep_first(keys: TenantKeys, key_id: str, insert_then_read: Callable[[bytes], bytes]) -> bytes:
    """A vault's get-or-create: offer a fresh wrapped key to `insert_then_read` (the adapter's
    insert-if-absent then read back, in one transaction) and unwrap what it kept, so two
    processes meeting a new subject together both get the first one's key."""
    offered = wrap_data_key(keys, check_key_id(key_id), secrets.token_bytes(KEY_BYTES))
    return unwrap_data_key(keys, key_id, insert_then_read(offered))


def keep_first_many(
    keys: TenantKeys,
    key_ids: Iterable[str],
    insert_then_read: Callable[[dict[str, bytes]], dict[str, bytes]],
) -> dict[str, bytes]:
    """`keep_first` for many subjects in one round trip (one transaction, one sync to disk):
    `insert_then_read` inserts each offered wrapped key where none is stored and returns what is
    stored for every id."""
    offered = {
        key_id: wrap_data_key(keys, check_key_id(key_id), secrets.token_bytes(KEY_BYTES))
        for key_id in dict.fromkeys(key_ids)
    }
    if not offered:
        return {}
    kept = insert_then_read(offered)
    return {key_id: unwrap_data_key(keys, key_id, kept[key_id]) for key_id in offered}


# --- events ----------------------------------------------------------------------------------
def _take_customer(customer: Event) -> tuple[Event, Event]:
    rest = dict(customer)
    return rest, {f: rest.pop(f) for f in _CUSTOMER_FIELDS if f in rest}


def _take_payload(event_type: str, payload: Event) -> tuple[Event, Event]:
    if whole_payload(event_type):
        return {}, dict(payload)
    rest = dict(payload)
    taken = {f: rest.pop(f) for f in payload_fields(event_type) if f in rest}
    attributes = dict(rest.get("attributes") or {})
    names = {k: attributes.pop(k) for k in list(attributes) if is_personal_attribute(k)}
    if names:
        rest["attributes"], taken["attributes"] = attributes, names
    return rest, taken


def split_personal(event: Event) -> tuple[Event, Event]:
    """(the event without its personal fields, those fields in the event's own shape)."""
    rest, personal = dict(event), {}
    for member, take in (
        ("customer", _take_customer),
        ("payload", partial(_take_payload, str(event.get("type", "")))),
    ):
        if isinstance(event.get(member), dict):
            rest[member], taken = take(event[member])
            if taken:
                personal[member] = taken
    return rest, personal


def _merge(into: Event, extra: Event) -> Event:
    merged = dict(into)
    for name, value in extra.items():
        inner = merged.get(name)
        if isinstance(value, dict) and isinstance(inner, dict):
            value = _merge(inner, value)
        merged[name] = value
    return merged


def seal(
    event: Event,
    key_id: str,
    data_key: bytes,
    tenant_id: str,
    event_id: str,
    fingerprint: str | None = None,
) -> Event:
    """The event with its personal fields replaced by one `sealed` member, encrypted under the
    subject's data key with `tenant_id/event_id` as associated data, naming the key by its id
    and its fingerprint (`key_fingerprint`, computed when not given)."""
    if SEALED in event or ERASED in event:
        raise ShreddingError(f"event {event_id} is already sealed")
    rest, personal = split_personal(event)
    blob = _encrypt(data_key, orjson.dumps(personal), _aad(tenant_id, event_id))
    rest[SEALED] = {
        "key_id": check_key_id(key_id),
        "kf": fingerprint or key_fingerprint(data_key),
        "blob": base64.b64encode(blob).decode(),
    }
    return rest


def key_fingerprint(data_key: bytes) -> str:
    """Which key of an id sealed a blob: an HMAC under the key itself (it tells nothing of the
    key or the subject). A subject that comes back after its erasure gets a new key under the
    same id; the vault keeps the destroyed keys' fingerprints, so a blob that the present key
    does not open is told apart: sealed under a destroyed key (it opens erased) or not (tampered
    or copied: it raises)."""
    return hmac.new(data_key, _FINGERPRINT, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]


def sealed_key_id(event: Event) -> str | None:
    """The key a sealed event needs; None for an event that was never sealed."""
    sealed = event.get(SEALED)
    return str(sealed["key_id"]) if isinstance(sealed, dict) else None


def sealed_fingerprint(event: Event) -> str | None:
    """The fingerprint of the key a sealed event was sealed under; None for an event never
    sealed or sealed before fingerprints were (`key_fingerprint`)."""
    sealed = event.get(SEALED)
    found = sealed.get("kf") if isinstance(sealed, dict) else None
    return found if isinstance(found, str) else None


def open_sealed(event: Event, data_key: bytes | None, tenant_id: str, event_id: str) -> Event:
    """The event with its personal fields back. With `data_key` None (the vault no longer has
    the key) it is the anonymous rest marked `erased: true`. An event never sealed is returned
    as it is; a blob that does not open (tampered, another event's, or sealed under an earlier
    key of the same id) raises `NotUnderThisKey`, never passes for erased here: only the vault
    knows whether the id's earlier key was destroyed (`kernel.sealing.EventOpener`)."""
    sealed = event.get(SEALED)
    if not isinstance(sealed, dict):
        return event
    rest = {k: v for k, v in event.items() if k != SEALED}
    if data_key is None:
        return {**rest, ERASED: True}
    try:
        blob = base64.b64decode(sealed["blob"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise ShreddingError(f"event {event_id}: the sealed member is malformed") from None
    what = f"event {event_id}'s sealed fields"
    try:
        clear = _decrypt(data_key, blob, _aad(tenant_id, event_id), what)
    except ShreddingError as exc:
        raise NotUnderThisKey(str(exc)) from None
    return _merge(rest, orjson.loads(clear))

"""Which partition a record lands on, and how a poll shares its budget between partitions.

The embedded log uses Kafka's default partitioner for keyed records, so one key lands on the same
partition in either log, whoever produced it. Touchpoints are keyed by a keyed bucket of their
customer key (`touchpoint_key`), which only holders of the platform key can compute.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from collections.abc import Mapping

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def _mix_word(h: int, k: int) -> int:
    k = (k * _M) & _MASK
    k ^= k >> 24
    k = (k * _M) & _MASK
    return ((h * _M) & _MASK) ^ k


def _mix_tail(h: int, tail: bytes) -> int:
    # Java's switch falls through, so every tail byte is folded in before the one multiply.
    if not tail:
        return h
    for shift, byte in enumerate(tail):
        h ^= byte << (8 * shift)
    return (h * _M) & _MASK


def _to_signed(h: int) -> int:
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2(data: bytes) -> int:
    """MurmurHash2 exactly as Kafka's Java `Utils.murmur2` (seed 0x9747b28c), signed 32-bit."""
    length = len(data)
    words = length // 4
    h = (_SEED ^ length) & _MASK
    for k in struct.unpack_from(f"<{words}I", data):
        h = _mix_word(h, k)
    h = _mix_tail(h, data[words * 4 :])
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return _to_signed(h)


# A customer's key recurs with each of its events, and hashing in Python costs microseconds.
@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record: positive murmur2 modulo the count."""
    if partitions < 1:
        raise ValueError(f"a topic needs at least one partition, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partition_key(tenant_id: str, customer_key: str) -> bytes:
    """The record key: one customer of one tenant always shares a partition, hence an order."""
    return f"{tenant_id}/{customer_key}".encode()


# Buckets of touchpoint keys: 65,536, far more than any topic's partitions (at most 1024). The
# bucket is keyed (HMAC-SHA256 under a key derived from the platform key): without the key, a
# guessed identifier's bucket cannot be computed, so a topic's keys say nothing about who is in it.
_TOUCHPOINT_BUCKET_BYTES = 2
_BUCKET_LABEL = b"cem touchpoint buckets v1"


def touchpoint_bucket_key(platform_key: bytes) -> bytes:
    """The key touchpoint buckets are derived with, derived from the platform key under its own
    label (as `kernel.opaque_ids.customer_id_key` derives the customer-id key): the platform key
    is never used for two purposes, and a bucket reveals nothing about it or the customer-id key."""
    return hmac.new(platform_key, _BUCKET_LABEL, hashlib.sha256).digest()


@functools.lru_cache(maxsize=64)
def _bucket_mac(bucket_key: bytes) -> hmac.HMAC:
    # An empty key would give buckets anyone can compute (the membership hint keyed buckets
    # remove): refused here, once per key, whichever producer or composition root passed it.
    if not bucket_key:
        raise ValueError("no touchpoint bucket key: derive one with touchpoint_bucket_key")
    # Keying an HMAC hashes the key's pads; a copy of the keyed state skips that per record.
    return hmac.new(bucket_key, digestmod=hashlib.sha256)


def touchpoint_key(bucket_key: bytes, tenant_id: str, customer_key: str) -> bytes:
    """The key of an ingested touchpoint, `tenant/<4 hex digits>`: a 16-bit keyed bucket of the
    tenant and customer key (`email:maria@...`), not the key itself. Within a deployment (one
    `bucket_key`, from `touchpoint_bucket_key`) one customer key always gets the same record key,
    hence one partition and an order, on every replica; without the key, a bucket cannot be
    computed from a guessed identifier. (Which customer it is, identity decides later; its
    filing is keyed by the opaque customer id.)"""
    mac = _bucket_mac(bucket_key).copy()
    mac.update(tenant_id.encode() + b"\x00" + customer_key.encode())
    return partition_key(tenant_id, mac.digest()[:_TOUCHPOINT_BUCKET_BYTES].hex())


def fair_quotas(backlog: Mapping[int, int], max_records: int, start: int = 0) -> dict[int, int]:
    """Split a poll's `max_records` between partitions with a backlog, max-min fairly.

    Every partition gets an equal share; what a short partition cannot use goes to the others.
    `start` rotates who receives the indivisible remainder, so that no partition is always last.
    """
    order = sorted(p for p, waiting in backlog.items() if waiting > 0)
    if not order or max_records <= 0:
        return {}
    first = start % len(order)
    order = order[first:] + order[:first]
    quotas = dict.fromkeys(order, 0)
    left = max_records
    while left > 0 and order:
        share = max(1, left // len(order))
        for p in order:
            given = min(share, backlog[p] - quotas[p], left)
            quotas[p] += given
            left -= given
        order = [p for p in order if quotas[p] < backlog[p]]
    return {p: q for p, q in quotas.items() if q > 0}

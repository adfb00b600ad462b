"""Kafka-compatible partitioning and the fair split of a poll between partitions."""

from __future__ import annotations

import hashlib
import hmac
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from kernel.opaque_ids import customer_id_key
from kernel.partitioning import (
    fair_quotas,
    murmur2,
    partition_for,
    partition_key,
    touchpoint_bucket_key,
    touchpoint_key,
)

# The vectors of Apache Kafka's own UtilsTest.testMurmur2 (Java, signed 32-bit results).
KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS)
def test_murmur2_matches_kafka_java_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def _signed(unsigned: int) -> int:
    return unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_murmur2_agrees_with_kafka_python_on_any_bytes(data: bytes) -> None:
    # kafka-python returns the same 32 bits unsigned; every tail length 0-3 gets exercised.
    assert murmur2(data) == _signed(kafka_python_murmur2(data))


@settings(max_examples=200)
@given(st.binary(max_size=100), st.integers(min_value=1, max_value=1000))
def test_partition_is_kafkas_default_partitioner(key: bytes, partitions: int) -> None:
    expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions
    assert partition_for(key, partitions) == expected
    assert 0 <= partition_for(key, partitions) < partitions


def test_negative_hashes_still_give_a_valid_partition() -> None:
    # "21" hashes negative: the sign bit is masked off, not abs()'d (abs would differ from Kafka).
    assert murmur2(b"21") < 0
    assert partition_for(b"21", 12) == (-973932308 & 0x7FFFFFFF) % 12


def test_a_topic_needs_a_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"k", 0)


def test_partition_key_joins_tenant_and_customer_in_utf8() -> None:
    assert partition_key("acme", "email:zoë@example.com") == "acme/email:zoë@example.com".encode()


PLATFORM_KEY = bytes(range(32))
BUCKETS = touchpoint_bucket_key(PLATFORM_KEY)
CUSTOMERS = [f"email:c{i}@x.io" for i in range(500)]


def test_a_touchpoint_key_is_a_bucket_of_the_customer_key_not_the_key() -> None:
    key = touchpoint_key(BUCKETS, "acme", "email:zoë@example.com")
    # One customer key, one record key: one partition, hence one order.
    assert key == touchpoint_key(BUCKETS, "acme", "email:zoë@example.com")
    assert re.fullmatch(rb"acme/[0-9a-f]{4}", key)
    used = {partition_for(touchpoint_key(BUCKETS, "acme", c), 12) for c in CUSTOMERS}
    assert used == set(range(12))


def test_the_bucket_is_an_hmac_under_a_key_derived_from_the_platform_key() -> None:
    # The rule itself, recomputed: every replica and release sharing the platform key agrees.
    derived = hmac.new(PLATFORM_KEY, b"cem touchpoint buckets v1", hashlib.sha256).digest()
    assert touchpoint_bucket_key(PLATFORM_KEY) == derived == BUCKETS
    mac = hmac.new(derived, b"acme\x00email:ana@x.io", hashlib.sha256).digest()
    assert touchpoint_key(BUCKETS, "acme", "email:ana@x.io") == b"acme/" + mac[:2].hex().encode()
    # Its own label: neither the platform key nor the customer-id key.
    assert BUCKETS not in (PLATFORM_KEY, customer_id_key(PLATFORM_KEY))


def test_an_empty_bucket_key_is_refused_not_used() -> None:
    # HMAC under b"" is computable by anyone: the membership hint keyed buckets remove.
    with pytest.raises(ValueError, match="bucket key"):
        touchpoint_key(b"", "acme", "email:ana@x.io")


def test_another_platform_key_gives_another_bucket_mapping() -> None:
    other = touchpoint_bucket_key(bytes(32))
    same = sum(
        touchpoint_key(BUCKETS, "acme", c) == touchpoint_key(other, "acme", c) for c in CUSTOMERS
    )
    assert same < 10  # ~1 in 65,536 each by chance


def test_the_bucket_is_not_the_unkeyed_hash_anyone_could_compute() -> None:
    def unkeyed(customer: str) -> bytes:
        return partition_key("acme", hashlib.sha256(customer.encode()).digest()[:2].hex())

    same = sum(touchpoint_key(BUCKETS, "acme", c) == unkeyed(c) for c in CUSTOMERS)
    assert same < 10


def test_two_tenants_bucket_one_customer_key_unrelatedly() -> None:
    def bucket(tenant: str, customer: str) -> bytes:
        return touchpoint_key(BUCKETS, tenant, customer).partition(b"/")[2]

    assert sum(bucket("acme", c) == bucket("zeta", c) for c in CUSTOMERS) < 10


def test_threads_sharing_the_keyed_state_get_the_same_buckets() -> None:
    expected = [touchpoint_key(BUCKETS, "acme", c) for c in CUSTOMERS]
    with ThreadPoolExecutor(4) as pool:
        runs = list(
            pool.map(lambda _: [touchpoint_key(BUCKETS, "acme", c) for c in CUSTOMERS], range(8))
        )
    assert all(run == expected for run in runs)


def test_one_customer_always_lands_on_one_partition() -> None:
    key = partition_key("acme", "cust-42")
    assert len({partition_for(key, 12) for _ in range(5)}) == 1


def test_many_customers_spread_over_every_partition() -> None:
    used = {partition_for(partition_key("acme", f"cust-{i}"), 12) for i in range(500)}
    assert used == set(range(12))


backlogs = st.dictionaries(st.integers(0, 15), st.integers(0, 50), max_size=16)


@settings(max_examples=200)
@given(backlogs, st.integers(0, 400), st.integers(0, 100))
def test_fair_quotas_use_the_budget_without_overdrawing(
    backlog: dict[int, int], budget: int, start: int
) -> None:
    quotas = fair_quotas(backlog, budget, start)
    assert sum(quotas.values()) == min(budget, sum(backlog.values()))
    assert all(0 < q <= backlog[p] for p, q in quotas.items())


@settings(max_examples=200)
@given(backlogs, st.integers(0, 400), st.integers(0, 100))
def test_fair_quotas_are_max_min_fair(backlog: dict[int, int], budget: int, start: int) -> None:
    quotas = fair_quotas(backlog, budget, start)
    for p, waiting in backlog.items():
        if quotas.get(p, 0) < waiting:
            # A partition left short got at least as much as anyone, give or take the remainder.
            assert all(quotas.get(p, 0) + 1 >= q for q in quotas.values())


def test_rotation_moves_the_remainder_between_partitions() -> None:
    backlog = {0: 10, 1: 10, 2: 10}
    winners = {
        max(fair_quotas(backlog, 4, turn).items(), key=lambda kv: kv[1])[0] for turn in range(3)
    }
    assert winners == {0, 1, 2}

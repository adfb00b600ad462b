"""The filing stage: every event is projected under the customer identity resolution files it
under, the same one for every consumer and every replay; customers keep readable ids."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from kernel.decoding import SharedDecoder
from kernel.filings import (
    CUSTOMER_HEADER,
    FILING_POSITIONS,
    FILING_STAGE,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    file_batch,
    project_filings,
    through_touchpoints,
)
from kernel.ports import Consumed
from kernel.processing import Unfiled, decode_batch, process_batch
from schemas.envelope import CustomerRef, Event
from schemas.validate import accept, encode
from services.identity import (
    AmbiguousCustomer,
    CustomerNotFound,
    IdentityBusy,
    IdentityResolver,
    IdentityRules,
    TenantRules,
)
from services.identity.filing import IdentityFiler
from services.projections.lookup import CustomerMatch, combine_matches, key_lookup
from services.projections.projection import ProjectionsProjection
from services.satisfaction.projection import SatisfactionProjection
from tests.identity_memory import memory_resolver

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
TENANT = "acme"


def event(customer: dict[str, Any], minutes: int = 0, **fields: Any) -> Event:
    at = T0 + timedelta(minutes=minutes)
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": "web",
        "type": "page.viewed",
        "occurred_at": at.isoformat(),
        "customer": customer,
        "payload": {"url": "https://shop.es/"},
        **fields,
    }
    return accept(raw, TENANT, at)[0]


def records(events: Sequence[Event | bytes]) -> list[Consumed]:
    return [
        Consumed("touchpoints", 0, i, b"k", e if isinstance(e, bytes) else encode(e))
        for i, e in enumerate(events)
    ]


class FixedFiler:
    def __init__(self, answers: list[str | Unfiled]) -> None:
        self.answers, self.seen = answers, 0

    def file(self, events: Sequence[Event]) -> list[str | Unfiled]:
        self.seen += len(events)
        return self.answers[: len(events)]


@pytest.fixture
def identity() -> IdentityResolver:
    return memory_resolver(IdentityRules(default=TenantRules(phone_region="ES")))


# --- the stage in the batch core ---------------------------------------------------------------
def test_each_event_is_projected_under_the_customer_it_was_filed_under() -> None:
    viewed = event({"email": "ana@shop.es"})
    answered = event(
        {"email": "ana@shop.es"}, type="survey.answered", channel="survey",
        payload={"kind": "csat", "score": 2},
    )  # fmt: skip
    filer = FixedFiler(["c-7", "c-7"])
    batch = records([viewed, answered])
    timeline = process_batch("projections", batch, ProjectionsProjection().rows, filer=filer)
    satisfaction = process_batch("satisfaction", batch, SatisfactionProjection().rows, filer=filer)
    assert {r["customer_id"] for rows in timeline.rows.values() for r in rows} == {"c-7"}
    assert [r["customer_id"] for r in satisfaction.rows["survey_responses"]] == ["c-7"]
    assert [r["customer_id"] for r in satisfaction.rows["alerts"]] == ["c-7"]


def test_without_a_filer_an_event_is_filed_under_its_customer_key() -> None:
    result = process_batch("projections", records([event({"email": "Ana@Shop.es"})]),
                           ProjectionsProjection().rows)  # fmt: skip
    assert result.rows["customer_timeline"][0]["customer_id"] == "email:ana@shop.es"


def test_an_unfiled_event_is_a_dead_letter_and_undecodable_ones_never_reach_the_filer() -> None:
    filer = FixedFiler([Unfiled("identity resolution failed: boom"), "c-1"])
    batch = records(
        [event({"email": "alba@shop.es"}), b"\x00garbage", event({"email": "bruno@shop.es"})]
    )
    result = process_batch("projections", batch, ProjectionsProjection().rows, filer=filer)
    assert filer.seen == 2
    assert [(d.offset, d.reason) for d in result.dead_letters] == [
        (1, "undecodable"),
        (0, "unfiled"),
    ]
    assert "boom" in result.dead_letters[1].error
    assert [r["customer_id"] for r in result.rows["customer_timeline"]] == ["c-1"]
    assert result.next_offsets == {0: 3}


def test_a_filer_that_cannot_answer_fails_the_whole_batch() -> None:
    class Down:
        def file(self, events: Sequence[Event]) -> list[str | Unfiled]:
            raise IdentityBusy("store is busy")

    with pytest.raises(IdentityBusy):
        process_batch("projections", records([event({"email": "alba@shop.es"})]),
                      ProjectionsProjection().rows, filer=Down())  # fmt: skip


# --- the identity filer --------------------------------------------------------------------------
def test_the_filer_gives_identity_the_name_an_event_carries(identity: IdentityResolver) -> None:
    # A new address typed on Lucía's own laptop with her full name is hers (person_names.py):
    # only if the filer passes the payload's name (one field, or first and last) to identity.
    def carrying(email: str, minutes: int, attributes: dict[str, str]) -> Event:
        page = {"url": "https://shop.es/", "attributes": attributes}
        return event({"email": email, "anonymous_id": "ck-9"}, minutes, payload=page)

    filer = IdentityFiler(identity)
    [lucia] = filer.file([carrying("lupego@gmail.com", 0, {"name": "Lucía Pérez Gómez"})])
    second = carrying(
        "l.trabajo@empresa.es", 1, {"first_name": "LUCIA", "last_name": "PEREZ GOMEZ"}
    )
    stranger = carrying("elena@empresa.es", 2, {"name": "Elena Ruiz Gil"})
    filed = filer.file([second, stranger])
    assert filed[0] == lucia and filed[1] != lucia  # another name on it: somebody else


def test_every_consumer_and_every_replay_gets_the_same_customer(identity: IdentityResolver) -> None:
    events = [event({"phone": "+34 617 34 56 78"}, i) for i in range(3)]
    first = IdentityFiler(identity).file(events)
    second = IdentityFiler(identity).file(events[::-1])  # another consumer, another order
    holder = identity.locate(TENANT, "phone:+34617345678").customer_id
    assert first == second[::-1] == [holder] * 3


def registrations(identity: IdentityResolver) -> int:
    recorded = identity.recorder.select_notifications(start=1, limit=100_000)
    return sum(n.topic.endswith("Customer.Registered") for n in recorded)


def test_two_processes_filing_the_same_events_at_once_agree(tmp_path: Path) -> None:
    # The projections and satisfaction workers of two processes, each with its own resolver (and
    # aggregate cache) on one store, filing one stream in small chunks at the same time.
    store = SqliteIdentityStore(tmp_path / "identity.sqlite")
    rules = IdentityRules(default=TenantRules(phone_region="ES"))
    people = [
        {"email": f"p{i % 9}@shop.es", "phone": f"+34 612 00 00 {i % 5:02d}"} for i in range(90)
    ]
    events = [event(customer, i) for i, customer in enumerate(people)]
    key = b"k" * 32  # the platform's key, shared by every process: the same names
    resolvers = [IdentityResolver(store, rules, id_key=key) for _ in range(2)]
    answers: list[list[str | Unfiled]] = [[], []]
    barrier = threading.Barrier(2)

    def consume(i: int) -> None:
        barrier.wait()
        answers[i] = IdentityFiler(resolvers[i], chunk=10).file(events)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert answers[0] == answers[1] and len(answers[0]) == len(events)
        # A third consumer, later, reads the same filings; one consumer alone decides the same
        # and registers as many customers: none was created twice.
        assert IdentityFiler(IdentityResolver(store, rules, id_key=key)).file(events) == answers[0]
        alone_store = SqliteIdentityStore(tmp_path / "alone.sqlite")
        alone = IdentityResolver(alone_store, rules, id_key=key)
        assert IdentityFiler(alone, chunk=10).file(events) == answers[0]
        assert registrations(resolvers[0]) == registrations(alone) > 0
    finally:
        for resolver in resolvers:
            resolver.close()


def test_a_touchpoint_that_cannot_be_resolved_is_unfiled_and_the_others_are_filed(
    identity: IdentityResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = event({"email": "poison@shop.es"})
    real = identity.resolve_batch

    def resolve_batch(tenant_id: str, touchpoints: Any, *args: Any, **kwargs: Any) -> Any:
        if any(t[0].email == "poison@shop.es" for t in touchpoints):
            raise ValueError("cannot digest this one")
        return real(tenant_id, touchpoints, *args, **kwargs)

    monkeypatch.setattr(identity, "resolve_batch", resolve_batch)
    filed = IdentityFiler(identity).file([event({"email": "ana@shop.es"}), poison])
    assert filed[0] == identity.locate(TENANT, "email:ana@shop.es").customer_id
    assert isinstance(filed[1], Unfiled) and "cannot digest" in str(filed[1])


def test_a_busy_store_is_not_a_dead_letter(
    identity: IdentityResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(*args: Any, **kwargs: Any) -> Any:
        raise IdentityBusy("gave up")

    monkeypatch.setattr(identity, "resolve_batch", busy)
    with pytest.raises(IdentityBusy):
        IdentityFiler(identity).file([event({"email": "ana@shop.es"})])


# --- customer ids ------------------------------------------------------------------------------
def resolve(identity: IdentityResolver, **ref: Any) -> str:
    return identity.resolve(TENANT, CustomerRef(**ref), str(uuid.uuid4()), "http").home_id


def is_opaque(customer_id: str) -> bool:
    return re.fullmatch(r"c_[a-z2-7]{26}", customer_id) is not None


def test_a_new_customer_gets_an_opaque_id_unless_its_system_named_it(
    identity: IdentityResolver,
) -> None:
    # An explicit customer_id is the channel system's own id: kept as given.
    assert resolve(identity, customer_id="crm-1", email="xavi@shop.es") == "crm-1"
    # Any other identifier is looked up, never embedded in the id.
    for ref in (
        {"external_ids": {"shop": "9"}, "email": "yago@shop.es"},
        {"email": "Ana@Shop.es", "phone": "617345678"},
        {"anonymous_id": "dev-1"},
        {"email": "ana@example.com", "phone": "699 11 22 33"},
        {"email": "no tiene"},  # nothing usable: derived from the touchpoint
    ):
        customer_id = resolve(identity, **ref)
        assert is_opaque(customer_id), ref
    assert identity.locate(TENANT, "email:ana@shop.es").customer_id != (
        identity.locate(TENANT, "phone:+34699112233").customer_id
    )


def test_the_same_first_identifier_gets_the_same_id_under_the_same_key(tmp_path: Path) -> None:
    rules = IdentityRules(default=TenantRules(phone_region="ES"))

    def first_customer(name: str, key: bytes, tenant: str = TENANT) -> str:
        resolver = IdentityResolver(SqliteIdentityStore(tmp_path / name), rules, id_key=key)
        try:
            ref = CustomerRef(email="Maria@Shop.es")
            return resolver.resolve(tenant, ref, str(uuid.uuid4()), "http").home_id
        finally:
            resolver.close()

    key = b"k" * 32
    one, again = first_customer("a.sqlite", key), first_customer("b.sqlite", key)
    assert one == again and is_opaque(one)  # a rebuilt store names customers as before
    assert first_customer("c.sqlite", b"x" * 32) != one  # without the key, nothing to guess
    assert first_customer("d.sqlite", key, "globex") != one  # nor across tenants
    assert "maria" not in one


def test_a_name_already_taken_or_pointing_at_someone_else_becomes_opaque(
    identity: IdentityResolver,
) -> None:
    first = resolve(identity, customer_id="guest")  # a placeholder: links and names nobody
    again = resolve(identity, customer_id="guest")
    assert is_opaque(first) and is_opaque(again) and first != again
    holder = resolve(identity, customer_id="crm-1", external_ids={"shop": "1"})
    # The same crm id with another shop account is someone else: crm-1 names the holder.
    other = resolve(identity, customer_id="crm-1", external_ids={"shop": "2"})
    assert holder == "crm-1" and is_opaque(other)
    assert identity.locate(TENANT, "crm-1").customer_id == "crm-1"


def test_any_id_or_identifier_key_locates_the_customer_and_its_members(
    identity: IdentityResolver,
) -> None:
    web = resolve(identity, anonymous_id="dev-7")
    # The device logs in: its profile joins the account's customer.
    account = resolve(identity, anonymous_id="dev-7", customer_id="crm-7")
    mail = resolve(identity, email="zoe@shop.es")
    identity.merge(TENANT, account, mail, "same person", "key:k")
    for requested in (web, account, mail, "crm-7", "email:ZOE@shop.es", "anon:dev-7"):
        found = identity.locate(TENANT, requested)
        # The canonical first, then the others in id order (opaque ids: any order of the two).
        members = (found.customer_id, found.members[0], set(found.members[1:]))
        assert members == (account, account, {web, mail}), requested
    with pytest.raises(CustomerNotFound):
        identity.locate(TENANT, "email:nobody@shop.es")


def test_an_identifier_held_by_several_customers_names_none(identity: IdentityResolver) -> None:
    dad = resolve(identity, email="dad@shop.es", phone="+34 912 34 56 78")
    kid = resolve(identity, email="kid@shop.es", phone="+34 912 34 56 78")
    with pytest.raises(AmbiguousCustomer) as raised:
        identity.locate(TENANT, "phone:+34912345678")
    assert raised.value.customer_ids == sorted([dad, kid])


# --- lookups of merged customers ---------------------------------------------------------------
def test_matches_of_merged_customers_are_one_match() -> None:
    def match(customer_id: str, first: int, last: int, events: int) -> CustomerMatch:
        at = [T0 + timedelta(hours=h) for h in (first, last)]
        return CustomerMatch(
            customer_id=customer_id, first_seen=at[0], last_seen=at[1], events=events
        )

    survivor_of = {"b": "a"}.get
    combined = combine_matches(
        [match("a", 2, 3, 1), match("b", 1, 5, 2), match("c", 0, 4, 1)],
        lambda c: survivor_of(c, c),
    )
    assert [(m.customer_id, m.events) for m in combined] == [("a", 3), ("c", 1)]
    assert (combined[0].first_seen, combined[0].last_seen) == (
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=5),
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("email:Ana@Shop.ES", ("email", "ana@shop.es")),
        ("phone:+34 617 34 56 78", ("phone", "+34617345678")),
        ("anon:dev-1", ("anonymous_id", "dev-1")),
        ("ext:shop:9", ("external:shop", "9")),
        ("external:shop:9", ("external:shop", "9")),
        ("anonymous_id:dev-1", ("anonymous_id", "dev-1")),
        ("customer_id:u1", ("customer_id", "u1")),
        ("email:", ("customer_id", "email:")),
        ("crm/42", ("customer_id", "crm/42")),
        ("ext:", ("customer_id", "ext:")),
    ],
)
def test_a_customer_key_names_the_identifier_it_was_made_from(
    key: str, expected: tuple[str, str]
) -> None:
    assert key_lookup(key) == expected


# --- the filing stage on the log -----------------------------------------------------------------
def test_the_filing_stage_puts_each_events_bytes_and_customer_on_the_log() -> None:
    viewed, answered = event({"email": "ana@shop.es"}), event({"phone": "+34617345678"}, 1)
    batch = records([viewed, b"\x00garbage", answered])
    filed = file_batch(batch, FixedFiler(["c-7", Unfiled("identity resolution failed: boom")]))
    [filing] = filed.filings
    assert filing.value == batch[0].value  # the touchpoint's bytes, unchanged
    assert filing.key == b"acme/c-7"  # keyed by customer: one customer's filings keep an order
    assert dict(filing.headers) == {
        CUSTOMER_HEADER: b"c-7",
        SOURCE_PARTITION_HEADER: b"0",
        SOURCE_OFFSET_HEADER: b"0",
    }
    assert [(d.stage, d.offset, d.reason) for d in filed.dead_letters] == [
        (FILING_STAGE, 1, "undecodable"),
        (FILING_STAGE, 2, "unfiled"),
    ]
    assert filed.next_offsets == {0: 3}


def test_without_a_filer_the_filing_stage_files_under_the_customer_key() -> None:
    [filing] = file_batch(records([event({"email": "Ana@Shop.es"})]), None).filings
    assert dict(filing.headers)[CUSTOMER_HEADER] == b"email:ana@shop.es"


def test_projections_take_the_customer_from_the_filing_and_never_ask_identity() -> None:
    answered = event({"email": "ana@shop.es"}, type="survey.answered", channel="survey",
                     payload={"kind": "csat", "score": 2})  # fmt: skip
    [filing] = file_batch(records([answered]), FixedFiler(["c-7"])).filings
    read = Consumed("filings", 4, 9, filing.key, filing.value, filing.headers)
    headless = Consumed("filings", 4, 10, filing.key, filing.value)
    for project in (ProjectionsProjection().rows, SatisfactionProjection().rows):
        result = project_filings("any", [read, headless], project)
        assert {r["customer_id"] for rows in result.rows.values() for r in rows} == {"c-7"}
        assert [(d.offset, d.reason) for d in result.dead_letters] == [(10, "unfiled")]
    timeline = project_filings("projections", [read], ProjectionsProjection().rows)
    [arrival] = timeline.rows["stream_arrivals"]
    # The filing's position, among the filings' positions (never those of touchpoints).
    assert (arrival["log_partition"], arrival["log_offset"]) == (FILING_POSITIONS + 4, 9)


def test_a_filing_decodes_through_the_cache_its_touchpoint_was_decoded_into() -> None:
    decoder = SharedDecoder()
    batch = records([event({"email": "ana@shop.es"})])
    [(_, decoded)] = decode_batch(FILING_STAGE, batch, decoder).events
    [filing] = file_batch(batch, None, decoder).filings
    read = Consumed("filings", 5, 0, filing.key, filing.value, filing.headers)
    assert through_touchpoints(decoder, "touchpoints")(read) is decoded

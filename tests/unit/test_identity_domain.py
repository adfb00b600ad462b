"""Identity aggregates: what their events record, and that replaying the events rebuilds them;
and the memo of identifier normalisation."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, TypeVar

import pytest
from eventsourcing.domain import Aggregate

from services.identity import normalise
from services.identity.domain import (
    Customer,
    IdentifierIndex,
    MergeCandidate,
    stable_id,
)
from services.identity.rules import Identifier, TenantRules
from services.identity.state import replay

A = TypeVar("A", bound=Aggregate)
MERGE = {"tenant_id": "acme", "merge_id": "m1", "reason": "same email", "actor": "key:k1"}


def registered(seed: str = "email|alba@x.io|0", tenant: str = "acme") -> Customer:
    return Customer(
        tenant_id=tenant,
        seed=seed,
        reason="first seen",
        actor="system",
        source="http",
        evidence_event_id="e1",
    )


def rebuilt(aggregate: A) -> A:
    """The aggregate as a repository would rebuild it from the events collected so far."""
    events = copy.deepcopy(aggregate.collect_events())
    result: A = replay(None, events)
    return result


def state(customer: Customer) -> dict[str, Any]:
    return {
        "links": dict(customer.links),
        "merged_into": customer.merged_into,
        "absorbed": dict(customer.absorbed),
    }


def test_ids_are_deterministic_per_tenant_and_unambiguous() -> None:
    assert Customer.create_id("acme", "s") == Customer.create_id("acme", "s")
    assert Customer.create_id("acme", "s") != Customer.create_id("other", "s")
    assert stable_id("a", "bc") != stable_id("ab", "c")
    assert IdentifierIndex.create_id("acme", "email", "alba@x.io") != Customer.create_id(
        "acme", "email"
    )


def test_a_pair_has_one_id_whichever_order_it_is_named_in() -> None:
    assert MergeCandidate.create_id("acme", "c1", "c2") == MergeCandidate.create_id(
        "acme", "c2", "c1"
    )


def test_registration_and_links_record_who_and_why() -> None:
    customer = registered()
    customer.link(
        kind="email",
        value="alba@x.io",
        source="chat",
        rule="first_seen",
        evidence_event_id="e1",
        actor="system",
    )
    registered_event, linked = customer.pending_events
    assert isinstance(registered_event, Customer.Registered)
    assert (registered_event.reason, registered_event.actor) == ("first seen", "system")
    assert isinstance(linked, Customer.IdentifierLinked)
    assert (linked.rule, linked.source, linked.evidence_event_id) == ("first_seen", "chat", "e1")
    assert Identifier("email", "alba@x.io") in customer.links


def test_an_unlink_removes_the_identifier_and_says_whether_it_was_erased() -> None:
    customer = registered()
    customer.link(
        kind="phone",
        value="+34617345678",
        source="call",
        rule="first_seen",
        evidence_event_id="e1",
        actor="system",
    )
    customer.unlink(
        kind="phone", value="+34617345678", reason="number recycled", actor="key:k1", erased=False
    )
    assert customer.links == {}
    unlinked = customer.pending_events[-1]
    assert isinstance(unlinked, Customer.IdentifierUnlinked)
    assert (unlinked.reason, unlinked.actor, unlinked.erased) == (
        "number recycled",
        "key:k1",
        False,
    )


def test_a_merge_marks_both_sides_and_a_split_restores_both_exactly() -> None:
    survivor, absorbed = registered("s"), registered("a")
    absorbed.link(
        kind="email",
        value="alba@x.io",
        source="http",
        rule="first_seen",
        evidence_event_id="e2",
        actor="system",
    )
    before = (state(survivor), state(absorbed))
    ids = {"survivor_id": survivor.customer_id, "absorbed_id": absorbed.customer_id}
    survivor.absorb(**MERGE, **ids)
    absorbed.merge_into(**MERGE, **ids)
    assert survivor.absorbed == {"m1": absorbed.customer_id}
    assert absorbed.merged_into == survivor.customer_id
    assert absorbed.links == before[1]["links"]  # a merge moves nothing
    survivor.split_off(**MERGE, **ids)
    absorbed.restore(**MERGE, **ids)
    assert (state(survivor), state(absorbed)) == before
    names = [type(e).__name__ for e in survivor.pending_events + absorbed.pending_events]
    assert names.count("CustomersMerged") == names.count("CustomersSplit") == 1
    assert names.count("MergedIntoSurvivor") == names.count("RestoredBySplit") == 1


def test_replaying_a_customers_events_rebuilds_it() -> None:
    customer = registered()
    customer.link(
        kind="email",
        value="alba@x.io",
        source="http",
        rule="first_seen",
        evidence_event_id="e1",
        actor="system",
    )
    customer.absorb(**MERGE, survivor_id=customer.customer_id, absorbed_id="other")
    expected = state(customer)
    copy_of = rebuilt(customer)
    assert state(copy_of) == expected
    assert (copy_of.id, copy_of.version, copy_of.tenant_id) == (customer.id, 3, "acme")


def test_the_index_tracks_holders_releases_saturation_and_erasure() -> None:
    index = IdentifierIndex("acme", "phone", "+34912345678")
    index.claim("c1", "e1", "first_seen")
    index.claim("c2", "e2", "shared_holder")
    index.claim("c1", "e3", "seen_with:email")  # a repeated claim adds no holder
    assert index.holders == ["c1", "c2"]
    index.release("c1", "moved house", "key:k1")
    assert (index.holders, index.released) == (["c2"], {"c1"})
    index.saturate(limit=6, evidence_event_id="e9")
    index.suppress(reason="erasure request", actor="key:k2")
    copy_of = rebuilt(index)
    assert (copy_of.holders, copy_of.released, copy_of.saturated, copy_of.suppressed) == (
        ["c2"],
        {"c1"},
        True,
        True,
    )
    assert copy_of.identifier == Identifier("phone", "+34912345678")


def test_a_candidate_is_open_until_decided_and_rejection_keeps_the_pair_apart() -> None:
    pair = MergeCandidate("acme", "c1", "c2")
    assert (pair.status, pair.kept_apart) == (None, False)
    pair.propose("c1", "share phone=+34912345678", ["phone=+34912345678"], "e1")
    assert pair.status == "open" and pair.proposal["proposer_id"] == "c1"
    pair.reject("household, two people", "key:k1")
    assert (pair.status, pair.kept_apart) == ("rejected", True)
    assert pair.decision == {"reason": "household, two people", "actor": "key:k1"}


def test_an_accepted_candidate_records_its_merge_and_a_split_keeps_the_pair_apart() -> None:
    pair = MergeCandidate("acme", "c1", "c2")
    pair.propose("c1", "share phone", ["phone=+34617345678"], "e1")
    pair.accept("m1", "same person", "key:k1")
    assert (pair.status, pair.kept_apart, pair.decision["merge_id"]) == ("accepted", False, "m1")
    pair.separate("m1", "different people after all", "key:k2")
    assert rebuilt(pair).kept_apart is True


@pytest.mark.parametrize("cls", [Customer, IdentifierIndex, MergeCandidate])
def test_every_event_carries_only_plain_values(cls: type[Aggregate]) -> None:
    # Plain values keep the stored JSON readable by other tools and stable across refactors.
    events = [
        e for e in vars(cls).values() if isinstance(e, type) and issubclass(e, Aggregate.Event)
    ]
    assert events, f"{cls.__name__} declares its events"
    for event_class in events:
        for name, annotation in event_class.__annotations__.items():
            assert annotation in {"str", "str | None", "bool", "int", "list[str]"}, (
                f"{event_class.__qualname__}.{name}: {annotation}"
            )


# normalisation, remembered


def test_normalisation_is_remembered_per_rules_contents_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(normalise, "MEMO_ANSWERS", 3)
    monkeypatch.setattr(normalise, "MEMO_RULES", 2)
    monkeypatch.setattr(normalise, "_answers", OrderedDict())
    monkeypatch.setattr(normalise, "_values", OrderedDict())
    monkeypatch.setattr(normalise, "_readings", OrderedDict())
    monkeypatch.setattr(normalise, "_rules_held", {})
    monkeypatch.setattr(normalise, "_tokens", {})
    spain, usa = TenantRules(phone_region="ES"), TenantRules(phone_region="US")
    first = normalise.normalise_one("phone", "617 34 56 78", spain)
    assert first == Identifier("phone", "+34617345678")
    assert normalise.normalise_one("phone", "617 34 56 78", spain) is first  # remembered
    assert normalise.normalise_one("phone", "617 34 56 78", usa) != first  # the rules' answer
    for raw in ("alba@x.io", "Bruno@x.io", "carla@X.io"):
        assert normalise.normalise_one("email", raw, usa) == Identifier("email", raw.lower())
    assert len(normalise._answers) == 3  # the oldest forgotten
    assert sorted(normalise._rules_held) == sorted([id(spain), id(usa)])
    # Another object with the same contents shares the answers (the ingest's rules and the
    # resolver's); a third object lets the others go, but their answers stay.
    again = TenantRules(phone_region="US")
    assert normalise.normalise_one("email", "carla@X.io", again) is normalise.normalise_one(
        "email", "carla@X.io", usa
    )
    assert len(normalise._answers) == 3
    assert len(normalise._tokens) == 2
    # Contents a third time different forget everything, and answer as their rules say.
    mexico = TenantRules(phone_region="MX")
    assert normalise.normalise_one("phone", "55 1234 5678", mexico) == Identifier(
        "phone", "+525512345678"
    )
    assert len(normalise._answers) == len(normalise._tokens) == 1
    assert normalise.normalise_one("phone", "617 34 56 78", spain) == first  # read again
    assert len(normalise._answers) == len(normalise._tokens) == 2

"""The identity store contract, run on every persistence the resolver is built on.

Another store joins by subclassing `IdentityStoreContract` and providing the `store` fixture
(an `IdentityStore` adapter on a fresh, empty store). SQLite runs here; PostgreSQL runs
in tests/integration/test_identity_postgres.py, where the real server fixture lives.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import OperationalError
from pydantic import SecretStr

from bench.identity.workload import population, touched_at
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.identity import build_identity, identity_store
from kernel.opaque_ids import opaque_customer_id
from kernel.shredding import identity_store_key
from schemas.envelope import CustomerRef
from services.identity import (
    CandidateAlreadyDecided,
    CustomerNotFound,
    IdentityResolver,
    IdentityRules,
    IdentitySettings,
    MergeRefused,
    ResolvedCustomer,
    SplitRefused,
    TenantRules,
    resolution,
)
from services.identity import resolver as resolver_module
from services.identity.at_rest import StoreNamingMismatch
from services.identity.domain import NAMING_ID, IndexNaming
from services.identity.errors import GroupChanged
from services.identity.normalise import normalise_one
from services.identity.policy import Decision, Situation
from services.identity.ports import IdentityStore
from services.identity.rules import Identifier
from services.identity.state import UNKEYED

RULES = IdentityRules(default=TenantRules(phone_region="ES"))
MOBILE, LANDLINE = "+34 617 34 56 78", "+34 912 34 56 78"


def identities_of(
    identity: IdentityResolver, tenant: str, customer_id: str
) -> set[tuple[str, str, str]]:
    found = identity.identities(tenant, customer_id).identities
    return {(i.kind, i.value, i.held_by) for i in found}


R = TypeVar("R")


def run_together(count: int, work: Callable[[int], R]) -> list[R]:
    """Start `count` threads at the same moment and collect what each resolved."""
    barrier = threading.Barrier(count)
    results: list[R | None] = [None] * count
    errors: list[tuple[int, Exception]] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # reported below, with the thread's index
            errors.append((i, exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return [r for r in results if r is not None]


def same_partition(first: list[str], second: list[str]) -> bool:
    """Whether two labellings group the same items together (whatever the labels are)."""

    def canonical_labels(labels: list[str]) -> list[int]:
        seen: dict[str, int] = {}
        return [seen.setdefault(label, len(seen)) for label in labels]

    return canonical_labels(first) == canonical_labels(second)


# The platform key every replica of the service shares (the composition root derives it).
ID_KEY = b"contract test key, 32 bytes long"
SEALING_KEY = identity_store_key(ID_KEY)


class IdentityStoreFixtures:
    """A resolver on a fresh store (subclasses give `store`) and a tenant of its own."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> IdentityStore:
        raise NotImplementedError

    @pytest.fixture
    def identity(self, store: IdentityStore) -> Iterator[IdentityResolver]:
        resolver = IdentityResolver(store, RULES, id_key=ID_KEY)
        yield resolver
        resolver.close()

    @pytest.fixture
    def tenant(self) -> str:
        return f"t-{uuid.uuid4().hex[:10]}"


class IdentityStoreContract(IdentityStoreFixtures):
    """Behaviour every identity store must show."""

    @pytest.fixture
    def resolve(self, identity: IdentityResolver, tenant: str) -> Callable[..., ResolvedCustomer]:
        def resolve(event_id: str | None = None, **ref: Any) -> ResolvedCustomer:
            return identity.resolve(
                tenant, CustomerRef(**ref), event_id or str(uuid.uuid4()), "http"
            )

        return resolve

    # naming (issue 11, step 3: the identity store's index ids)

    def test_an_identifiers_index_and_slips_are_named_under_the_key_not_from_the_address(
        self, identity: IdentityResolver, store: IdentityStore, tenant: str, resolve: Any
    ) -> None:
        """Whoever holds a copy of the store and guesses `ana.lopez@shop.es` could compute the
        unkeyed names (uuid5, BLAKE2b) and learn the tenant knows her; the keyed ones need the
        platform key."""
        customer_id = resolve(email="Ana.Lopez@shop.es").customer_id
        found = normalise_one("email", "Ana.Lopez@shop.es", RULES.for_tenant(tenant))
        assert isinstance(found, Identifier)
        unkeyed, keyed = UNKEYED, IndexNaming.keyed(ID_KEY)
        with pytest.raises(AggregateNotFoundError):
            identity.repository.get(unkeyed.index_id(tenant, found.kind, found.value))
        index = identity.repository.get(keyed.index_id(tenant, found.kind, found.value))
        assert index.identifier == found and index.holders == [customer_id]
        slips = unkeyed.slip_key_ids(tenant, found)
        assert slips and store.select_slips(identity.recorder, tenant, slips) == {}
        filed = store.select_slips(identity.recorder, tenant, keyed.slip_key_ids(tenant, found))
        assert set(filed) == set(keyed.slip_key_ids(tenant, found))
        assert identity.holders_of(tenant, "email", "ana.lopez@shop.es") == (customer_id,)

    def test_a_store_named_under_a_key_is_refused_under_another_key_or_none(
        self, store: IdentityStore, tenant: str, resolve: Any
    ) -> None:
        customer_id = resolve(email="eva@shop.es").customer_id
        for other in (b"another platform's key, 32 bytes", None):
            with pytest.raises(StoreNamingMismatch, match="under another key"):
                IdentityResolver(store, RULES, id_key=other)
        again = IdentityResolver(store, RULES, id_key=ID_KEY)
        try:
            assert again.holders_of(tenant, "email", "eva@shop.es") == (customer_id,)
        finally:
            again.close()

    # resolution

    def test_every_spelling_of_the_same_identifiers_resolves_to_one_customer(
        self, resolve: Any
    ) -> None:
        first = resolve(email="Ana.Lopez@Gmail.com", phone=MOBILE)
        assert first.created and first.customer_id == first.home_id
        for ref in (
            {"email": "analopez@gmial.com"},
            {"phone": "617345678"},
            {"phone": "0034617345678"},
        ):
            again = resolve(**ref)
            assert (again.customer_id, again.created) == (first.customer_id, False)

    def test_a_touchpoint_resolved_again_returns_its_filing_and_writes_nothing(
        self, identity: IdentityResolver, resolve: Any
    ) -> None:
        event_id = str(uuid.uuid4())
        first = resolve(event_id, email="ana@x.io")
        position = identity.recorder.max_notification_id()
        again = resolve(event_id, email="ana@x.io")
        assert (again.home_id, again.replayed) == (first.home_id, True)
        assert identity.recorder.max_notification_id() == position

    def test_the_identity_map_reads_only_what_was_recorded_since_it_last_looked(
        self,
        identity: IdentityResolver,
        tenant: str,
        resolve: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        ana = resolve(email="ana@x.io").customer_id
        bea = resolve(email="bea@x.io").customer_id
        assert identity.identity_version(tenant) == 0
        looked_until = identity.recorder.max_notification_id()
        scans: list[tuple[int | None, int | None]] = []
        select = identity.recorder.select_notifications

        def spy(start: int | None, limit: int, stop: int | None = None, **kwargs: Any) -> Any:
            scans.append((start, stop))
            return select(start, limit, stop, **kwargs)

        monkeypatch.setattr(identity.recorder, "select_notifications", spy)
        assert identity.canonical_id(tenant, bea) == bea
        assert scans == []  # nothing recorded since: nothing read
        identity.merge(tenant, ana, bea, "same person", "key:k1")
        assert identity.canonical_id(tenant, bea) == ana  # the merge recorded since is seen
        end = identity.recorder.max_notification_id()
        assert scans == [(looked_until + 1, end)]

    def test_two_customers_seen_together_merge_and_the_absorbed_id_redirects(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        mailbox = resolve(email="ana@x.io").customer_id
        account = resolve(customer_id="u1").customer_id
        both = resolve(customer_id="u1", email="ana@x.io")
        assert (both.customer_id, both.merged) == (account, (mailbox,))
        assert identity.canonical_id(tenant, mailbox) == account
        assert identity.members(tenant, mailbox) == [account, mailbox]
        found = identity.identities(tenant, mailbox)
        assert (found.requested_id, found.customer_id) == (mailbox, account)
        assert identities_of(identity, tenant, mailbox) == {
            ("email", "ana@x.io", mailbox),
            ("customer_id", "u1", account),
        }
        actions = [(e.customer_id, e.action) for e in identity.history(tenant, account)]
        assert (account, "customers_merged") in actions
        assert (mailbox, "merged_into_survivor") in actions

    def test_a_batch_resolves_exactly_as_one_call_each_in_one_transaction(
        self, identity: IdentityResolver, tenant: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        touchpoints = population(40, seed=3)
        one_by_one = [identity.resolve(tenant, t.ref, t.event_id, t.channel) for t in touchpoints]
        other, saves = f"{tenant}-batch", []
        save = identity.save

        def counted_save(*aggregates: Any, **kwargs: Any) -> Any:
            saves.append(aggregates)
            return save(*aggregates, **kwargs)

        monkeypatch.setattr(identity, "save", counted_save)
        batched = identity.resolve_batch(
            other, [(t.ref, t.event_id, t.channel) for t in touchpoints]
        )
        assert len(saves) == 1
        assert same_partition(
            [identity.canonical_id(tenant, r.home_id) for r in one_by_one],
            [identity.canonical_id(other, r.home_id) for r in batched],
        )
        assert [r.created for r in batched] == [r.created for r in one_by_one]
        again = identity.resolve_batch(
            other, [(touchpoints[0].ref, touchpoints[0].event_id, "x")] * 2
        )
        assert [r.replayed for r in again] == [True, True]

    def test_a_new_customer_is_named_only_when_a_decision_registers_one(
        self, identity: IdentityResolver, tenant: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Touchpoints are decided with a provisional id for a new customer: the policy reads it
        only when registering one, so a decision that registers nobody is the same whatever it
        is, and a name is chosen (and the decision made with it) only when one registers."""
        decide, new_customer_name = resolution.decide, resolution.new_customer_name
        names: list[str] = []

        def checked_decide(situation: Situation, rules: TenantRules) -> Decision:
            decision = decide(situation, rules)
            if situation.new_customer_id == resolution.PROVISIONAL_ID:
                other = decide(replace(situation, new_customer_id="someone-else"), rules)
                assert decision.register or decision == other
            return decision

        def counted_name(*args: Any) -> str:
            names.append(new_customer_name(*args))
            return names[-1]

        monkeypatch.setattr(resolution, "decide", checked_decide)
        monkeypatch.setattr(resolution, "new_customer_name", counted_name)
        work = [(t.ref, t.event_id, t.channel, touched_at(t)) for t in population(60, seed=11)]
        results = identity.resolve_batch(tenant, work)
        assert any(r.created for r in results) and not all(r.created for r in results)
        assert names == [r.home_id for r in results if r.created]
        assert resolution.PROVISIONAL_ID not in {r.home_id for r in results}

    def test_an_opaque_name_already_taken_is_read_when_asked_for_and_never_given_twice(
        self, identity: IdentityResolver, tenant: str
    ) -> None:
        """A new customer is named by an opaque id of its seed, here the touchpoint (a
        placeholder identifies nobody). A producer may have used that id as a customer id
        already, in the store or earlier in the batch: the next one is given."""
        event_ids = [str(uuid.uuid4()) for _ in range(2)]
        taken = [opaque_customer_id(ID_KEY, tenant, f"event|{e}") for e in event_ids]
        guest = CustomerRef(customer_id="guest")
        identity.resolve_batch(tenant, [(guest, str(uuid.uuid4()), "http")])
        identity.resolve(tenant, CustomerRef(customer_id=taken[0]), str(uuid.uuid4()), "http")
        batch = [
            (CustomerRef(customer_id=taken[1]), str(uuid.uuid4()), "http"),
            (guest, event_ids[0], "http"),
            (guest, event_ids[1], "http"),
        ]
        first, *guests = identity.resolve_batch(tenant, batch)
        assert first.home_id == taken[1] and all(g.created for g in guests)
        assert len({first.home_id, *taken, *(g.home_id for g in guests)}) == 4
        assert all(g.home_id.startswith("c_") for g in guests)

    def test_a_batch_registering_many_customers_reads_their_names_in_a_few_queries(
        self, identity: IdentityResolver, tenant: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Naming a new customer asks whether its name is taken; the names the batch's new
        customers most likely get are read with the batch, not one query per customer."""
        reads: list[int] = []
        select_since = identity.reader.select_since

        def counted(recorder: Any, versions: Any) -> Any:
            reads.append(len(versions))
            return select_since(recorder, versions)

        monkeypatch.setattr(identity.reader, "select_since", counted)
        batch = [
            *(
                (CustomerRef(email=f"new{i}@example.com"), str(uuid.uuid4()), "http")
                for i in range(40)
            ),
            *((CustomerRef(customer_id="guest"), str(uuid.uuid4()), "http") for _ in range(10)),
            # A household's line alone registers a one-off customer named by its touchpoint.
            *((CustomerRef(phone=f"+3491{i:07d}"), str(uuid.uuid4()), "http") for i in range(10)),
        ]
        results = identity.resolve_batch(tenant, batch)
        assert all(r.created and r.home_id.startswith("c_") for r in results)
        assert len({r.home_id for r in results}) == len(batch)
        assert len(reads) <= 3, reads  # indexes, then the likely names (and nothing per customer)

    # merge and split by hand

    def test_a_preview_changes_nothing_and_a_merge_records_who_and_why(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        first, second = (
            resolve(email="alba@x.io").customer_id,
            resolve(email="bruno@x.io").customer_id,
        )
        version = identity.identity_version(tenant)
        plan = identity.merge(tenant, first, second, "same person", "key:k1", preview=True)
        assert plan.allowed and plan.merge_id is None
        assert {i.value for i in plan.identifiers} == {"alba@x.io", "bruno@x.io"}
        assert identity.identity_version(tenant) == version
        assert identity.canonical_id(tenant, second) == second
        done = identity.merge(tenant, first, second, "same person", "key:k1")
        assert done.merge_id and identity.canonical_id(tenant, second) == first
        assert identity.identity_version(tenant) > version
        merged = [e for e in identity.history(tenant, first) if e.action == "customers_merged"]
        assert merged[0].details["actor"] == "key:k1"
        assert merged[0].details["reason"] == "same person"

    def test_customers_with_different_unique_identifiers_are_never_merged(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        first = resolve(customer_id="u1").customer_id
        second = resolve(customer_id="u2").customer_id
        plan = identity.merge(tenant, first, second, "looks alike", "key:k1", preview=True)
        assert (plan.allowed, plan.conflicts) == (False, ("customer_id",))
        with pytest.raises(MergeRefused, match="customer_id"):
            identity.merge(tenant, first, second, "looks alike", "key:k1")

    def test_a_split_restores_each_side_exactly_and_reads_as_of_a_version_stay_put(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        first = resolve(email="alba@x.io", phone=MOBILE).customer_id
        second = resolve(email="bruno@x.io", customer_id="u2").customer_id
        before = identities_of(identity, tenant, first), identities_of(identity, tenant, second)
        v0 = identity.identity_version(tenant)
        identity.merge(tenant, first, second, "same person", "key:k1")
        v1 = identity.identity_version(tenant)
        outcome = identity.split(tenant, first, second, "two people", "key:k2")
        v2 = identity.identity_version(tenant)
        assert outcome.survivor_members == (first,) and outcome.absorbed_members == (second,)
        assert (
            identities_of(identity, tenant, first),
            identities_of(identity, tenant, second),
        ) == before
        assert v0 < v1 < v2
        assert identity.members(tenant, first, as_of=v0) == [first]
        assert identity.members(tenant, first, as_of=v1) == [first, second]
        assert identity.members(tenant, first, as_of=v2) == [first]
        # Several ids in one read (a search's results), an absorbed one answered by its group's.
        assert identity.groups(tenant, [second, first, "nobody"], as_of=v1) == {
            second: [first, second],
            first: [first, second],
            "nobody": ["nobody"],
        }
        assert identity.groups(tenant, [second, first]) == {second: [second], first: [first]}
        with pytest.raises(SplitRefused):
            identity.split(tenant, first, second, "again", "key:k2")

    def test_a_split_pair_is_never_merged_again_automatically(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        account = resolve(customer_id="u1").customer_id
        mailbox = resolve(email="alba@x.io").customer_id
        assert resolve(customer_id="u1", email="alba@x.io").merged == (mailbox,)
        identity.split(tenant, account, mailbox, "shared family account", "key:k1")
        again = resolve(customer_id="u1", email="alba@x.io")
        assert again.merged == () and identity.canonical_id(tenant, mailbox) == mailbox
        assert any("kept apart" in s.reason for s in again.skipped)

    def test_touchpoints_filed_through_an_absorbed_customer_go_back_with_it_on_a_split(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        survivor = resolve(email="sara@x.io").customer_id
        absorbed = resolve(email="alba@x.io").customer_id
        identity.merge(tenant, survivor, absorbed, "same person", "key:k1")
        later = resolve(email="alba@x.io", phone=MOBILE)
        assert (later.home_id, later.customer_id) == (absorbed, survivor)
        identity.split(tenant, survivor, absorbed, "two people", "key:k1")
        assert identity.canonical_id(tenant, later.home_id) == absorbed
        assert ("phone", "+34617345678", absorbed) in identities_of(identity, tenant, absorbed)
        assert identities_of(identity, tenant, survivor) == {("email", "sara@x.io", survivor)}

    # candidates

    def test_a_shared_line_proposes_a_candidate_and_a_rejection_sticks(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        dad = resolve(email="dad@x.io", phone=LANDLINE).customer_id
        kid = resolve(email="kid@x.io", phone=LANDLINE)
        assert kid.created and len(kid.proposed) == 1
        [candidate] = identity.candidates(tenant)
        assert {candidate.first_id, candidate.second_id} == {dad, kid.customer_id}
        decided = identity.decide_candidate(
            tenant, candidate.candidate_id, False, "siblings", "key:k1"
        )
        assert (decided.status, decided.decided_by) == ("rejected", "key:k1")
        assert identity.candidates(tenant) == []
        assert resolve(email="kid@x.io", phone=LANDLINE).proposed == ()
        with pytest.raises(CandidateAlreadyDecided):
            identity.decide_candidate(
                tenant, candidate.candidate_id, True, "changed mind", "key:k1"
            )

    def test_an_accepted_candidate_merges_the_pair_into_the_chosen_survivor(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        first = resolve(email="ana@x.io", phone=LANDLINE).customer_id
        second = resolve(email="ana.work@corp.es", phone=LANDLINE).customer_id
        [candidate] = identity.candidates(tenant)
        decided = identity.decide_candidate(
            tenant, candidate.candidate_id, True, "same person", "key:k1", survivor_id=first
        )
        assert decided.status == "accepted" and decided.merge_id
        assert identity.members(tenant, second) == [first, second]
        assert (
            identity.candidates(tenant, status="accepted")[0].candidate_id == candidate.candidate_id
        )

    def test_an_identifier_shared_by_too_many_customers_stops_linking(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        kiosk = "kiosk-madrid-1"
        shoppers = [resolve(email=f"p{i}@x.io", anonymous_id=kiosk).customer_id for i in range(4)]
        assert len(set(shoppers)) == 4
        statuses = {
            i.status
            for i in identity.identities(tenant, shoppers[0]).identities
            if i.kind == "anonymous_id"
        }
        assert statuses == {"saturated"}
        alone = resolve(anonymous_id=kiosk)
        assert alone.created and alone.customer_id not in shoppers

    # unlink and erasure

    def test_an_erased_identifier_never_links_again_not_even_on_replay(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        event_id = str(uuid.uuid4())
        ana = resolve(event_id, email="ana@x.io", phone=MOBILE).customer_id
        identity.unlink(tenant, ana, "phone", MOBILE, "erasure request", "key:dpo", erase=True)
        assert resolve(event_id, email="ana@x.io", phone=MOBILE).replayed
        stranger = resolve(phone=MOBILE)
        assert stranger.created and stranger.customer_id != ana
        assert [s.reason for s in stranger.skipped] == ["erased"]
        assert identities_of(identity, tenant, ana) == {("email", "ana@x.io", ana)}
        unlinked = [e for e in identity.history(tenant, ana) if e.action == "identifier_unlinked"]
        assert unlinked[0].details["erased"] is True

    def test_an_erased_identifier_carried_again_is_erased_with_its_new_customer(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        ana = resolve(email="ana@x.io").customer_id
        identity.erase_customer(tenant, ana, "GDPR", "key:dpo", "er-1", lambda t, s: s)
        again = resolve(email="ana@x.io", phone=MOBILE)
        assert again.customer_id != ana and [s.reason for s in again.skipped] == ["erased"]
        resolve(email="ana@x.io", phone=MOBILE)  # recorded once
        actions = [e.action for e in identity.history(tenant, again.customer_id)]
        assert actions.count("erased_identifier_presented") == 1
        done = identity.erase_customer(
            tenant, again.customer_id, "GDPR", "key:dpo", "er-2", lambda t, s: s
        )
        assert {"email:ana@x.io", "phone:+34617345678"} <= set(done.key_ids)
        assert done.counts["identifiers"] == 2

    def test_an_erasure_confirmed_for_another_group_changes_nothing(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        ana = resolve(email="ana@x.io").customer_id
        bea = resolve(email="bea@x.io").customer_id
        identity.merge(tenant, ana, bea, "one person", "key:k1")
        with pytest.raises(GroupChanged):  # confirmed before the merge: Ana alone
            identity.erase_customer(tenant, ana, "GDPR", "key:dpo", "er-1", lambda t, s: s, [ana])
        assert identity.erasure_of(tenant, ana) is None
        assert resolve(email="bea@x.io").customer_id == ana  # still linked, nothing suppressed
        done = identity.erase_customer(
            tenant, bea, "GDPR", "key:dpo", "er-2", lambda t, s: s, [bea, ana]
        )
        assert sorted(done.members) == sorted([ana, bea])

    def test_an_unlinked_identifier_may_go_to_someone_else_but_never_back(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        former = resolve(email="old@x.io", phone=MOBILE).customer_id
        identity.unlink(tenant, former, "phone", MOBILE, "number recycled", "key:k1")
        assert resolve(email="old@x.io", phone=MOBILE).linked == ()
        owner = resolve(email="new@x.io", phone=MOBILE)
        assert owner.created and owner.linked[-1].kind == "phone"
        assert resolve(phone=MOBILE).customer_id == owner.customer_id

    # concurrency, durability, isolation

    def test_concurrent_touchpoints_with_the_same_new_identifiers_create_one_customer(
        self, identity: IdentityResolver, store: IdentityStore, tenant: str
    ) -> None:
        spellings = ["ana@x.io", "ANA@X.IO", " ana@x.io", "Ana@x.io"] * 2
        replica = IdentityResolver(
            store, RULES, id_key=ID_KEY
        )  # as a second replica of the service would

        def work(i: int) -> ResolvedCustomer:
            ref = CustomerRef(email=spellings[i].strip(), phone=MOBILE)
            return (identity, replica)[i % 2].resolve(tenant, ref, str(uuid.uuid4()), "http")

        try:
            results = run_together(len(spellings), work)
        finally:
            replica.close()
        assert len({r.customer_id for r in results}) == 1
        assert sum(r.created for r in results) == 1

    def test_a_touchpoint_delivered_twice_at_once_is_filed_once(
        self, identity: IdentityResolver, tenant: str
    ) -> None:
        event_id = str(uuid.uuid4())

        def work(_: int) -> ResolvedCustomer:
            return identity.resolve(tenant, CustomerRef(email="ana@x.io"), event_id, "http")

        results = run_together(4, work)
        assert len({r.home_id for r in results}) == 1
        assert sum(r.created for r in results) == 1

    def test_a_replica_on_the_same_store_sees_customers_merges_and_candidates(
        self, identity: IdentityResolver, store: IdentityStore, tenant: str, resolve: Any
    ) -> None:
        first = resolve(email="alba@x.io", phone=LANDLINE).customer_id
        second = resolve(email="bruno@x.io", phone=LANDLINE).customer_id
        third = resolve(email="carla@x.io").customer_id
        identity.merge(tenant, first, third, "same person", "key:k1")
        replica = IdentityResolver(store, RULES, id_key=ID_KEY)
        try:
            assert (
                replica.resolve(
                    tenant, CustomerRef(email="bruno@x.io"), str(uuid.uuid4()), "api"
                ).customer_id
                == second
            )
            assert replica.members(tenant, first) == [first, third]
            assert replica.identity_version(tenant) == identity.identity_version(tenant)
            assert [c.candidate_id for c in replica.candidates(tenant)] == [
                c.candidate_id for c in identity.candidates(tenant)
            ]
        finally:
            replica.close()

    def test_a_replica_finds_a_known_email_one_slip_from_a_new_one_in_its_tenant_only(
        self, identity: IdentityResolver, store: IdentityStore, tenant: str
    ) -> None:
        def resolve(on: IdentityResolver, tenant: str, email: str) -> str:
            ref = CustomerRef(email=email)
            name = "Ana García López"
            return on.resolve(tenant, ref, str(uuid.uuid4()), "chat", name=name).customer_id

        ana = resolve(identity, tenant, "ana.garcia.lopez@x.io")
        # The slip keys are the store's: a replica with nothing cached finds her by them.
        replica = IdentityResolver(store, RULES, id_key=ID_KEY, cache_size=0)
        try:
            assert resolve(replica, tenant, "ana.gracia.lopez@x.io") == ana
            assert resolve(replica, tenant, "ana.garcai.lopez@x.io") == ana
            other = f"{tenant}-other"
            assert resolve(replica, other, "ana.gracia.lopez@x.io") != ana
        finally:
            replica.close()

    def test_two_replicas_filing_slips_of_one_email_at_once_find_each_other(
        self, store: IdentityStore
    ) -> None:
        replicas = [IdentityResolver(store, RULES, id_key=ID_KEY) for _ in range(2)]
        emails = ["ana.garcia.lopez@x.io", "ana.gracia.lopez@x.io"]
        try:
            for _ in range(8):
                tenant = f"t-{uuid.uuid4().hex[:10]}"

                def file(i: int, tenant: str = tenant) -> str:
                    ref = CustomerRef(email=emails[i])
                    name = "Ana García López"
                    found = replicas[i].resolve(tenant, ref, str(uuid.uuid4()), "chat", name=name)
                    return found.customer_id

                first, second = run_together(2, file)
                # Whichever filed second read the first's email (its slip key's place was
                # taken: it ran again), as one after the other would have.
                assert replicas[0].canonical_id(tenant, first) == replicas[0].canonical_id(
                    tenant, second
                )
        finally:
            for replica in replicas:
                replica.close()

    # the aggregate cache: aggregates kept between commands, brought up to date on every read

    def test_the_cache_changes_no_decision_even_when_it_keeps_evicting(
        self, store: IdentityStore, tenant: str
    ) -> None:
        work = [(t.ref, t.event_id, t.channel, touched_at(t)) for t in population(60, seed=5)]
        found = {}
        for size in (0, 100_000, 40):  # none; everything; fewer than one batch reads
            resolver = IdentityResolver(store, RULES, cache_size=size, id_key=ID_KEY)
            try:
                results = []
                for start in range(0, len(work), 25):
                    results += resolver.resolve_batch(f"{tenant}-{size}", work[start : start + 25])
                found[size] = results
            finally:
                resolver.close()
        assert outcome(found[0]) == outcome(found[100_000]) == outcome(found[40])
        homes = {size: [r.home_id for r in results] for size, results in found.items()}
        assert same_partition(homes[0], homes[100_000]) and same_partition(homes[0], homes[40])

    def test_a_replica_reads_every_change_another_made_to_what_it_has_cached(
        self, identity: IdentityResolver, store: IdentityStore, tenant: str, resolve: Any
    ) -> None:
        ana = resolve(email="ana@x.io", phone=MOBILE).customer_id  # now in identity's cache
        replica = IdentityResolver(store, RULES, id_key=ID_KEY)
        try:
            replica.unlink(tenant, ana, "phone", MOBILE, "erasure request", "key:dpo", erase=True)
            zoe = replica.resolve(tenant, CustomerRef(email="zoe@x.io"), str(uuid.uuid4()), "api")
            replica.merge(tenant, ana, zoe.customer_id, "same person", "key:k1")
        finally:
            replica.close()
        stranger = resolve(phone=MOBILE)
        assert stranger.created and [s.reason for s in stranger.skipped] == ["erased"]
        assert resolve(email="zoe@x.io").customer_id == ana
        assert identities_of(identity, tenant, ana) == {
            ("email", "ana@x.io", ana),
            ("email", "zoe@x.io", zoe.customer_id),
        }

    def test_an_attempt_that_loses_a_race_runs_again_on_what_the_winner_wrote(
        self,
        identity: IdentityResolver,
        store: IdentityStore,
        tenant: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        both = CustomerRef(email="ana@x.io", phone=MOBILE)
        replica = IdentityResolver(store, RULES, id_key=ID_KEY)
        try:
            # In order, in another tenant: the replica's touchpoint, then identity's.
            calm = f"{tenant}-calm"
            identity.resolve(calm, CustomerRef(phone=MOBILE), "e1", "http")
            replica.resolve(calm, CustomerRef(email="ana@x.io"), "e2", "api")
            expected = identity.resolve(calm, both, "e3", "http")
            # Racing: identity decides on what it has read (and cached), then the replica commits
            # first, so identity's save conflicts and its second attempt reads the replica's work.
            identity.resolve(tenant, CustomerRef(phone=MOBILE), "e1", "http")
            saves, save = [], identity.save

            def save_after_the_replica(*aggregates: Any, **kwargs: Any) -> Any:
                if not saves:
                    replica.resolve(tenant, CustomerRef(email="ana@x.io"), "e2", "api")
                saves.append(aggregates)
                return save(*aggregates, **kwargs)

            monkeypatch.setattr(identity, "save", save_after_the_replica)
            raced = identity.resolve(tenant, both, "e3", "http")
        finally:
            replica.close()
        assert len(saves) == 2  # the first attempt conflicted
        assert outcome([raced]) == outcome([expected])

        # The same customers in each tenant (ids differ: the tenant is part of what they derive
        # from): the one first seen with the phone, the one first seen with the email.
        def roles(tenant_id: str, found: ResolvedCustomer) -> tuple[bool, bool]:
            by_phone = identity.holders_of(tenant_id, "phone", MOBILE)
            by_email = identity.holders_of(tenant_id, "email", "ana@x.io")
            return found.home_id in by_phone, found.customer_id in by_email

        assert roles(tenant, raced) == roles(calm, expected)

    def test_an_attempt_that_fails_leaves_no_unsaved_change_in_the_cache(
        self,
        identity: IdentityResolver,
        tenant: str,
        resolve: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        resolve(email="ana@x.io")

        def store_gone(*aggregates: Any, **kwargs: Any) -> Any:
            raise OperationalError("the store went away")

        monkeypatch.setattr(identity, "save", store_gone)
        with pytest.raises(OperationalError):
            resolve(email="ana@x.io", phone=MOBILE)
        monkeypatch.undo()
        assert identity.cache is not None and len(identity.cache) > 0
        for aggregate in identity.cache.aggregates():
            stored = identity.recorder.select_events(aggregate.id, desc=True, limit=1)
            assert stored[0].originator_version == aggregate.version
        again = resolve(email="ana@x.io", phone=MOBILE)
        assert again.linked == (Identifier("phone", "+34617345678"),)

    def test_replicas_resolving_the_same_events_at_once_file_each_under_one_customer(
        self, identity: IdentityResolver, store: IdentityStore, tenant: str
    ) -> None:
        # The projections and satisfaction consumers of two processes, on one store.
        work = [(t.ref, t.event_id, t.channel, touched_at(t)) for t in population(30, seed=11)]
        replica = IdentityResolver(store, RULES, id_key=ID_KEY)

        def consume(i: int) -> list[ResolvedCustomer]:
            resolver, results = (identity, replica)[i], []
            for start in range(0, len(work), 20):
                results += resolver.resolve_batch(tenant, work[start : start + 20])
            return results

        try:
            first, second = run_together(2, consume)
        finally:
            replica.close()
        assert [r.home_id for r in first] == [r.home_id for r in second]
        assert not any(a.created and b.created for a, b in zip(first, second, strict=True))
        alone = consume_alone(store, f"{tenant}-alone", work)
        assert same_partition([r.home_id for r in first], [r.home_id for r in alone])
        registered = sum(r.created for r in first) + sum(r.created for r in second)
        assert registered == sum(r.created for r in alone)

    def test_tenants_never_share_customers(
        self, identity: IdentityResolver, tenant: str, resolve: Any
    ) -> None:
        ours = resolve(email="ana@x.io", phone="+34 617 34 56 78").customer_id
        only_ours = resolve(email="zoe@x.io").customer_id
        other = f"{tenant}-other"
        theirs = identity.resolve(other, CustomerRef(email="ana@x.io"), str(uuid.uuid4()), "http")
        # The tenant is part of what an id derives from: the same first identifier, two ids.
        assert theirs.created and theirs.customer_id != ours
        their_view = identity.identities(other, theirs.customer_id)
        assert {(i.kind, i.value) for i in their_view.identities} == {("email", "ana@x.io")}
        for mine in (ours, only_ours):
            with pytest.raises(CustomerNotFound):
                identity.identities(other, mine)
        with pytest.raises(CustomerNotFound):
            identity.merge(other, theirs.customer_id, only_ours, "probe", "key:k1", preview=True)


def consume_alone(store: IdentityStore, tenant: str, work: Sequence[Any]) -> list[ResolvedCustomer]:
    resolver = IdentityResolver(store, RULES, id_key=ID_KEY)
    try:
        return resolver.resolve_batch(tenant, work)
    finally:
        resolver.close()


def outcome(results: Sequence[ResolvedCustomer]) -> list[tuple[Any, ...]]:
    """What resolutions decided, without the ids a tenant derives its own way (candidates, and
    customers named by a UUID): compare those with `same_partition`."""
    return [
        (r.created, r.replayed, r.linked, len(r.merged), len(r.proposed), r.skipped)
        for r in results
    ]


class TestSqliteIdentityStore(IdentityStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> IdentityStore:
        return SqliteIdentityStore(tmp_path / "identity.sqlite")


class TestSealedSqliteIdentityStore(IdentityStoreContract):
    """The same behaviour with every stored event sealed (CEM_SEAL_PERSONAL_DATA)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> IdentityStore:
        return SqliteIdentityStore(tmp_path / "identity.sqlite", cipher_key=SEALING_KEY)


# how the store is built from settings


def test_the_embedded_store_lives_in_the_data_dir_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library would read these from the process environment; the resolver must not.
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("SQLITE_DBNAME", str(tmp_path / "elsewhere.sqlite"))
    settings = IdentitySettings(data_dir=tmp_path / "data", identity_cache_size=100)
    assert identity_store(settings).persistence_env()["SQLITE_DBNAME"] == str(
        tmp_path / "data" / "identity.sqlite"
    )
    identity = build_identity(settings, rules=RULES)
    try:
        identity.resolve("acme", CustomerRef(email="ana@x.io"), str(uuid.uuid4()), "http")
    finally:
        identity.close()
    assert (tmp_path / "data" / "identity.sqlite").stat().st_size > 0
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_the_distributed_store_takes_its_connection_from_the_dsn() -> None:
    settings = IdentitySettings(
        mode="distributed",
        postgres_dsn=SecretStr("postgresql://cem:s3cret@db.internal:6432/cemdb"),
        identity_postgres_schema="identity",
    )
    # A platform key given: the replicas' shared one is read from the server (sealing's key).
    env = identity_store(settings, b"k" * 32).persistence_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.internal",
        "6432",
        "cemdb",
    )
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_SCHEMA"]) == (
        "cem",
        "s3cret",
        "identity",
    )


def test_a_missing_rules_file_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CEM_IDENTITY_RULES_FILE"):
        IdentitySettings(identity_rules_file=tmp_path / "missing.json")


def test_a_store_written_before_keyed_names_keeps_its_unkeyed_names(tmp_path: Path) -> None:
    """A store with events and no record of its naming was written unkeyed: opened with the key
    it stays so (its customers are found, nothing is recorded), until a copy into a new store
    (`cem migrate-ids --into`) names everything under the key. Opening an empty store writes
    nothing either; its first save records the naming."""
    path = tmp_path / "identity.sqlite"
    before = IdentityResolver(SqliteIdentityStore(path), RULES)  # no key: unkeyed, as before
    try:
        eva = before.resolve("acme", CustomerRef(email="eva@shop.es"), "e1", "http")
    finally:
        before.close()
    after = IdentityResolver(SqliteIdentityStore(path), RULES, id_key=ID_KEY)
    try:
        assert after.naming == UNKEYED
        assert after.holders_of("acme", "email", "eva@shop.es") == (eva.customer_id,)
        after.resolve("acme", CustomerRef(email="luis@shop.es"), "e2", "http")
        with pytest.raises(AggregateNotFoundError):
            after.repository.get(NAMING_ID)
    finally:
        after.close()
    empty = IdentityResolver(SqliteIdentityStore(tmp_path / "new.sqlite"), RULES, id_key=ID_KEY)
    try:
        assert empty.recorder.max_notification_id() in (None, 0)
        empty.resolve("acme", CustomerRef(email="eva@shop.es"), "e1", "http")
        assert empty.repository.get(NAMING_ID).check == IndexNaming.keyed(ID_KEY).check()
    finally:
        empty.close()


def test_a_replica_starting_while_another_saves_first_names_as_the_store_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica starting on an empty store reads whether it has events and whether it recorded
    its naming. Another replica's first save (the record with its first events) landing between
    the two reads must not leave it naming unkeyed in a keyed store: the events are read first,
    so a store seen empty and then with its record is keyed, as it is."""
    path = tmp_path / "identity.sqlite"
    probe = IdentityResolver(SqliteIdentityStore(tmp_path / "probe.sqlite"), RULES, id_key=ID_KEY)
    recorder_class = type(probe.recorder)
    probe.close()
    fired, armed = False, False

    def the_other_replica_saves() -> None:
        nonlocal fired
        if fired or not armed:
            return
        fired = True
        other = IdentityResolver(SqliteIdentityStore(path), RULES, id_key=ID_KEY)
        try:
            other.resolve("acme", CustomerRef(email="eva@shop.es"), "e1", "http")
        finally:
            other.close()

    real_max, real_get = recorder_class.max_notification_id, Repository.get

    def max_then(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = real_max(self, *args, **kwargs)
        the_other_replica_saves()
        return found

    def get_then(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return real_get(self, *args, **kwargs)
        finally:
            the_other_replica_saves()

    def readable_then(*args: Any) -> None:  # the store's first and last events, read before
        nonlocal armed
        real_readable(*args)
        armed = True

    real_readable = resolver_module.check_readable
    monkeypatch.setattr(resolver_module, "check_readable", readable_then)
    monkeypatch.setattr(recorder_class, "max_notification_id", max_then)
    monkeypatch.setattr(Repository, "get", get_then)
    starting = IdentityResolver(SqliteIdentityStore(path), RULES, id_key=ID_KEY)
    monkeypatch.undo()
    try:
        assert fired and starting.naming == IndexNaming.keyed(ID_KEY)
        assert starting.holders_of("acme", "email", "eva@shop.es")
    finally:
        starting.close()

"""Identity rules: normalisation, placeholders, per-tenant config and the resolution policy (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.envelope import CustomerRef
from services.identity import rules as rules_module
from services.identity.normalise import Rejected, normalise_one, normalise_ref
from services.identity.policy import (
    DAY_MICROS,
    Claim,
    Group,
    Reassign,
    Situation,
    Split,
    decide,
    unique_conflicts,
)
from services.identity.rules import (
    ExternalNamespace,
    Identifier,
    IdentityRules,
    KindRule,
    TenantRules,
)

ES = TenantRules(phone_region="ES")
NEW = "new-customer"


def email(value: str) -> Identifier:
    return Identifier("email", value)


def phone(value: str) -> Identifier:
    return Identifier("phone", value)


def ids(ref: CustomerRef, rules: TenantRules = ES) -> list[Identifier]:
    return list(normalise_ref(ref, rules).identifiers)


# normalisation


@pytest.mark.parametrize(
    "raw",
    [
        "Ana.Lopez@Gmail.com",
        "ana.lopez@gmial.com",
        "ANALOPEZ@GOOGLEMAIL.COM",
        "ana.lopez+news@gmail.com",
    ],
)
def test_every_spelling_of_one_mailbox_is_one_email(raw: str) -> None:
    assert ids(CustomerRef(email=raw)) == [email("analopez@gmail.com")]


def test_dots_are_kept_where_the_provider_does_not_ignore_them() -> None:
    assert ids(CustomerRef(email="Ana.Lopez@Yahoo.es")) == [email("ana.lopez@yahoo.es")]


@pytest.mark.parametrize(
    "raw",
    [
        "617345678",
        "617 34 56 78",
        "+34 617 34 56 78",
        "0034617345678",
        "+34 (617) 345-678",
        "+34.617.345.678",
    ],
)
def test_every_format_of_a_spanish_number_is_one_e164_phone(raw: str) -> None:
    assert ids(CustomerRef(phone=raw)) == [phone("+34617345678")]


def test_national_numbers_are_read_in_the_tenants_region() -> None:
    us = TenantRules(phone_region="us")
    assert ids(CustomerRef(phone="(415) 555-2671"), us) == [phone("+14155552671")]
    assert normalise_ref(CustomerRef(phone="(415) 555-2671"), ES).rejected == (
        Rejected("phone", "(415) 555-2671", "invalid"),
    )


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("email", "test@test.com"),
        ("email", "noreply@shop.es"),
        ("email", "someone@example.com"),
        ("email", "UNKNOWN@unknown.com"),
        ("phone", "0000000000"),
        ("phone", "999 999 999"),
        ("phone", "123456789"),
        ("anonymous_id", "undefined"),
        ("customer_id", "N/A"),
    ],
)
def test_placeholders_never_become_identifiers(field: str, raw: str) -> None:
    normalised = normalise_ref(CustomerRef.model_validate({field: raw}), ES)
    assert normalised.identifiers == ()
    assert normalised.rejected[0].reason in {"placeholder", "blocked"}


def test_a_tenant_blocks_its_own_values_after_normalisation() -> None:
    rules = TenantRules(phone_region="ES", blocked={"email": ("front.desk@shop.es",)})
    assert normalise_one("email", "Front.Desk@Shop.ES", rules) == Rejected(
        "email", "Front.Desk@Shop.ES", "blocked"
    )
    assert normalise_one("email", "ana@shop.es", rules) == email("ana@shop.es")


def test_external_ids_are_normalised_by_namespace() -> None:
    rules = TenantRules(external={"loyalty": ExternalNamespace(case="upper", drop=" -")})
    ref = CustomerRef(external_ids={"loyalty": "ab-12 34", "crm": "Ab-1"})
    assert ids(ref, rules) == [
        Identifier("external:crm", "Ab-1"),
        Identifier("external:loyalty", "AB1234"),
    ]


def test_every_identifier_of_a_ref_is_normalised() -> None:
    ref = CustomerRef(
        customer_id=" u1 ", email="Alba@x.io", phone="+34617345678", anonymous_id="d1"
    )
    assert sorted(ids(ref)) == sorted(
        [
            Identifier("customer_id", "u1"),
            email("alba@x.io"),
            phone("+34617345678"),
            Identifier("anonymous_id", "d1"),
        ]
    )


# per-tenant configuration


def test_every_family_needs_a_rule() -> None:
    with pytest.raises(ValidationError, match="missing: phone"):
        TenantRules(kinds={k: v for k, v in TenantRules().kinds.items() if k != "phone"})


def test_an_unknown_phone_region_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown phone region"):
        TenantRules(phone_region="XX")


def test_tenants_override_the_default_and_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"tenants": {"acme": {"phone_region": "ES", "auto_merge": False}}}))
    rules = IdentityRules.from_file(path)
    assert rules.for_tenant("acme").auto_merge is False
    assert rules.for_tenant("acme").phone_region == "ES"
    assert rules.for_tenant("other") == TenantRules()


def test_fixed_lines_and_namespaces_have_their_own_rule() -> None:
    loyalty = KindRule(priority=95, strong=True, unique=True)
    rules = TenantRules(external={"loyalty": ExternalNamespace(rule=loyalty)})
    assert rules.rule_for(phone("+34912345678")) == rules.fixed_line
    assert rules.rule_for(phone("+34617345678")) == rules.kinds["phone"]
    assert rules.rule_for(Identifier("external:loyalty", "L1")) == loyalty
    assert rules.rule_for(Identifier("external:crm", "C1")) == rules.kinds["external"]


def test_the_rule_of_an_identifier_is_remembered_per_rules_object_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rules_module, "RULES_FOUND", 2)
    monkeypatch.setattr(rules_module, "RULES_HELD", 2)
    monkeypatch.setattr(rules_module, "_rules_found", {})
    monkeypatch.setattr(rules_module, "_rules_held", {})
    line = phone("+34912345678")
    as_phone = TenantRules(fixed_line=None)
    assert TenantRules().rule_for(line) == TenantRules().fixed_line  # held while remembered
    assert as_phone.rule_for(line) == as_phone.kinds["phone"]  # each object its own answer
    assert as_phone.rule_for(line) is as_phone.rule_for(line)
    assert len(rules_module._rules_found) <= 2 and len(rules_module._rules_held) <= 2
    for value in ("+34617345678", "+34617345679", "+34617345670"):
        assert as_phone.rule_for(phone(value)) == as_phone.kinds["phone"]
    assert len(rules_module._rules_found) <= 2  # bounded: forgotten, then found again
    assert {k[0] for k in rules_module._rules_found} <= set(rules_module._rules_held)


def test_unique_conflicts_name_the_kinds_held_with_different_values() -> None:
    ours = [Identifier("customer_id", "u1"), email("alba@x.io")]
    theirs = [Identifier("customer_id", "u2"), email("bruno@x.io")]
    assert unique_conflicts(ours, theirs, ES) == ["customer_id"]
    assert unique_conflicts(ours, [email("bruno@x.io")], ES) == []


# the policy


def group(canonical: str, *identifiers: Identifier, members: tuple[str, ...] = ()) -> Group:
    return Group(canonical, frozenset({canonical, *members}), frozenset(identifiers))


def situation(
    claims: list[Claim],
    *groups: Group,
    apart: frozenset[frozenset[str]] = frozenset(),
    at: int = 0,
    profiles: frozenset[str] = frozenset(),
) -> Situation:
    by_member = {m: g for g in groups for m in g.members}
    return Situation(tuple(claims), by_member, NEW, apart, at=at, profiles=profiles)


def test_new_identifiers_register_a_customer_holding_all_of_them() -> None:
    decision = decide(situation([Claim(email("alba@x.io")), Claim(phone("+34617345678"))]), ES)
    assert decision.register and decision.home_id == NEW
    assert {link.identifier for link in decision.links} == {
        email("alba@x.io"),
        phone("+34617345678"),
    }
    assert all(link.rule == "first_seen" for link in decision.links)


def test_a_known_identifier_files_the_event_with_its_holder_and_links_the_new_ones() -> None:
    ana = group("ana", email("alba@x.io"))
    decision = decide(
        situation([Claim(email("alba@x.io"), ("ana",)), Claim(phone("+34617345678"))], ana), ES
    )
    assert (decision.home_id, decision.register) == ("ana", False)
    assert [(link.identifier, link.rule) for link in decision.links] == [
        (phone("+34617345678"), "seen_with:email")
    ]


def test_two_customers_holding_strong_identifiers_of_one_event_merge_into_the_higher_priority() -> (
    None
):
    account = group("acc", Identifier("customer_id", "u1"))
    mailbox = group("mail", email("alba@x.io"))
    claims = [
        Claim(email("alba@x.io"), ("mail",)),
        Claim(Identifier("customer_id", "u1"), ("acc",)),
    ]
    decision = decide(situation(claims, account, mailbox), ES)
    assert decision.home_id == "acc"
    assert [(m.survivor_id, m.absorbed_id) for m in decision.merges] == [("acc", "mail")]
    assert "email=alba@x.io" in decision.merges[0].reason


def test_different_values_of_a_unique_kind_are_proposed_never_merged() -> None:
    first = group("c1", Identifier("customer_id", "u1"), email("alba@x.io"))
    claims = [Claim(Identifier("customer_id", "u2")), Claim(email("alba@x.io"), ("c1",))]
    decision = decide(situation(claims, first), ES)
    assert decision.register and decision.merges == ()
    assert [(p.first_id, p.second_id) for p in decision.proposals] == [(NEW, "c1")]
    assert Identifier("customer_id", "u2") in {link.identifier for link in decision.links}


def test_an_event_with_only_a_shared_identifier_is_left_unattributed() -> None:
    line = phone("+34912345678")
    decision = decide(
        situation([Claim(line, ("p1", "p2"))], group("p1", line), group("p2", line)), ES
    )
    assert decision.register and decision.links == () and decision.proposals == ()
    assert decision.ambiguous_between == ("p1", "p2")


def test_a_tenant_may_file_shared_identifiers_under_the_latest_holder() -> None:
    line = phone("+34912345678")
    rules = TenantRules(phone_region="ES", shared_identifier="most_recent")
    decision = decide(
        situation([Claim(line, ("p1", "p2"))], group("p1", line), group("p2", line)), rules
    )
    assert (decision.home_id, decision.register) == ("p2", False)


def test_a_household_line_never_gives_a_known_person_a_new_email() -> None:
    line = phone("+34912345678")
    dad = group("dad", email("dad@x.io"), line)
    decision = decide(situation([Claim(email("kid@x.io")), Claim(line, ("dad",))], dad), ES)
    assert decision.register
    assert {link.identifier for link in decision.links} == {email("kid@x.io"), line}
    assert [(p.first_id, p.second_id) for p in decision.proposals] == [(NEW, "dad")]


def test_a_personal_mobile_completes_and_extends_its_holder() -> None:
    mobile = phone("+34617345678")
    ana = group("ana", email("ana@x.io"), mobile)
    card = Identifier("external:loyalty", "L1")
    completed = decide(situation([Claim(card), Claim(mobile, ("ana",))], ana), ES)
    assert (completed.home_id, completed.links[0].identifier) == ("ana", card)
    assert completed.links[0].rule == "vouched_by:phone"
    extended = decide(situation([Claim(email("other@x.io")), Claim(mobile, ("ana",))], ana), ES)
    assert (extended.home_id, extended.links[0].identifier) == ("ana", email("other@x.io"))


def test_a_mobile_that_only_completes_never_brings_a_second_email() -> None:
    mobile = phone("+34617345678")
    completing = KindRule(priority=60, strong=False, max_holders=3, vouches=True)
    rules = TenantRules(phone_region="ES", kinds={**ES.kinds, "phone": completing})
    ana = group("ana", email("ana@x.io"), mobile)
    extended = decide(situation([Claim(email("other@x.io")), Claim(mobile, ("ana",))], ana), rules)
    assert extended.register and extended.proposals[0].second_id == "ana"


T0 = 1_750_000_000_000_000  # epoch microseconds


def test_a_mobile_unused_for_months_completes_but_no_longer_extends() -> None:
    mobile = phone("+34617345678")
    ana = group("ana", email("ana@x.io"), mobile)
    used = Claim(mobile, ("ana",), confirmed={"ana": T0})
    later = T0 + 100 * DAY_MICROS
    decision = decide(situation([Claim(email("other@x.io")), used], ana, at=later), ES)
    assert decision.register and decision.merges == ()
    assert decision.proposals[0].second_id == "ana"
    card = Identifier("external:loyalty", "L1")
    completed = decide(situation([Claim(card), used], ana, at=later), ES)
    assert (completed.home_id, completed.links[0].identifier) == ("ana", card)
    recent = decide(situation([Claim(email("other@x.io")), used], ana, at=T0 + DAY_MICROS), ES)
    assert recent.home_id == "ana"


def test_a_number_its_holder_replaced_passes_to_whoever_presents_it_next() -> None:
    old = phone("+34617345678")
    ana = group("ana", email("ana@x.io"), old, phone("+34698765432"))
    moved_on = Claim(old, ("ana",), confirmed={"ana": T0}, successors={"ana": T0 + DAY_MICROS})
    later = T0 + 100 * DAY_MICROS
    bob = decide(situation([Claim(email("bob@x.io")), moved_on], ana, at=later), ES)
    assert bob.register and bob.merges == () and bob.proposals == ()
    assert (old, "reassigned") in {(link.identifier, link.rule) for link in bob.links}
    assert bob.reassign == (Reassign(old, ("ana",)),)
    call = decide(situation([moved_on], ana, at=later), ES)  # a call from the number alone
    assert call.register and call.reassign == (Reassign(old, ("ana",)),)
    # Before a month is over it is still Ana's: her number, her call.
    early = decide(situation([moved_on], ana, at=T0 + 30 * DAY_MICROS), ES)
    assert (early.home_id, early.reassign) == ("ana", ())


def test_a_number_its_holder_moved_on_from_a_month_ago_is_no_longer_theirs() -> None:
    # Ana changed numbers: her new mobile is in use, the old one unused for over a month. The
    # carrier may have handed it to somebody else after ageing it (a month or more): a call from it
    # is no longer taken for Ana's, and does not wait out the longest ageing (90 days).
    old = phone("+34617345678")
    ana = group("ana", email("ana@x.io"), old, phone("+34698765432"))
    moved_on = Claim(old, ("ana",), confirmed={"ana": T0}, successors={"ana": T0 + DAY_MICROS})
    # A call from it alone is no longer taken for hers either (precision first: it may be the
    # number's new owner; the opposite error only splits Ana's rarely used second line).
    call = decide(situation([moved_on], ana, at=T0 + 31 * DAY_MICROS), ES)
    assert call.register and call.reassign == (Reassign(old, ("ana",)),)
    newcomer = decide(
        situation([Claim(email("bob@x.io")), moved_on], ana, at=T0 + 31 * DAY_MICROS), ES
    )
    assert newcomer.register and newcomer.merges == () and newcomer.proposals == ()
    assert newcomer.reassign == (Reassign(old, ("ana",)),)
    # A month idle without a newer number is not a change of numbers: still hers (a second line).
    kept = Claim(old, ("ana",), confirmed={"ana": T0})
    assert decide(situation([kept], ana, at=T0 + 31 * DAY_MICROS), ES).home_id == "ana"
    # Nor is a number she used after her newer one: two lines in use.
    both = Claim(old, ("ana",), confirmed={"ana": T0 + 2 * DAY_MICROS}, successors={"ana": T0})
    assert decide(situation([both], ana, at=T0 + 31 * DAY_MICROS), ES).home_id == "ana"
    # A tenant may keep numbers until the longest ageing is over.
    waiting = KindRule(**{**ES.kinds["phone"].model_dump(), "moved_on_after_days": None})
    patient = TenantRules(phone_region="ES", kinds={**ES.kinds, "phone": waiting})
    assert decide(situation([moved_on], ana, at=T0 + 31 * DAY_MICROS), patient).home_id == "ana"
    patiently = situation([Claim(email("bob@x.io")), moved_on], ana, at=T0 + 31 * DAY_MICROS)
    assert decide(patiently, patient).reassign == ()


def test_a_call_from_a_household_line_alone_is_nobodys_in_particular() -> None:
    # A landline rings in a home: a call from it with nothing else may be any of the household's.
    line = phone("+34912345678")
    dad = group("dad", email("dad@x.io"), line)
    call = decide(situation([Claim(line, ("dad",))], dad), ES)
    assert (call.home_id, call.register, call.links, call.merges) == (NEW, True, (), ())
    assert [s.identifier for s in call.skipped] == [line]
    # Nor do its calls gather on a customer of the line's own (one customer for a household).
    first = decide(situation([Claim(line)]), ES)
    assert first.register and first.links == ()
    # The line still joins whoever gives it beside identifiers of their own.
    mum = decide(situation([Claim(email("mum@x.io")), Claim(line, ("dad",))], dad), ES)
    assert line in {link.identifier for link in mum.links} and mum.merges == ()
    # A mobile alone is a person's: its calls are its holder's.
    mobile = phone("+34617345678")
    ana = group("ana", email("ana@x.io"), mobile)
    assert decide(situation([Claim(mobile, ("ana",))], ana), ES).home_id == "ana"


def test_use_of_a_mobile_is_confirmed_at_most_weekly_and_not_by_calls_once_dormant() -> None:
    mobile = phone("+34617345678")
    ana = group("ana", email("ana@x.io"), mobile)
    used = Claim(mobile, ("ana",), confirmed={"ana": T0})
    week = decide(situation([used], ana, at=T0 + 8 * DAY_MICROS), ES)
    assert week.confirm == ((mobile, "ana"),)
    assert decide(situation([used], ana, at=T0 + 2 * DAY_MICROS), ES).confirm == ()
    dormant_call = decide(situation([used], ana, at=T0 + 100 * DAY_MICROS), ES)
    assert dormant_call.home_id == "ana" and dormant_call.confirm == ()
    with_email = [Claim(email("ana@x.io"), ("ana",)), used]
    confirmed = decide(situation(with_email, ana, at=T0 + 100 * DAY_MICROS), ES)
    assert confirmed.confirm == ((mobile, "ana"),)


def test_a_mobile_that_extends_brings_a_second_email_unless_a_unique_kind_differs() -> None:
    mobile = phone("+34617345678")
    extending = KindRule(priority=60, strong=False, max_holders=3, vouches=True, extends=True)
    rules = TenantRules(phone_region="ES", kinds={**ES.kinds, "phone": extending})
    ana = group("ana", email("ana@x.io"), mobile)
    extended = decide(
        situation([Claim(email("ana.work@x.io")), Claim(mobile, ("ana",))], ana), rules
    )
    assert (extended.home_id, extended.links[0].identifier) == ("ana", email("ana.work@x.io"))
    work = group("work", email("ana.work@x.io"))
    claims = [Claim(email("ana.work@x.io"), ("work",)), Claim(mobile, ("ana",))]
    joined = decide(situation(claims, ana, work), rules)
    assert [(m.survivor_id, m.absorbed_id) for m in joined.merges] == [("work", "ana")]
    account = group("acc", Identifier("customer_id", "u2"), mobile)
    claims = [Claim(Identifier("customer_id", "u1"), ("u1",)), Claim(mobile, ("acc",))]
    apart = decide(situation(claims, group("u1", Identifier("customer_id", "u1")), account), rules)
    assert apart.merges == () and apart.proposals[0].second_id == "acc"


def test_an_anonymous_profile_joins_the_customer_who_logs_in_on_its_device() -> None:
    device = Identifier("anonymous_id", "d1")
    visitor = group("visitor", device)
    decision = decide(
        situation([Claim(Identifier("customer_id", "u1")), Claim(device, ("visitor",))], visitor),
        ES,
    )
    assert (decision.home_id, decision.register) == (NEW, True)
    assert [link.identifier for link in decision.links] == [Identifier("customer_id", "u1")]
    assert [(m.survivor_id, m.absorbed_id) for m in decision.merges] == [(NEW, "visitor")]


def test_a_visit_from_a_persons_device_is_filed_under_the_devices_own_profile() -> None:
    tablet = Identifier("anonymous_id", "t1")
    ana = group("ana", email("ana@x.io"), tablet)
    first = decide(situation([Claim(tablet, ("ana",))], ana), ES)
    assert (first.home_id, first.register) == (NEW, True)
    assert [(link.identifier, link.rule) for link in first.links] == [(tablet, "device_profile")]
    assert [(m.survivor_id, m.absorbed_id) for m in first.merges] == [("ana", NEW)]
    with_profile = group("ana", email("ana@x.io"), tablet, members=("prof",))
    claim = Claim(tablet, ("ana", "prof"))
    later = decide(situation([claim], with_profile, profiles=frozenset({"prof"})), ES)
    assert (later.home_id, later.register, later.merges) == ("prof", False, ())


def test_a_device_another_known_person_uses_is_shared_and_its_profile_leaves() -> None:
    tablet = Identifier("anonymous_id", "t1")
    ana = group("ana", email("ana@x.io"), tablet, members=("prof",))
    bob = group("bob", email("bob@x.io"))
    claims = [Claim(email("bob@x.io"), ("bob",)), Claim(tablet, ("ana", "prof"))]
    decision = decide(situation(claims, ana, bob, profiles=frozenset({"prof"})), ES)
    assert decision.home_id == "bob" and decision.merges == ()
    assert decision.splits == (Split("prof", "anonymous_id=t1 is used by several customers"),)
    assert decision.saturate == (tablet,)
    assert tablet not in {link.identifier for link in decision.links}
    # A customer seen for the first time with an email of their own may be Ana (a new mailbox)
    # or someone else on her tablet: review only.
    newcomer = [
        Claim(Identifier("customer_id", "u9")),
        Claim(email("ana.work@acme.es")),
        Claim(tablet, ("ana", "prof")),
    ]
    fresh = decide(situation(newcomer, ana, profiles=frozenset({"prof"})), ES)
    assert fresh.splits == () and fresh.saturate == ()
    assert [(p.first_id, p.second_id) for p in fresh.proposals] == [(NEW, "ana")]
    # An account signed in on a device only Ana used, and nothing else: Ana's account.
    account = [Claim(Identifier("customer_id", "u9")), Claim(tablet, ("ana", "prof"))]
    signed_in = decide(situation(account, ana, profiles=frozenset({"prof"})), ES)
    assert (signed_in.home_id, signed_in.register, signed_in.proposals) == ("ana", False, ())
    assert Identifier("customer_id", "u9") in {link.identifier for link in signed_in.links}


def test_an_anonymous_profile_reached_from_a_known_customer_is_merged_into_it() -> None:
    device = Identifier("anonymous_id", "d1")
    ana = group("ana", email("ana@x.io"))
    claims = [Claim(email("ana@x.io"), ("ana",)), Claim(device, ("visitor",))]
    decision = decide(situation(claims, ana, group("visitor", device)), ES)
    assert [(m.survivor_id, m.absorbed_id) for m in decision.merges] == [("ana", "visitor")]


def test_a_value_shared_by_more_customers_than_allowed_stops_linking() -> None:
    kiosk = Identifier("anonymous_id", "kiosk-1")
    holders = [group(f"p{i}", email(f"p{i}@x.io"), kiosk) for i in range(3)]
    claims = [Claim(email("new@x.io")), Claim(kiosk, ("p0", "p1", "p2"))]
    decision = decide(situation(claims, *holders), ES)
    assert decision.saturate == (kiosk,)
    assert kiosk not in {link.identifier for link in decision.links}


def test_a_device_records_the_people_who_used_it_without_being_able_to_hold_it() -> None:
    kiosk = Identifier("anonymous_id", "kiosk-1")
    ana = group("ana", Identifier("external:loyalty", "L1"), kiosk)
    # A walk-in known only by a new mobile: a mobile may not add a holder to a device, so the
    # kiosk is not linked to him, but he is remembered as one of its users.
    walk_in = decide(situation([Claim(phone("+34622000111")), Claim(kiosk, ("ana",))], ana), ES)
    assert walk_in.register and kiosk not in {link.identifier for link in walk_in.links}
    assert walk_in.present == ((kiosk, NEW),)
    # A visit with nothing but the kiosk is then nobody's in particular, not Ana's profile's.
    luis = group("luis", phone("+34622000111"))
    seen = Claim(kiosk, ("ana",), presented_by=("luis",))
    alone = decide(situation([seen], ana, luis), ES)
    assert (alone.register, alone.links, alone.merges) == (True, (), ())
    assert alone.ambiguous_between == ("ana", "luis")
    # ... and its one-off customer, known by nothing, is nobody to remember as a user.
    assert alone.present == ()
    # Nor do the kiosk's anonymous visits join the next customer who signs in on it.
    visits = Claim(kiosk, ("visitor",), presented_by=("luis",))
    account = Claim(Identifier("customer_id", "u9"))
    newcomer = decide(situation([account, visits], group("visitor", kiosk), luis), ES)
    assert newcomer.register and newcomer.merges == ()
    before = decide(situation([account, Claim(kiosk, ("visitor",))], group("visitor", kiosk)), ES)
    assert [(m.survivor_id, m.absorbed_id) for m in before.merges] == [(NEW, "visitor")]


def test_a_device_used_by_as_many_people_as_it_may_have_holders_stops_linking() -> None:
    kiosk = Identifier("anonymous_id", "kiosk-1")
    ana = group("ana", Identifier("external:loyalty", "L1"), kiosk, members=("prof",))
    walk_ins = [group(f"w{i}", phone(f"+3462200011{i}")) for i in range(2)]
    claim = Claim(kiosk, ("prof",), presented_by=("w0", "w1"))
    # A third walk-in known by a mobile: one holder and two users make three customers.
    decision = decide(
        situation(
            [Claim(phone("+34633000999")), claim], ana, *walk_ins, profiles=frozenset({"prof"})
        ),
        ES,
    )
    assert decision.saturate == (kiosk,)
    # The kiosk's profile leaves Ana: its anonymous visits were anyone's at the store.
    assert decision.splits == (Split("prof", "anonymous_id=kiosk-1 is used by several customers"),)
    # Who used it stays on record (Ana, whose profile leaves her, and the walk-in): four
    # customers, more than a device may have holders, so it is shared for good.
    assert decision.present == ((kiosk, "ana"), (kiosk, NEW))
    # Lines keep their own rule: a household's landline is not counted this way.
    line = Identifier("phone", "+34912345678")
    home = group("ana", email("ana@x.io"), line)
    beside = decide(situation([Claim(phone("+34633000999")), Claim(line, ("ana",))], home), ES)
    assert (beside.saturate, beside.present) == ((), ())


def test_erased_and_saturated_identifiers_are_ignored() -> None:
    claims = [
        Claim(email("gone@x.io"), ("old",), suppressed=True),
        Claim(phone("+34617345678"), saturated=True),
    ]
    decision = decide(situation(claims, group("old", email("gone@x.io"))), ES)
    assert decision.register and decision.links == ()
    assert {s.reason for s in decision.skipped} == {"erased", "shared by too many customers"}


def test_an_unlinked_identifier_is_never_relinked_to_the_same_customer() -> None:
    mobile = phone("+34617345678")
    ana = group("ana", email("ana@x.io"))
    claims = [Claim(email("ana@x.io"), ("ana",)), Claim(mobile, released=frozenset({"ana"}))]
    decision = decide(situation(claims, ana), ES)
    assert decision.links == ()
    assert decision.skipped[0].reason == "unlinked from this customer before"


def test_customers_kept_apart_are_not_merged_again() -> None:
    claims = [Claim(email("alba@x.io"), ("c1",)), Claim(email("bruno@x.io"), ("c2",))]
    c1, c2 = group("c1", email("alba@x.io")), group("c2", email("bruno@x.io"))
    decision = decide(situation(claims, c1, c2, apart=frozenset({frozenset({"c1", "c2"})})), ES)
    assert decision.merges == () and decision.proposals == ()
    assert "kept apart" in decision.skipped[0].reason


def test_without_automatic_merges_a_candidate_is_proposed_instead() -> None:
    rules = TenantRules(auto_merge=False)
    claims = [Claim(email("alba@x.io"), ("c1",)), Claim(email("bruno@x.io"), ("c2",))]
    decision = decide(
        situation(claims, group("c1", email("alba@x.io")), group("c2", email("bruno@x.io"))), rules
    )
    assert decision.merges == ()
    assert [(p.first_id, p.second_id) for p in decision.proposals] == [("c1", "c2")]


def test_holders_merged_before_are_reached_through_their_survivor() -> None:
    merged = group("s", email("sara@x.io"), email("alba@x.io"), members=("a",))
    decision = decide(
        situation([Claim(email("alba@x.io"), ("a",)), Claim(phone("+34617345678"))], merged), ES
    )
    assert decision.home_id == "a"  # filed with the holder; it redirects to "s"
    assert decision.merges == () and decision.links[0].identifier == phone("+34617345678")


KNOWN = [
    Claim(email("alba@x.io"), ("c1",)),
    Claim(Identifier("customer_id", "u1"), ("c2",)),
    Claim(phone("+34617345678"), ("c3",)),
    Claim(Identifier("anonymous_id", "d9")),
    Claim(Identifier("external:loyalty", "L1")),
]
GROUPS = [
    group("c1", email("alba@x.io")),
    group("c2", Identifier("customer_id", "u1")),
    group("c3", phone("+34617345678"), email("c3@x.io")),
]


@given(st.permutations(KNOWN))
def test_the_decision_does_not_depend_on_the_order_of_identifiers(claims: list[Claim]) -> None:
    assert decide(situation(claims, *GROUPS), ES) == decide(situation(KNOWN, *GROUPS), ES)

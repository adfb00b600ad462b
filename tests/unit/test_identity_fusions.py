"""Why the identity bench's several-people customers hold several people (bench/identity/fusions)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.identity.fusions import cause_of, fusion_causes, several_people_causes


@dataclass(frozen=True)
class T:
    person: int
    carried: frozenset[str]
    hazards: frozenset[str] = frozenset()


def t(person: int, *keys: str, hazards: tuple[str, ...] = ()) -> T:
    return T(person, frozenset(keys), frozenset(hazards))


def test_one_persons_customer_has_no_cause() -> None:
    assert fusion_causes([t(1, "email:a@x.es"), t(1, "tablet:t")]) == frozenset()


def test_a_tablets_visits_carrying_only_it_are_a_shared_tablet() -> None:
    touches = [t(1, "email:a@x.es", "tablet:t"), t(2, "tablet:t"), t(3, "tablet:t")]
    assert fusion_causes(touches) == {"shared_tablet"}


def test_a_number_typed_for_strangers_is_a_placeholder() -> None:
    touches = [
        t(1, "loyalty:L1", "placeholder:612345678"),
        t(2, "placeholder:612345678"),
        t(3, "placeholder:612345678"),
    ]
    assert fusion_causes(touches) == {"placeholder"}


def test_an_innocent_explanation_is_preferred_to_a_placeholder_both_share() -> None:
    # `ninguno@ninguno.net` typed at a kiosk both used: the resolver ignores the placeholder,
    # the kiosk joined them.
    touches = [
        t(1, "kiosk:k", "placeholder:ninguno@ninguno.net", hazards=("kiosk",)),
        t(2, "kiosk:k", "placeholder:ninguno@ninguno.net", hazards=("kiosk",)),
    ]
    assert fusion_causes(touches) == {"kiosk"}


def test_each_cause_needed_to_connect_the_people_is_named() -> None:
    touches = [
        t(1, "phone:+34911000000", hazards=("shared_landline",)),
        t(2, "phone:+34911000000", "email:b@x.es", hazards=("shared_landline",)),
        t(2, "placeholder:sin@email.com"),
        t(3, "placeholder:sin@email.com"),
        t(3, "tablet:t"),
        t(4, "tablet:t"),
    ]
    assert fusion_causes(touches) == {"shared_landline", "placeholder", "shared_tablet"}


def test_a_number_that_changed_hands_is_recycled_and_a_household_line_is_a_landline() -> None:
    recycled = [
        t(1, "phone:+34612000001", "email:a@x.es", hazards=("recycled_number",)),
        t(2, "phone:+34612000001", hazards=("recycled_number", "phone_country_digits")),
    ]
    assert fusion_causes(recycled) == {"recycled_number"}
    assert cause_of("phone:+34912000002", [t(1, hazards=("shared_landline",))]) == (
        "shared_landline"
    )


def test_one_persons_slip_that_is_anothers_address_is_a_mistyped_email() -> None:
    touches = [t(1, "typo:mario@x.es"), t(2, "email:mario@x.es", "phone:+34612000003")]
    assert fusion_causes(touches) == {"mistyped_email"}


def test_a_real_identifier_several_people_present_is_a_hub() -> None:
    touches = [t(1, "email:tienda@ferreteria.es"), t(2, "email:tienda@ferreteria.es")]
    assert fusion_causes(touches) == {"hub"}


def test_people_sharing_nothing_are_named_so() -> None:
    touches = [t(1, "email:ana@x.es"), t(2, "email:anna@x.es"), t(3, "tablet:t"), t(2, "tablet:t")]
    assert fusion_causes(touches) == {"nothing_shared", "shared_tablet"}


def test_the_breakdown_counts_customers_by_cause_and_through_placeholders_or_hubs() -> None:
    touches = [
        t(1, "tablet:t"),
        t(2, "tablet:t"),  # customer a: a tablet
        t(3, "placeholder:x@x.com"),
        t(4, "placeholder:x@x.com"),  # customer b: a placeholder
        t(5, "email:info@shop.es"),
        t(6, "email:info@shop.es"),
        t(6, "tablet:u"),
        t(7, "tablet:u"),  # customer c: a hub and a tablet
        t(8, "email:h@x.es"),  # customer d: one person
        t(9, "placeholder:x@x.com"),  # lost: no customer
    ]
    customers = ["a", "a", "b", "b", "c", "c", "c", "c", "d", None]
    found = several_people_causes(touches, customers)
    assert found == {
        "customers": 3,
        "needing": {"shared_tablet": 2, "hub": 1, "placeholder": 1},
        "alone": {"shared_tablet": 1, "placeholder": 1},
        "through_placeholder_or_hub": 2,
    }

"""What split off the linkable pairs the identity bench missed (bench/identity/misses)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.identity.misses import main_hazard, missed_linkable_pairs
from bench.identity.scoring import evidence_components, scores


@dataclass(frozen=True)
class T:
    person: int
    evidence: frozenset[str]
    hazards: frozenset[str] = frozenset()


def t(person: int, *keys: str, hazards: tuple[str, ...] = ()) -> T:
    return T(person, frozenset(keys), frozenset(hazards))


def missed(touches: list[T], customers: list[str | None]) -> dict:
    return missed_linkable_pairs(touches, customers, evidence_components(touches))


def test_nothing_is_missed_when_each_group_is_one_customer() -> None:
    touches = [t(1, "email:a@x.es"), t(1, "email:a@x.es", "cookie:c"), t(1, "cookie:c")]
    found = missed(touches, ["c1", "c1", "c1"])
    assert found["pairs"] == 0 and found["blocks"] == 0 and found["classes"] == []


def test_a_browsers_anonymous_visits_split_off_are_put_down_to_the_browser() -> None:
    touches = [
        t(1, "email:a@x.es"),
        t(1, "email:a@x.es", "cookie:c"),
        t(1, "cookie:c"),
        t(1, "cookie:c"),
    ]
    found = missed(touches, ["c1", "c1", "c2", "c2"])
    assert found["pairs"] == 4 and found["blocks"] == 1  # two visits × the two of c1
    assert found["classes"] == [
        {"hazard": "none", "carries": "cookie", "bridge": "cookie", "pairs": 4, "blocks": 1}
    ]
    assert found["device_bridged"] == {"named_by_one_customer": 4}


def test_a_browser_two_of_ones_customers_were_named_on_is_told_apart() -> None:
    # A second email on one's own browser, never joined to the main one: the browser looked
    # shared, and the visit after went apart.
    touches = [
        t(1, "email:a@x.es", "cookie:c"),
        t(1, "email:a@x.es"),
        t(1, "email:a@work.es", "cookie:c", hazards=("second_email",)),
        t(1, "cookie:c"),
    ]
    found = missed(touches, ["c1", "c1", "c2", "c3"])
    # c2 (one touchpoint) is bridged by the cookie to c1, c3 by the cookie too.
    assert found["device_bridged"] == {"named_by_several_customers": 5}
    assert found["pairs"] == 5


def test_the_smaller_block_is_the_one_split_off_and_carries_the_blame() -> None:
    touches = [
        t(1, "email:a@x.es", "phone:+34612000001"),
        t(1, "email:a@x.es"),
        t(1, "email:a@x.es"),
        t(1, "email:a@x.es", "phone:+34612000001", hazards=("email_typo", "email_typo_local")),
    ]
    found = missed(touches, ["c1", "c1", "c1", "c9"])
    assert found["pairs"] == 3
    assert found["by_hazard"] == {"email_typo_local": 3}
    assert found["by_carries"] == {"email+phone": 3}
    assert found["by_bridge"] == {"email+phone": 3}


def test_a_household_line_does_not_count_as_what_would_have_connected_a_person() -> None:
    # The landline is in both people's evidence, so it links nobody (scoring.py); the typo
    # touchpoint is connected to its person by the email alone.
    touches = [
        t(1, "email:a@x.es", "phone:+34911000000", hazards=("shared_landline",)),
        t(1, "email:a@x.es", "phone:+34911000000", hazards=("shared_landline", "email_typo")),
        t(2, "phone:+34911000000", "email:b@x.es", hazards=("shared_landline",)),
    ]
    found = missed(touches, ["c1", "c2", "c3"])
    assert found["pairs"] == 1
    assert found["by_bridge"] == {"email": 1}
    assert found["by_hazard"] == {"email_typo": 1}


def test_a_lost_touchpoint_is_a_block_of_its_own_and_lost() -> None:
    touches = [t(1, "email:a@x.es"), t(1, "email:a@x.es", hazards=("malformed_identifier",))]
    found = missed(touches, ["c1", None])
    assert found["by_hazard"] == {"lost": 1}


def test_pairs_between_two_split_off_blocks_count_once_and_add_up_to_the_missed() -> None:
    touches = [
        t(1, "email:a@x.es"),
        t(1, "email:a@x.es"),
        t(1, "email:a@x.es"),
        t(1, "email:a@x.es", "cookie:c", hazards=("second_email",)),
        t(1, "email:a@x.es", "cookie:c"),
        t(1, "cookie:c"),
        t(2, "email:b@x.es"),
        t(2, "email:b@x.es"),
    ]
    customers = ["c1", "c1", "c1", "c2", "c2", "c3", "d1", "d2"]
    found = missed(touches, customers)
    persons = [x.person for x in touches]
    whole = scores(persons, customers, evidence_components(touches), [True] * len(touches))
    # c1-c2 6, c1-c3 3, c2-c3 2 for person 1; d1-d2 1 for person 2.
    assert found["pairs"] == whole.linkable_pairs - whole.found_linkable_pairs == 12
    assert found["blocks"] == 3  # c2, c3 and d2
    # c2 shares the email with c1 and the cookie with c3; c3's visit only the cookie.
    assert found["by_bridge"] == {"cookie+email": 6, "cookie": 5, "email": 1}
    assert found["by_hazard"] == {"none": 6, "second_email": 6}


def test_the_most_telling_hazard_names_a_block() -> None:
    assert main_hazard({"phone_national", "foreign_number", "email_case"}) == "foreign_number"
    assert main_hazard({"email_typo", "email_typo_local", "shared_landline"}) == "email_typo_local"
    assert main_hazard({"phone_national"}) == "phone_national"
    assert main_hazard(set()) == "none"

"""Emails one slip apart: found by their slip keys, and linked only when a name corroborates.

Identity finds the known emails one keystroke from a new one through slip keys
(services/identity/slips.py) instead of reading every email of the tenant; what it does with
them is policy (`_slip_of_known`, `_merge_slips`): the same name links, a finger's slip with no
name is a candidate for review, and an initial (`cnavarro@`, `pnavarro@`) says nothing.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from rapidfuzz.distance import OSA

from schemas.envelope import CustomerRef
from services.identity import IdentityResolver
from services.identity.policy import one_slip_apart, typing_slip
from services.identity.rules import Identifier
from services.identity.slips import MIN_TYPO_LOCAL, slip_keys
from tests.identity_memory import memory_resolver

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
LETTERS = string.ascii_lowercase + "._-0123456789"


def _email(local: str, domain: str = "x.es") -> Identifier:
    return Identifier("email", f"{local}@{domain}")


def _one_edit(local: str, rng: random.Random) -> str:
    """`local` with one random edit: a letter changed, added, left out, or two swapped."""
    i = rng.randrange(len(local))
    match rng.choice(("change", "add", "drop", "swap")):
        case "change":
            return local[:i] + rng.choice(LETTERS) + local[i + 1 :]
        case "add":
            return local[:i] + rng.choice(LETTERS) + local[i:]
        case "drop":
            return local[:i] + local[i + 1 :]
        case _:
            i = min(i, len(local) - 2)
            return local[:i] + local[i + 1] + local[i] + local[i + 2 :]


def test_two_emails_one_edit_apart_always_share_a_slip_key() -> None:
    rng = random.Random(7)
    checked = 0
    for _ in range(5_000):
        local = "".join(rng.choice(LETTERS) for _ in range(rng.randint(MIN_TYPO_LOCAL, 24)))
        edited = _one_edit(local, rng)
        if len(edited) < MIN_TYPO_LOCAL or OSA.distance(local, edited) != 1:
            continue
        checked += 1
        assert set(slip_keys(_email(local))) & set(slip_keys(_email(edited))), (local, edited)
    assert checked > 4_000


def test_emails_further_apart_or_of_another_domain_share_no_key() -> None:
    assert not set(slip_keys(_email("ana.garcia"))) & set(slip_keys(_email("ana.gracia2")))
    ours, theirs = slip_keys(_email("ana.garcia")), slip_keys(_email("ana.garcia", "y.es"))
    assert not set(ours) & set(theirs)


def test_only_emails_with_a_local_part_long_enough_have_slip_keys() -> None:
    assert slip_keys(Identifier("phone", "+34617345678")) == []
    assert slip_keys(_email("ana")) == []
    keys = slip_keys(_email("aabbc"))
    assert len(keys) == len(set(keys)) == 4  # the whole, and each distinct letter left out


def test_a_finger_slip_is_inside_a_long_local_part_and_keeps_its_initial_and_its_end() -> None:
    assert typing_slip(_email("santiaagoperez"), _email("santiagoperez"))  # a letter doubled
    assert typing_slip(_email("josemaria.flores"), _email("josemaria.flotes"))  # r and t
    assert not typing_slip(_email("cnavarrop"), _email("pnavarrop"))  # an initial
    assert not typing_slip(_email("lauraiglesias"), _email("lauraiglesiasm"))  # a surname's initial
    assert not typing_slip(_email("aruiz"), _email("arduiz"))  # too short to tell
    assert not typing_slip(_email("maria.garcia"), _email("mario.garcia"))  # keys far apart
    assert one_slip_apart(_email("maria.garcia"), _email("mario.garcia"))


@pytest.fixture
def identity() -> Iterator[IdentityResolver]:
    resolver = memory_resolver()
    yield resolver
    resolver.close()


def resolving(identity: IdentityResolver, channel: str) -> Callable[..., str]:
    def resolve(name: str = "", **ref: str) -> str:
        event_id = str(uuid.uuid4())
        return identity.resolve(
            "acme", CustomerRef.model_validate(ref), event_id, channel, at=NOW, name=name
        ).home_id

    return resolve


def test_a_slip_carrying_the_name_its_customer_is_known_by_is_that_customer(
    identity: IdentityResolver,
) -> None:
    resolve = resolving(identity, "chat")
    ana = resolve(email="ana.garcia.lopez@x.es", name="Ana García López")
    assert resolve(email="ana.gracia.lopez@x.es", name="ANA GARCIA LOPEZ") == ana
    # The slip is Ana's from now on, with or without a name.
    assert resolve(email="ana.gracia.lopez@x.es") == ana
    linked = [e for e in identity.history("acme", ana) if e.action == "identifier_linked"]
    assert "typo_of:email with name" in {e.details.get("rule") for e in linked}


def test_a_slip_written_first_is_found_by_the_right_spelling_and_its_name(
    identity: IdentityResolver,
) -> None:
    resolve = resolving(identity, "store")
    slip = resolve(email="teresamrenog@x.es", name="Teresa Moreno Gil")
    assert resolve(email="teresamorenog@x.es", name="Teresa Moreno") == slip


def test_a_slip_under_another_name_or_with_none_is_somebody_else(
    identity: IdentityResolver,
) -> None:
    resolve = resolving(identity, "chat")
    maria = resolve(email="maria.garcia.lopez@x.es", name="María García López")
    assert resolve(email="mario.garcia.lopez@x.es", name="Mario García López") != maria
    assert resolve(email="maria.garcia.lopze@x.es") != maria
    # A name agreeing with hers, yet a given name alone: too little to say who.
    assert resolve(email="marai.garcia.lopez@x.es", name="María") != maria


def test_a_slip_beside_another_customers_mobile_joins_the_two_when_their_names_agree(
    identity: IdentityResolver,
) -> None:
    resolve = resolving(identity, "phone")
    chema = resolve(email="josemaria.flores.caballero@x.es", name="José María Flores")
    mobile = resolve(phone="+34 687 386 655", name="José María Flores Caballero")
    assert mobile != chema
    # A call from his mobile gives his email with a letter missed: his two customers are one.
    call = resolve(email="josemaria.flores.cabalero@x.es", phone="+34 687 386 655")
    assert identity.locate("acme", call).customer_id == identity.locate("acme", chema).customer_id
    merged = [e for e in identity.history("acme", mobile) if e.action == "customers_merged"]
    assert "the same name" in merged[0].details["reason"]


def test_a_finger_slip_with_no_name_is_a_candidate_for_review_and_an_initial_is_nothing(
    identity: IdentityResolver,
) -> None:
    resolve = resolving(identity, "phone")
    chema = resolve(email="josemaria.flores.caballero@x.es")
    mobile = resolve(phone="+34 687 386 655")
    call = resolve(email="josemaria.flores.cabalero@x.es", phone="+34 687 386 655")
    assert call == mobile
    assert identity.locate("acme", mobile).customer_id != identity.locate("acme", chema).customer_id
    [candidate] = identity.candidates("acme")
    assert {candidate.first_id, candidate.second_id} == {chema, mobile}
    assert candidate.reason == "an email one keystroke from email=josemaria.flores.caballero@x.es"
    # Carlos and Pablo Navarro of one family: one letter apart, the initial. Nothing to review.
    carlos = resolve(email="cnavarro.ruiz@x.es", phone="+34 611 111 111")
    pablo = resolve(email="pnavarro.ruiz@x.es", phone="+34 622 222 222")
    assert carlos != pablo
    assert len(identity.candidates("acme")) == 1


def test_a_mailbox_written_with_another_separator_is_not_a_slip_even_under_one_name(
    identity: IdentityResolver,
) -> None:
    resolve = resolving(identity, "chat")
    # Two women called María del Carmen Molina, each with her own mailbox at one provider.
    first = resolve(email="mariadelcarmenmolina@x.es", name="María del Carmen Molina Rodríguez")
    second = resolve(email="mariadelcarmen_molina@x.es", name="María del Carmen Molina")
    assert second != first
    assert identity.candidates("acme") == []

"""A browser judged shared is revisited when the customers who used it turn out to be one person.

A browser two established customers with different emails used is taken for a household's: it
stops linking anybody (saturated), and a visit carrying only it is nobody's. When those customers
are later found to be one person (a mobile both gave merges them), it is that person's browser
again; while anybody else used it, or if the merge is split, it stays shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from schemas.envelope import CustomerRef
from services.identity import IdentityResolver
from services.identity.policy import Claim, Group, Situation, decide
from services.identity.rules import Identifier, TenantRules
from tests.identity_memory import memory_resolver

NOW = datetime(2026, 3, 2, 18, tzinfo=UTC)
TENANT = "acme"
LAPTOP = "ck-laptop"


@pytest.fixture
def identity() -> Iterator[IdentityResolver]:
    """A resolver of its own (in-memory SQLite) with the product's default rules."""
    resolver = memory_resolver()
    yield resolver
    resolver.close()


@pytest.fixture
def visit(identity: IdentityResolver) -> Callable[..., str]:
    """Files a web touchpoint carrying the given identifiers; answers the customer it is now."""

    def resolve(**ref: str) -> str:
        event_id = str(uuid.uuid4())
        customer = CustomerRef.model_validate(ref)
        home = identity.resolve(TENANT, customer, event_id, "web", at=NOW).home_id
        return identity.canonical_id(TENANT, home)

    return resolve


def test_a_persons_laptop_taken_for_a_households_is_hers_again_once_her_accounts_merge(
    identity: IdentityResolver, visit: Callable[..., str]
) -> None:
    ana = visit(email="ana.garcia@gmail.com", anonymous_id=LAPTOP)
    work = visit(email="agarcia@consultora.es")  # her work address: a customer of its own
    # She signs in with it on her laptop: two people with different emails, it seems.
    assert visit(email="agarcia@consultora.es", anonymous_id=LAPTOP) == work != ana
    assert visit(anonymous_id=LAPTOP) not in {ana, work}  # whose visit: nobody can tell yet
    # Her mobile, given with each address, shows both are hers: one customer.
    visit(email="ana.garcia@gmail.com", phone="655 123 987")
    her = visit(email="agarcia@consultora.es", phone="655 123 987")
    assert identity.canonical_id(TENANT, ana) == identity.canonical_id(TENANT, work) == her
    # Her laptop is hers again: its anonymous visits and her sign-ins on it are filed with her.
    assert visit(anonymous_id=LAPTOP) == her
    assert visit(email="ana.garcia@gmail.com", anonymous_id=LAPTOP) == her


def test_a_laptop_her_partner_used_meanwhile_stays_shared_when_her_accounts_merge(
    identity: IdentityResolver, visit: Callable[..., str]
) -> None:
    ana = visit(email="ana.garcia@gmail.com", anonymous_id=LAPTOP)
    work = visit(email="agarcia@consultora.es")
    visit(email="agarcia@consultora.es", anonymous_id=LAPTOP)  # taken for a household's
    luis = visit(email="luis.martin@gmail.com")
    # Her partner uses it while it is held shared: nothing links, but his use is on record.
    assert visit(email="luis.martin@gmail.com", anonymous_id=LAPTOP) == luis
    visit(email="ana.garcia@gmail.com", phone="655 123 987")
    her = visit(email="agarcia@consultora.es", phone="655 123 987")
    assert identity.canonical_id(TENANT, ana) == identity.canonical_id(TENANT, work) == her
    # Two people used it: a visit carrying only the laptop is still nobody's in particular.
    assert visit(anonymous_id=LAPTOP) not in {her, luis}
    assert visit(email="luis.martin@gmail.com", anonymous_id=LAPTOP) == luis
    assert set(identity.locate(TENANT, her).members) == {ana, work}


def test_a_mother_and_daughters_tablet_stays_shared_when_the_mothers_accounts_merge(
    identity: IdentityResolver, visit: Callable[..., str]
) -> None:
    tablet = "ck-family-ipad"
    carmen = visit(email="carmen.ruiz.soto@gmail.com", anonymous_id=tablet)
    lucia = visit(email="lucia.lopez.ruiz@gmail.com")
    visit(email="lucia.lopez.ruiz@gmail.com", anonymous_id=tablet)  # the daughter: shared
    old = visit(email="carmen.ruiz@telefonica.net")
    visit(email="carmen.ruiz@telefonica.net", anonymous_id=tablet)  # the mother's old address
    visit(email="carmen.ruiz.soto@gmail.com", phone="611 222 333")
    mother = visit(email="carmen.ruiz@telefonica.net", phone="611 222 333")
    assert identity.canonical_id(TENANT, carmen) == identity.canonical_id(TENANT, old) == mother
    # The mother's two customers are one, but the daughter used it too.
    assert visit(anonymous_id=tablet) not in {mother, lucia}
    assert visit(email="lucia.lopez.ruiz@gmail.com", anonymous_id=tablet) == lucia
    assert identity.locate(TENANT, lucia).members == (lucia,)


def test_splitting_the_merge_makes_the_laptop_shared_again(
    identity: IdentityResolver, visit: Callable[..., str]
) -> None:
    ana = visit(email="ana.garcia@gmail.com", anonymous_id=LAPTOP)
    work = visit(email="agarcia@consultora.es")
    visit(email="agarcia@consultora.es", anonymous_id=LAPTOP)
    visit(email="ana.garcia@gmail.com", phone="655 123 987")
    her = visit(email="agarcia@consultora.es", phone="655 123 987")
    assert visit(anonymous_id=LAPTOP) == her
    # A manager finds the two addresses are two people after all, and splits them.
    absorbed = ana if her == work else work
    identity.split(TENANT, her, absorbed, "two colleagues sharing a mobile", "manager@acme")
    assert identity.canonical_id(TENANT, absorbed) == absorbed
    assert visit(anonymous_id=LAPTOP) not in {ana, work}


# --- the rule itself, on the policy's inputs --------------------------------------------------

RULES = TenantRules(phone_region="ES")
DEVICE = Identifier("anonymous_id", "ck-1")


def by_member(*groups: Group) -> dict[str, Group]:
    return {m: g for g in groups for m in g.members}


def test_a_device_saturated_before_its_users_were_recorded_stays_shared() -> None:
    ana = Group("ana", frozenset({"ana", "work"}), frozenset({DEVICE}))
    # One user on record (an earlier release did not record the one that made it look shared).
    claim = Claim(DEVICE, holders=("ana",), saturated=True)
    decision = decide(Situation((claim,), by_member(ana), "new"), RULES)
    assert decision.register and decision.home_id == "new"
    assert [s.reason for s in decision.skipped] == ["shared by too many customers"]


def test_a_device_more_customers_used_than_its_rule_allows_stays_shared() -> None:
    people = ("a1", "a2", "a3", "a4")
    one = Group("a1", frozenset(people), frozenset({DEVICE}))
    claim = Claim(DEVICE, holders=("a1", "a2"), presented_by=("a3", "a4"), saturated=True)
    decision = decide(Situation((claim,), by_member(one), "new"), RULES)
    assert decision.register and decision.home_id == "new"


def test_a_device_whose_two_users_are_one_customer_files_visits_with_it() -> None:
    email = Identifier("email", "ana@x.es")
    ana = Group("ana", frozenset({"ana", "work"}), frozenset({DEVICE, email}))
    claim = Claim(DEVICE, holders=("ana",), presented_by=("work",), saturated=True)
    decision = decide(Situation((claim,), by_member(ana), "new"), RULES)
    # Only the device: a profile of it, merged into the person using it.
    assert decision.register and [m.survivor_id for m in decision.merges] == ["ana"]
    assert decision.skipped == ()


def test_who_used_a_shared_device_is_recorded_once_as_presenting_it() -> None:
    email = Identifier("email", "luis@x.es")
    luis = Group("luis", frozenset({"luis"}), frozenset({email}))
    ana = Group("ana", frozenset({"ana"}), frozenset({DEVICE}))
    claims = (
        Claim(email, holders=("luis",)),
        Claim(DEVICE, holders=("ana",), presented_by=("work",), saturated=True),
    )
    groups = by_member(luis, ana) | {"work": Group("work", frozenset({"work"}), frozenset())}
    decision = decide(Situation(claims, groups, "new"), RULES)
    assert decision.home_id == "luis" and decision.present == ((DEVICE, "luis"),)
    # Luis used it already: not recorded again.
    again = (claims[0], Claim(DEVICE, ("ana",), presented_by=("work", "luis"), saturated=True))
    groups |= {"luis": luis}
    assert decide(Situation(again, groups, "new"), RULES).present == ()

"""Two mailboxes named after one person, and one person's two mailboxes on one browser (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from schemas.envelope import CustomerRef
from services.identity import IdentityResolver, IdentityRules
from services.identity.mailbox_names import one_persons_mailboxes
from services.identity.policy import Claim, Group, Situation, decide
from services.identity.rules import Identifier, TenantRules
from tests.identity_memory import memory_resolver

ES = TenantRules(phone_region="ES")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("luismiguel.cruz.ferrer@live.com", "cruz.luismiguel.ferrer@hotmail.com"),  # other order
        ("dolores.rojas@gmail.com", "rojas_dolores@bbva.com"),  # other separators, other domain
        ("ana.garcia.lopez85@gmail.com", "garcia.lopez.ana85@empresa.es"),  # same numbers
    ],
)
def test_a_persons_work_or_new_mailbox_is_named_after_them(first: str, second: str) -> None:
    assert one_persons_mailboxes(first, second)
    assert one_persons_mailboxes(second, first)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("juan.perez@gmail.com", "maria.perez@gmail.com"),  # a household: one surname
        ("ana.garcia1@gmail.com", "ana.garcia2@gmail.com"),  # numbered accounts
        ("ana.garcia1@gmail.com", "ana.garcia@empresa.es"),
        ("carmen.ruiz@gmail.com", "lruiz@empresa.es"),  # another initial
        ("ignaciogil@gmail.com", "igil@empresa.es"),  # where a short surname starts is a guess
        ("ana@gmail.com", "ana@empresa.es"),  # too short to name anybody
        # A child carries a parent's given name and first surname, and the other parent's.
        ("jose.lopez@hotmail.com", "jose.lopez.garcia@yahoo.es"),  # father and son
        ("carmen.garcia.ruiz@hotmail.com", "carmen.lopez.garcia@yahoo.es"),  # mother, daughter
        ("j.lopez.garcia@gmail.com", "m.lopez.garcia@gmail.com"),  # siblings
        ("facturacion@clientea.es", "facturacion@clienteb.es"),  # a role: two companies
        ("ventas.madrid@clientea.es", "madrid.ventas@clienteb.es"),
        ("info.perez.garcia@a.es", "perez.garcia.info@b.es"),
        # One word: an initial and a surname fit a parent and a child alike.
        ("dolores.rojas.nunez@hotmail.com", "drojas@bbva.com"),
        ("jlopez@gmail.com", "jlopez@empresa.es"),
        ("dduran@gmail.com", "dduran@bbva.com"),
        ("fernandobenitez85@gmail.com", "fbenitez@inditex.com"),
        ("jo.lo@gmail.com", "lo.jo@empresa.es"),  # initials and fillers only
    ],
)
def test_a_households_mailboxes_are_not_one_persons(first: str, second: str) -> None:
    assert not one_persons_mailboxes(first, second)
    assert not one_persons_mailboxes(second, first)


def email(value: str) -> Identifier:
    return Identifier("email", value)


BROWSER = Identifier("anonymous_id", "ck-1")


def meet_on_browser(ours: Group, theirs: Group, *carried: Identifier) -> tuple[str, ...]:
    """The customers `ours`'s touchpoint (its email and the browser `theirs` used) merges."""
    claims = [Claim(i, (ours.canonical_id,)) for i in carried]
    claims.append(Claim(BROWSER, (theirs.canonical_id,)))
    groups = {ours.canonical_id: ours, theirs.canonical_id: theirs}
    decision = decide(Situation(tuple(claims), groups, "new"), ES)
    return tuple(m.absorbed_id for m in decision.merges)


def test_one_persons_work_mailbox_on_their_own_browser_joins_them() -> None:
    # Dolores checked out as a guest with her work address on her laptop, then wrote from her
    # personal one on it: one person, one customer (before, her later anonymous visits on the
    # laptop, held by two customers, were nobody's).
    home = Group("dolores", frozenset({"dolores"}), frozenset({email("dolores.rojas@gmail.com")}))
    work = Group("work", frozenset({"work"}), frozenset({email("rojas.dolores@bbva.com"), BROWSER}))
    assert meet_on_browser(home, work, email("dolores.rojas@gmail.com")) == ("work",)


def test_a_family_computer_never_joins_two_people_of_the_household() -> None:
    dad = Group("dad", frozenset({"dad"}), frozenset({email("juan.perez@gmail.com")}))
    kid = Group("kid", frozenset({"kid"}), frozenset({email("lucia.perez@gmail.com"), BROWSER}))
    assert meet_on_browser(dad, kid, email("juan.perez@gmail.com")) == ()
    # Nor two people whose addresses look alike but who each have a mobile of their own.
    mobile, other = Identifier("phone", "+34617345678"), Identifier("phone", "+34699111222")
    jr = Group("jr", frozenset({"jr"}), frozenset({email("jperez@empresa.es"), BROWSER, other}))
    father = Group(
        "father", frozenset({"father"}), frozenset({email("juan.perez@gmail.com"), mobile})
    )
    assert meet_on_browser(father, jr, email("juan.perez@gmail.com")) == ()


def test_a_new_work_mailbox_typed_on_ones_own_browser_is_ones_own() -> None:
    # Enrique wrote from his personal address on his laptop; weeks later he types his work address
    # in the chat there: filed under him, who now holds both (before, a customer apart).
    enrique = Group(
        "enrique",
        frozenset({"enrique"}),
        frozenset({email("enrique.molina@icloud.com"), BROWSER}),
    )
    work = email("molina.enrique@iberdrola.es")
    claims = (Claim(work), Claim(BROWSER, ("enrique",)))
    decision = decide(Situation(claims, {"enrique": enrique}, "new"), ES)
    assert (decision.home_id, decision.register) == ("enrique", False)
    assert work in {link.identifier for link in decision.links}
    assert not any("ck-1" in link.rule for link in decision.links)  # kinds only, never values
    # His daughter's address on the same laptop is hers: a customer of her own, for review.
    lucia = (Claim(email("lucia.garcia@gmail.com")), Claim(BROWSER, ("enrique",)))
    hers = decide(Situation(lucia, {"enrique": enrique}, "new"), ES)
    assert hers.register and hers.merges == ()


def second_mailbox_on_browser(held: str, typed: str) -> tuple[str, bool]:
    """Where a touchpoint carrying `typed` on the browser only `held`'s customer used is filed."""
    person = Group("held", frozenset({"held"}), frozenset({email(held), BROWSER}))
    claims = (Claim(email(typed)), Claim(BROWSER, ("held",)))
    decision = decide(Situation(claims, {"held": person}, "new"), ES)
    return decision.home_id, decision.register


@pytest.mark.parametrize(
    ("held", "typed"),
    [
        ("jose.lopez@hotmail.com", "jose.lopez.garcia@yahoo.es"),  # father, then his son
        ("carmen.garcia.ruiz@hotmail.com", "carmen.lopez.garcia@yahoo.es"),  # mother, daughter
        ("facturacion@clientea.es", "facturacion@clienteb.es"),  # two companies
    ],
)
def test_a_childs_or_another_companys_mailbox_on_a_shared_browser_is_not_filed_under_them(
    held: str, typed: str
) -> None:
    assert second_mailbox_on_browser(held, typed) == ("new", True)


def test_the_reason_two_mailboxes_merged_names_no_address() -> None:
    # Merge reasons are kept in identity history, where erasing an email does not reach.
    ours = Group("ours", frozenset({"ours"}), frozenset({email("dolores.rojas@gmail.com")}))
    theirs = Group(
        "theirs", frozenset({"theirs"}), frozenset({email("rojas.dolores@bbva.com"), BROWSER})
    )
    claims = [Claim(email("dolores.rojas@gmail.com"), ("ours",)), Claim(BROWSER, ("theirs",))]
    decision = decide(Situation(tuple(claims), {"ours": ours, "theirs": theirs}, "new"), ES)
    [merge] = decision.merges
    assert "@" not in merge.reason and "ck-1" not in merge.reason
    assert "rojas" not in merge.reason


GMAIL = ("gmail.com",)  # the domains identity keeps without dots (`email_dotless_domains`)


@pytest.mark.parametrize(
    ("kept", "other"),
    [
        # As identity keeps them: `Dolores.Rojas@gmail.com` is `doloresrojas@gmail.com`.
        ("doloresrojas@gmail.com", "rojas_dolores@bbva.com"),
        ("josemariadominguez@gmail.com", "josemaria.dominguez@outlook.com"),
        ("silviamarin2004@gmail.com", "silvia.marin2004@telefonica.net"),
    ],
)
def test_a_gmail_address_kept_without_its_dots_still_names_its_person(
    kept: str, other: str
) -> None:
    assert one_persons_mailboxes(kept, other, GMAIL)
    assert one_persons_mailboxes(other, kept, GMAIL)
    assert not one_persons_mailboxes(kept, other)  # read as one word, it names nobody


@pytest.mark.parametrize(
    ("kept", "other"),
    [
        ("joselopez@gmail.com", "jose.lopez.garcia@yahoo.es"),  # father and son
        ("carmengarciaruiz@gmail.com", "carmen.lopez.garcia@yahoo.es"),  # mother and daughter
        ("jlopezgarcia@gmail.com", "m.lopez.garcia@hotmail.com"),  # siblings
        ("pablogarciaruiz@gmail.com", "paula.garcia.ruiz@hotmail.com"),  # siblings
        ("anagarcia1@gmail.com", "ana.garcia2@hotmail.com"),  # numbered accounts
        ("doloresrojas@gmail.com", "rojasdolores@gmail.com"),  # two run-together: no names
        ("facturacionperez@gmail.com", "facturacion.perez@empresa.es"),  # a role
    ],
)
def test_a_run_together_gmail_address_joins_no_household(kept: str, other: str) -> None:
    assert not one_persons_mailboxes(kept, other, GMAIL)
    assert not one_persons_mailboxes(other, kept, GMAIL)


def test_run_together_names_are_read_only_where_the_provider_drops_dots() -> None:
    # At Hotmail the dots are kept: `doloresrojas@hotmail.com` was typed as one word.
    assert not one_persons_mailboxes("doloresrojas@hotmail.com", "rojas.dolores@bbva.com", GMAIL)


def test_one_persons_gmail_and_work_addresses_on_her_laptop_are_one_customer() -> None:
    # Through the resolver, as producers send them: the Gmail address is kept as
    # `doloresrojas@gmail.com`, and before, the two addresses named nobody alike, so the laptop
    # looked like a household's and her later anonymous visits on it were nobody's.
    identity, touch = _resolver()
    dolores = touch(email="Dolores.Rojas@gmail.com", anonymous_id="ck-7")
    work = touch(email="rojas_dolores@bbva.com")  # a newsletter to her work address
    assert work != dolores
    one = touch(email="rojas_dolores@bbva.com", anonymous_id="ck-7")
    assert (
        identity.locate("t", work).customer_id == identity.locate("t", dolores).customer_id == one
    )
    assert touch(anonymous_id="ck-7") == one  # the laptop is still hers


def test_a_father_and_son_on_the_family_tablet_stay_two_customers() -> None:
    identity, touch = _resolver()
    father = touch(email="Jose.Lopez@gmail.com", anonymous_id="tablet-1")
    son = touch(email="jose.lopez.garcia@yahoo.es")
    assert touch(email="jose.lopez.garcia@yahoo.es", anonymous_id="tablet-1") == son
    assert identity.locate("t", son).customer_id != identity.locate("t", father).customer_id


FATHER, SON = "José López García", "José López Martín"


def test_a_son_typing_his_mailbox_named_like_his_fathers_on_the_fathers_laptop_keeps_his_name() -> (
    None
):
    # `jose.lopez@` and `lopez.jose@` name one person by their mailboxes alone (the same names);
    # the names the touchpoints carry say two.
    identity, touch = _resolver()
    father = touch(email="Jose.Lopez@gmail.com", anonymous_id="laptop-1", name=FATHER)
    son = touch(email="lopez.jose@yahoo.es", anonymous_id="laptop-1", name=SON)
    assert identity.locate("t", son).customer_id != identity.locate("t", father).customer_id
    # without a name that differs, the same mailboxes on her laptop are one person's
    identity, touch = _resolver()
    her = touch(email="Dolores.Rojas@gmail.com", anonymous_id="laptop-1", name="Dolores Rojas")
    assert touch(email="rojas.dolores@bbva.com", anonymous_id="laptop-1") == her


def test_a_son_already_known_is_not_merged_with_his_father_by_mailboxes_named_alike() -> None:
    identity, touch = _resolver()
    son = touch(email="lopez.jose@yahoo.es", name=SON)  # a newsletter sign-up
    father = touch(email="Jose.Lopez@gmail.com", anonymous_id="laptop-1", name=FATHER)
    touch(email="lopez.jose@yahoo.es", anonymous_id="laptop-1", name=SON)
    assert identity.locate("t", son).customer_id != identity.locate("t", father).customer_id
    # the same two customers with names that agree merge on her laptop, as before
    identity, touch = _resolver()
    work = touch(email="rojas.dolores@bbva.com", name="Dolores Rojas Pérez")
    her = touch(email="Dolores.Rojas@gmail.com", anonymous_id="laptop-1", name="Dolores Rojas")
    touch(email="rojas.dolores@bbva.com", anonymous_id="laptop-1")
    assert identity.locate("t", work).customer_id == identity.locate("t", her).customer_id
    # and a name only the touchpoint carries (her daughter's gift order, sent to her work
    # address from her laptop) is not one either customer is known by: it stops nothing
    identity, touch = _resolver()
    work = touch(email="rojas.dolores@bbva.com")
    her = touch(
        email="Dolores.Rojas@gmail.com", anonymous_id="laptop-1", name="Dolores Rojas Pérez"
    )
    touch(email="rojas.dolores@bbva.com", anonymous_id="laptop-1", name="Lucía Gómez Rojas")
    assert identity.locate("t", work).customer_id == identity.locate("t", her).customer_id


def _resolver() -> tuple[IdentityResolver, Callable[..., str]]:
    identity = memory_resolver(IdentityRules(default=ES))
    at = datetime(2026, 6, 1, tzinfo=UTC)

    def touch(name: str = "", **ids: str) -> str:
        nonlocal at
        at += timedelta(days=1)
        ref = CustomerRef(**ids)
        return identity.resolve("t", ref, uuid.uuid4().hex, "web", at=at, name=name).customer_id

    return identity, touch


@pytest.mark.parametrize("written", ["Ma. Dolores Rojas", "MA DOLORES ROJAS PÉREZ", "Mª Dolores"])
def test_her_second_mailbox_typed_with_ma_for_maria_is_hers(written: str) -> None:
    # `Ma.` is how forms abbreviate María, as `Mª`: her own name, not another person's.
    identity, touch = _resolver()
    her = touch(
        email="Dolores.Rojas@gmail.com", anonymous_id="laptop-1", name="María Dolores Rojas Pérez"
    )
    assert touch(email="rojas.dolores@bbva.com", anonymous_id="laptop-1", name=written) == her


@pytest.mark.parametrize(
    ("known", "written"),
    [
        # Siblings share both surnames: a given name left out or an initial fits either.
        ("María Carmen López García", "María López García"),
        ("María Carmen López García", "M. López García"),
        ("José Luis López García", "José López García"),
    ],
)
def test_a_siblings_mailbox_named_alike_on_the_family_laptop_is_not_filed_under_them(
    known: str, written: str
) -> None:
    identity, touch = _resolver()
    sibling = touch(email="Maria.Lopez@gmail.com", anonymous_id="laptop-1", name=known)
    other = touch(email="lopez.maria@hotmail.com", anonymous_id="laptop-1", name=written)
    assert identity.locate("t", other).customer_id != identity.locate("t", sibling).customer_id


def test_two_sisters_known_by_their_surname_mailboxes_are_not_merged_on_the_family_laptop() -> None:
    identity, touch = _resolver()
    younger = touch(email="garcia.lopez@hotmail.com", name="María José López García")
    elder = touch(
        email="lopez.garcia@gmail.com", anonymous_id="laptop-1", name="María López García"
    )
    touch(email="garcia.lopez@hotmail.com", anonymous_id="laptop-1", name="María José López García")
    assert identity.locate("t", younger).customer_id != identity.locate("t", elder).customer_id


def test_a_sisters_address_one_letter_from_hers_typed_with_an_initial_is_not_her_slip() -> None:
    # `mclopezgarcia@` is one keystroke from `mjlopezgarcia@`, on the family laptop: María
    # Carmen's own address, or María José's slip. `M. López García` fits either sister.
    identity, touch = _resolver()
    her = touch(
        email="mjlopezgarcia@gmail.com", anonymous_id="laptop-1", name="María José López García"
    )
    other = touch(email="mclopezgarcia@gmail.com", anonymous_id="laptop-1", name="M. López García")
    assert identity.locate("t", other).customer_id != identity.locate("t", her).customer_id

"""The identity benchmark's population: independent of the rules, seeded, and carrying each hazard
the way real data has it."""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import phonenumbers
import pytest

from bench.identity import keyboard, phones
from bench.identity.placeholders import make_habits
from bench.identity.population import generate
from services.ingest.batch import prepare
from tests.events import BUCKET_KEY

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "bench.identity.population"


def _module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def _imports(module: str) -> set[str]:
    tree = ast.parse(_module_file(module).read_text(), filename=module)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def generator_imports() -> dict[str, set[str]]:
    """Every module the generator imports, transitively through the bench/identity modules."""
    seen: dict[str, set[str]] = {}
    pending = [GENERATOR]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen[module] = _imports(module)
        pending += [
            m for m in seen[module] if m.startswith("bench.identity.") and _module_file(m).is_file()
        ]
    return seen


def test_the_generator_imports_nothing_of_the_identity_service() -> None:
    imports = generator_imports()
    assert {"bench.identity.people", "bench.identity.phones", "bench.identity.keyboard"} <= set(
        imports
    )
    forbidden = {
        module: sorted(
            i for i in found if i == "services.identity" or i.startswith("services.identity.")
        )
        for module, found in imports.items()
    }
    assert {m: f for m, f in forbidden.items() if f} == {}
    # `from services import identity` would hide it from the check above.
    assert not any(
        "services.identity" in found or "services" in found for found in imports.values()
    )


def test_the_import_check_sees_the_evaluation_import_the_service() -> None:
    # The evaluation (not the generator) runs the resolver: the check must see that it does.
    assert "services.identity.filing" in _imports("bench.identity.accuracy")


def test_the_population_is_the_same_for_a_seed() -> None:
    first, again, other = generate(200, 5), generate(200, 5), generate(200, 6)
    assert [t.event for t in first] == [t.event for t in again]
    assert [t.event_id for t in first] != [t.event_id for t in other]
    assert [t.day for t in first] == sorted(t.day for t in first)


@pytest.fixture(scope="module")
def touches() -> list:
    return generate(1500, 7)


def test_it_carries_every_hazard(touches: list) -> None:
    hazards = Counter(h for t in touches for h in t.hazards)
    expected = {
        "shared_landline", "shared_tablet", "kiosk", "recycled_number", "second_email",
        "changed_email", "cleared_cookie", "email_typo", "email_case", "email_spaces",
        "placeholder_email", "placeholder_phone", "malformed_identifier", "foreign_number",
        "phone_national", "phone_00_prefix", "phone_country_digits", "phone_punctuated",
    }  # fmt: skip
    assert expected <= set(hazards)


def test_most_events_pass_validation_and_the_rejected_ones_carry_a_malformed_value(
    touches: list,
) -> None:
    received = touches[-1].at + timedelta(hours=1)
    prepared = prepare(
        [t.event for t in touches], "bench", received, 64 * 1024, bucket_key=BUCKET_KEY
    )
    # Since issue 12 part 2 none is rejected whole: the malformed identifier is noted and ignored.
    assert not prepared.rejected
    noted = [n for notes in prepared.notes for n in notes]
    assert noted and {n.path for n in noted} <= {"customer.email", "customer.phone"}


def test_events_name_the_channels_of_the_envelope_and_carry_names(touches: list) -> None:
    channels = Counter(t.event["channel"] for t in touches)
    assert {"phone", "chat", "email", "web", "mobile_app", "store", "survey", "sms"} <= set(
        channels
    )
    named = [t.event["payload"].get("attributes", {}) for t in touches]
    written = " ".join(a.get("name", "") + a.get("last_name", "") for a in named)
    assert re.search(r"[áéíóúñÁÉÍÓÚÑ]", written)


def test_placeholders_join_different_people_and_are_never_evidence(touches: list) -> None:
    holders: dict[str, set[int]] = {}
    for t in touches:
        for key in t.carried - t.evidence:
            holders.setdefault(key, set()).add(t.person)
        assert not any(k.startswith("placeholder:") for k in t.evidence)
    assert max(len(p) for p in holders.values()) >= 5


def test_a_recycled_number_belongs_to_two_people_at_different_times(touches: list) -> None:
    recycled = [t for t in touches if "recycled_number" in t.hazards]
    users: dict[str, set[int]] = {}
    for t in recycled:
        for key in t.evidence:
            if key.startswith("phone:"):
                users.setdefault(key, set()).add(t.person)
    assert any(len(people) == 2 for people in users.values())


def test_phones_are_valid_numbers_written_in_their_countries_habits() -> None:
    rng = random.Random(1)
    for country in ("ES", "MX", "AR", "CO"):
        number = phones.draw(country, True, rng)
        assert phonenumbers.is_valid_number(phonenumbers.parse(number.e164))
        written = {phones.write(number, rng) for _ in range(200)}
        assert any(not w.startswith(("+", "00")) for w in written)  # national habits
        assert any(w.startswith("+") for w in written)
    spanish = phones.draw("ES", True, rng)
    n = spanish.national
    assert {f"{n[:3]} {n[3:6]} {n[6:]}", n, f"0034{n}", f"34{n}"} <= {
        phones.write(spanish, rng) for _ in range(500)
    }


def test_typos_come_from_the_keyboard_layout() -> None:
    assert set(keyboard.neighbours("a")) >= {"q", "s", "z"}
    assert "p" not in keyboard.neighbours("a")
    rng = random.Random(4)
    typed = {keyboard.mistype_email("lucia.perez@gmail.com", rng)[0] for _ in range(300)}
    assert len(typed) > 50
    for address in typed:
        assert address != "lucia.perez@gmail.com" and address.count("@") == 1
        assert abs(len(address) - len("lucia.perez@gmail.com")) <= 1


def test_agents_habits_repeat_a_few_placeholders() -> None:
    habits = make_habits(40, random.Random(2))
    emails = Counter(h.email for h in habits)
    assert emails.most_common(1)[0][1] >= 3
    assert len(emails) > 5


def test_no_two_people_hold_one_gmail_mailbox_written_with_other_dots() -> None:
    # Gmail delivers `ana.ruiz@` and `anaruiz@` to one mailbox, so it never hands them to two
    # people; a population that did would count the right merge of one mailbox as a stranger's.
    from bench.identity.people import make_people

    people = make_people(3000, random.Random(7))
    owners: dict[str, set[int]] = {}
    for person in people:
        addresses = [*person.mailboxes, person.work_mailbox]
        if person.changed_mailbox:
            addresses.append(person.changed_mailbox[1])
        for address in filter(None, addresses):
            local, _, domain = address.partition("@")
            if domain in ("gmail.com", "googlemail.com"):
                owners.setdefault(local.replace(".", "") + "@" + domain, set()).add(person.index)
    assert owners  # the population does give people Gmail addresses
    assert [m for m, who in owners.items() if len(who) > 1] == []

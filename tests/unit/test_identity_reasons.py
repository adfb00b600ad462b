"""The reasons identity writes itself (services/identity/reasons.py): a history entry keeps its
English `reason` and gives its code and parameters beside it, which the console names in the
reader's language; a manager's typed reason has no code."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from schemas.envelope import CustomerRef
from services.identity import IdentityResolver, IdentityRules, TenantRules
from services.identity.reasons import REASONS, REFUSALS, reason_code, reason_text
from services.query_api.web import HERE
from services.query_api.web.i18n import MESSAGES
from tests.identity_memory import memory_resolver

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@pytest.fixture
def identity() -> IdentityResolver:
    return memory_resolver(IdentityRules(default=TenantRules(phone_region="ES")))


# What each parameter is filled with: an identifier as `kind=value` (a value may hold spaces and
# commas), a kind (an external one with its namespace), a list of kinds.
SAMPLES: dict[str, list[str]] = {
    "identifier": ["email=ana@shop.es", "external:crm=C 7, Madrid", "phone=+34612"],
    "hub": ["email=tienda@shop.es", "anonymous_id=kiosk 1"],
    "kind": ["email", "anonymous_id", "external:loyalty"],
    "kinds": ["email", "email, phone", "external:crm, customer_id"],
}


def filled(code: str) -> list[dict[str, str]]:
    names = PLACEHOLDER.findall(REASONS[code])
    return [{name: SAMPLES[name][i % len(SAMPLES[name])] for name in names} for i in range(3)]


@pytest.mark.parametrize("code", sorted(REASONS))
def test_every_reason_is_read_back_as_its_code_and_said_in_both_languages(code: str) -> None:
    for params in filled(code):
        assert reason_code(reason_text(code, **params)) == (code, params)
    key = f"identity_reason_{code}"
    assert MESSAGES["en"][key] == REASONS[code]
    assert MESSAGES["es"][key] != REASONS[code]
    assert set(PLACEHOLDER.findall(MESSAGES["es"][key])) == set(PLACEHOLDER.findall(REASONS[code]))


@pytest.mark.parametrize(
    "reason",
    [
        "both hold the same phone",
        "used the shop's tablet before",
        "share a flat; hold different surnames",
        "split: two people after all",
        "the kiosk is used by several customers",
        "first seen with a typo",
    ],
)
def test_a_typed_reason_worded_like_a_rule_is_not_read_as_its_code(reason: str) -> None:
    # A parameter is an identifier or a kind by its shape, so a manager's words stay theirs.
    assert reason_code(reason) is None


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_every_merge_refusal_is_said_in_both_languages(code: str) -> None:
    key = f"merge_refusal_{code}"
    assert MESSAGES["en"][key] == REFUSALS[code]
    assert MESSAGES["es"][key] != REFUSALS[code]
    assert set(PLACEHOLDER.findall(MESSAGES["es"][key])) == set(PLACEHOLDER.findall(REFUSALS[code]))
    assert 'coded("merge_refusal"' in (HERE / "static" / "console.js").read_text()


def test_a_typed_reason_or_one_worded_otherwise_has_no_code() -> None:
    assert reason_code("same person, confirmed by phone") is None
    assert reason_code("no usable identifier at all") is None
    assert "reasonText(e.details)" in (HERE / "static" / "console.js").read_text()


def test_a_new_customers_history_gives_its_registration_reason_by_code(
    identity: IdentityResolver,
) -> None:
    ana = identity.resolve("acme", CustomerRef(email="ana@shop.es"), uuid.uuid4(), "web")
    # A placeholder address links nobody: the customer is registered without an identifier.
    nobody = identity.resolve("acme", CustomerRef(email="test@example.com"), uuid.uuid4(), "web")
    [registered] = [
        e for e in identity.history("acme", ana.customer_id) if e.action == "registered"
    ]
    assert registered.details["reason"] == "first seen with email"
    assert (registered.details["reason_code"], registered.details["reason_params"]) == (
        "first_seen_with",
        {"kind": "email"},
    )
    [alone] = identity.history("acme", nobody.customer_id)
    assert (alone.details["reason"], alone.details["reason_code"]) == (
        "no usable identifier",
        "no_usable_identifier",
    )


def test_the_linking_rules_merge_and_split_reasons_come_with_their_codes(
    identity: IdentityResolver,
) -> None:
    # A tablet's visit joins the one customer who used it (a profile merged into them); when a
    # second person uses it, the profile leaves. Both reasons are the rules' own.
    def at(**ref: Any) -> str:
        return identity.resolve("acme", CustomerRef(**ref), uuid.uuid4(), "web").home_id

    at(email="ana@shop.es", anonymous_id="tablet-1")
    profile = at(anonymous_id="tablet-1")
    at(email="bob@shop.es")
    at(email="bob@shop.es", anonymous_id="tablet-1")
    coded = {
        e.action: (
            e.details["reason"],
            e.details.get("reason_code"),
            e.details.get("reason_params"),
        )
        for e in identity.history("acme", profile)
        if e.action in {"merged_into_survivor", "restored_by_split"}
    }
    assert coded == {
        "merged_into_survivor": (
            "profile of anonymous_id=tablet-1, its user",
            "profile_of_user",
            {"identifier": "anonymous_id=tablet-1"},
        ),
        "restored_by_split": (
            "anonymous_id=tablet-1 is used by several customers",
            "device_shared",
            {"identifier": "anonymous_id=tablet-1"},
        ),
    }

"""The reasons identity writes itself (services/identity/reasons.py): a history entry keeps its
English `reason` and gives its code and parameters beside it, which the console names in the
reader's language; a manager's typed reason has no code."""

from __future__ import annotations

import re
import uuid

import pytest

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from schemas.envelope import CustomerRef
from services.identity import IdentityResolver, IdentityRules, TenantRules
from services.identity.reasons import REASONS, REFUSALS, reason_code, reason_text
from services.query_api.web import HERE
from services.query_api.web.i18n import MESSAGES

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@pytest.fixture
def identity() -> IdentityResolver:
    uri = f"file:reasons-{uuid.uuid4().hex}?mode=memory&cache=shared"
    return IdentityResolver(
        SqliteIdentityStore(uri), IdentityRules(default=TenantRules(phone_region="ES"))
    )


@pytest.mark.parametrize("code", sorted(REASONS))
def test_every_reason_is_read_back_as_its_code_and_said_in_both_languages(code: str) -> None:
    params = {name: f"email=ana.{name}@shop.es" for name in PLACEHOLDER.findall(REASONS[code])}
    assert reason_code(reason_text(code, **params)) == (code, params)
    key = f"identity_reason_{code}"
    assert MESSAGES["en"][key] == REASONS[code]
    assert MESSAGES["es"][key] != REASONS[code]
    assert set(PLACEHOLDER.findall(MESSAGES["es"][key])) == set(params)


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

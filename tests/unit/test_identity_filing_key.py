"""What an event names to be filed with a known customer (`IdentityResolver.filing_key`): a key of
the strongest identifier the customer holds itself, never its opaque id (which would register a
new customer). Alert actions are filed this way (services/query_api/routers/alert_lifecycle.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from schemas.envelope import CustomerRef
from services.identity import IdentityResolver, IdentityRules, TenantRules
from services.identity.models import CustomerIdentities, IdentityView
from services.identity.naming import own_identifier_key

TENANT = "acme"


@pytest.fixture
def identity() -> IdentityResolver:
    uri = f"file:filing-key-{uuid.uuid4().hex}?mode=memory&cache=shared"
    return IdentityResolver(
        SqliteIdentityStore(uri), IdentityRules(default=TenantRules(phone_region="ES"))
    )


def view(kind: str, value: str, held_by: str) -> IdentityView:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return IdentityView(kind, value, held_by, "web", "exact", None, "system", at, 1, "active")


def test_the_strongest_identifier_the_customer_holds_itself_names_it() -> None:
    held = CustomerIdentities(
        requested_id="c_survivor",
        customer_id="c_survivor",
        members=("c_survivor", "c_absorbed"),
        identities=(
            view("phone", "+34612345678", "c_survivor"),
            view("external:crm", "9", "c_absorbed"),  # stronger, but a merged member's
            view("email", "ana@shop.es", "c_survivor"),
            view("anonymous_id", "dev-1", "c_survivor"),
        ),
    )
    assert own_identifier_key(held) == "email:ana@shop.es"
    only_merged = CustomerIdentities(
        "c_x", "c_x", ("c_x", "c_y"), (view("email", "b@x.io", "c_y"),)
    )
    assert own_identifier_key(only_merged) is None


def test_an_event_naming_the_filing_key_is_filed_with_the_same_customer(
    identity: IdentityResolver,
) -> None:
    ref = CustomerRef(email="Ana@Shop.es", phone="612 345 678", anonymous_id="dev-1")
    customer = identity.resolve(TENANT, ref, uuid.uuid4(), "web").customer_id
    assert customer.startswith("c_")  # opaque: an event naming it would be a new customer's
    key = identity.filing_key(TENANT, customer)
    assert key == "email:ana@shop.es"
    again = identity.resolve(TENANT, CustomerRef(email="ana@shop.es"), uuid.uuid4(), "alerts")
    assert again.customer_id == customer


def test_an_unknown_id_or_an_identifier_key_is_filed_as_itself(identity: IdentityResolver) -> None:
    assert identity.filing_key(TENANT, "c_nobody") == "c_nobody"
    assert identity.filing_key(TENANT, "email:ana@shop.es") == "email:ana@shop.es"

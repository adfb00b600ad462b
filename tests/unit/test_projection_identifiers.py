"""The identifiers the projections list for a customer (timeline, profile, lookups): those identity
reads with the tenant's rules, never a value it refuses (review: a placeholder phone two strangers
were given listed them both and showed on each profile)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.envelope import Event
from schemas.validate import accept
from services.identity.rules import IdentityRules, TenantRules
from services.projections import sql
from services.projections.projection import ProjectionsProjection

AT = datetime(2026, 12, 7, 19, 0, tzinfo=UTC)


def touchpoint(customer: dict[str, Any], tenant_id: str = "acme") -> Event:
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": "phone",
        "type": "call.ended",
        "customer": customer,
        "occurred_at": AT.isoformat(),
        "payload": {},
    }
    accepted, _ = accept(raw, tenant_id, AT + timedelta(seconds=1))
    return accepted


def listed(event: Event, projection: ProjectionsProjection | None = None) -> dict[str, list[str]]:
    """What each table lists of the event's identifiers, as kind:value."""
    rows = (projection or ProjectionsProjection()).rows(event, "c_1")
    [timeline] = rows[sql.TIMELINE]
    return {
        "timeline": list(timeline["identifiers"]),
        "profile": [r["key"] for r in rows[sql.PROFILE_FACTS] if r["field"] == "identifier"],
        "lookup": [f"{r['kind']}:{r['value']}" for r in rows[sql.IDENTIFIERS]],
    }


def everywhere(*identifiers: str) -> dict[str, list[str]]:
    return {table: list(identifiers) for table in ("timeline", "profile", "lookup")}


def test_a_placeholder_phone_is_listed_nowhere() -> None:
    event = touchpoint({"customer_id": "ph-a", "email": "ph.a@shop.es", "phone": "+34 600 000 000"})
    assert listed(event) == everywhere("customer_id:ph-a", "email:ph.a@shop.es")


def test_placeholders_blocked_and_invalid_values_of_every_kind_are_left_out() -> None:
    event = touchpoint(
        {"email": "no@email.com", "phone": "no tiene", "anonymous_id": "undefined"}
    )  # blocked, invalid, placeholder
    assert listed(event) == everywhere()


def test_a_tenant_s_own_rules_decide() -> None:
    """A value one tenant blocks is another's identifier; a tenant whose customer really holds
    an example number (`+34 612 345 678`) turns that placeholder off."""
    rules = IdentityRules(
        tenants={
            "beta": TenantRules(blocked={"email": ("mostrador@shop.es",)}),
            "gamma": TenantRules(phone_examples_are_placeholders=False),
        }
    )
    projection = ProjectionsProjection(rules)
    desk = {"email": "mostrador@shop.es"}
    assert listed(touchpoint(desk, "acme"), projection) == everywhere("email:mostrador@shop.es")
    assert listed(touchpoint(desk, "beta"), projection) == everywhere()
    example = {"phone": "+34 612 345 678"}
    assert listed(touchpoint(example, "acme"), projection) == everywhere()
    assert listed(touchpoint(example, "gamma"), projection) == everywhere("phone:+34612345678")


def test_a_national_number_several_regions_read_is_kept_as_written() -> None:
    """Identity reads it as the reading a customer holds, which only its state knows; the
    lookups search each reading's spellings, the digits as written among them."""
    assert listed(touchpoint({"phone": "316 951 3292"})) == everywhere("phone:3169513292")


def test_a_phone_is_identity_s_e164_number_however_written() -> None:
    """Review: `(+34) 617-48-29-35` was listed as `phone:34617482935` (its `+` not first), beside
    `phone:+34617482935` from the same person's calls."""
    for written in ("(+34) 617-48-29-35", "617 48 29 35", "0034 617482935", "+34617482935"):
        event = touchpoint({"email": "lucia@shop.es", "phone": written})
        assert listed(event) == everywhere("email:lucia@shop.es", "phone:+34617482935"), written


def test_a_tenant_s_region_reads_its_national_numbers() -> None:
    projection = ProjectionsProjection(IdentityRules(default=TenantRules(phone_region="MX")))
    event = touchpoint({"phone": "55 1234 5678"})
    assert listed(event, projection) == everywhere("phone:+525512345678")

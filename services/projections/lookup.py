"""Finding customers by identifier: the customer ids an email, phone or other id was seen on.

One row per (identifier, event), so that the first and last sighting are exact commutative
aggregates whatever the arrival order; the SQL is in `sql.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kernel.customer_key import customer_key, normalise_email, normalise_phone, split_key
from kernel.processing import to_micros
from schemas.envelope import Event
from schemas.families import filed_customer
from services.identity.person_names import name_in
from services.identity.rules import TenantRules
from services.projections.identifiers import event_identifiers
from services.projections.timeline import from_micros

LOOKUP_KINDS = ("email", "phone", "anonymous_id", "external_id")
MAX_MATCHES = 100

# The query value goes through the same normalisation as the stored identifier, so that
# "Ana@Example.COM" finds what was sent as "ana@example.com". Others match exactly.
_NORMALISE: dict[str, Callable[[str], str]] = {
    "email": normalise_email,
    "phone": normalise_phone,
}


# The person's name a touchpoint carries (`payload.attributes`: `name`, or `first_name` and
# `last_name`, as Segment's traits map to them) is kept beside the identifiers under this kind, so
# that an agent finds a customer by name (`search.py`). It is no identifier: lookups by identifier
# (`LOOKUP_KINDS`) never read it.
NAME_KIND = "name"


def to_identifier_rows(
    event: Event, customer_id: str | None = None, rules: TenantRules | None = None
) -> list[dict[str, Any]]:
    """The customer_identifiers rows of one event: one per identifier identity reads in it with
    the tenant's `rules` (`identifiers.py`: a placeholder finds nobody), and one for the person's
    name it carries (`NAME_KIND`, lower case without accents, `person_names`), filed under
    `customer_id` (default: its customer key)."""
    owner, at, event_id = (
        customer_id or customer_key(event.customer),
        to_micros(event.derived_at),
        str(event.event_id),
    )
    found = event_identifiers(event, rules)
    if filed_customer(event) is None and (name := name_in(event.payload)):
        found = [*found, (NAME_KIND, name)]  # (a platform event's payload names nobody)
    return [
        {
            "tenant_id": event.tenant_id,
            "kind": kind,
            "value": value,
            "customer_id": owner,
            "derived_at": at,
            "event_id": event_id,
        }
        for kind, value in found
    ]


class InvalidLookup(ValueError):
    """A lookup that does not name exactly one usable identifier."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def lookup_key(
    email: str | None = None,
    phone: str | None = None,
    anonymous_id: str | None = None,
    external_id: str | None = None,
) -> tuple[str, str]:
    """The (kind, normalised value) to search for; InvalidLookup unless exactly one is given."""
    given = {
        kind: value
        for kind, value in zip(LOOKUP_KINDS, (email, phone, anonymous_id, external_id), strict=True)
        if value is not None
    }
    if len(given) != 1:
        raise InvalidLookup(f"pass exactly one of {', '.join(LOOKUP_KINDS)}", "query")
    kind, raw = given.popitem()
    value = _NORMALISE.get(kind, lambda v: v)(raw)
    if not value.strip("+"):
        raise InvalidLookup(f"{kind} must not be empty", f"query.{kind}")
    if kind == "external_id":
        namespace, _, external = value.partition(":")
        if not namespace or not external:
            raise InvalidLookup(
                "external_id must be namespace:value, e.g. shopify:1234", "query.external_id"
            )
        return f"external:{namespace}", external  # the kind as spelled everywhere else
    return kind, value


class CustomerMatch(BaseModel):
    """A customer an identifier was seen on."""

    customer_id: str
    first_seen: datetime
    last_seen: datetime
    events: int = Field(description="how many events carried the identifier")


class CustomerLookup(BaseModel):
    """Customers matching an identifier, most recently seen first."""

    kind: str
    value: str = Field(description="the identifier as searched, after normalisation")
    customers: list[CustomerMatch]


def matches_from_rows(rows: Sequence[dict[str, Any]]) -> list[CustomerMatch]:
    matches = [
        CustomerMatch(
            customer_id=row["customer_id"],
            first_seen=from_micros(row["first_at"]),
            last_seen=from_micros(row["last_at"]),
            events=row["events"],
        )
        for row in rows
    ]
    by_id = sorted(matches, key=lambda m: m.customer_id)
    return sorted(by_id, key=lambda m: m.last_seen, reverse=True)


def combine_matches(
    matches: Sequence[CustomerMatch], canonical: Callable[[str], str]
) -> list[CustomerMatch]:
    """Matches of customers merged into one become one match under the canonical id. Exact: each
    event is filed under exactly one customer, so the counts add up."""
    combined: dict[str, CustomerMatch] = {}
    for match in matches:
        customer_id = canonical(match.customer_id)
        seen = combined.get(customer_id)
        combined[customer_id] = CustomerMatch(
            customer_id=customer_id,
            first_seen=min(match.first_seen, seen.first_seen) if seen else match.first_seen,
            last_seen=max(match.last_seen, seen.last_seen) if seen else match.last_seen,
            events=match.events + (seen.events if seen else 0),
        )
    by_id = sorted(combined.values(), key=lambda m: m.customer_id)
    return sorted(by_id, key=lambda m: m.last_seen, reverse=True)


def key_lookup(key: str) -> tuple[str, str]:
    """The (kind, value) of the identifier a key names (`kernel.customer_key.split_key`), as stored
    for lookups; anything else is a customer id."""
    kind, value = split_key(key)
    return kind, _NORMALISE.get(kind, lambda v: v)(value)

"""The identifiers a touchpoint gives its customer on the timeline, the profile and the lookups:
those identity reads as identifiers, with the tenant's rules (services/identity/normalise.py).

A value identity refuses (a placeholder such as `+34 600 000 000`, a blocked value, text that is
no identifier of its kind) names nobody: listed, it would show strangers one identifier and find
them all by it. The ingest notes each refusal (`identifier_ignored`) and `GET /v1/events/{id}`
says why; the value is no identifier of the profile and no lookup key. A phone is listed as the
E.164 number identity links (`(+34) 617-48-29-35` is `+34617482935`, so is `617 48 29 35`), once
however it was written. Other kinds keep the spelling they always had here (an email lower case
as written, not identity's key for the mailbox: agents search the spelling people use, dots and
all, and the lookups find every spelling identity reads as one mailbox).

A national number several regions read (`ambiguous_readings`) is kept as written, digits only:
identity reads it as whichever reading a customer holds, which only its state knows, and the
lookups search its every spelling (`lookup_spellings`).
"""

from __future__ import annotations

from functools import cache

from kernel.customer_key import normalise_email, normalise_phone
from schemas.envelope import Event
from schemas.families import filed_customer
from services.identity.normalise import ambiguous_readings, normalise_one, raw_identifiers
from services.identity.rules import Identifier, TenantRules


@cache
def default_rules() -> TenantRules:
    """The product's rules, for callers that name none (tests, benches): built on first use."""
    return TenantRules()


def event_identifiers(event: Event, rules: TenantRules | None = None) -> list[tuple[str, str]]:
    """The (kind, value) identifiers the event gives its customer, in the order it carries them;
    none for a platform event naming the customer it is filed under (`filed_customer`): that name
    is no identifier anyone holds."""
    if filed_customer(event) is not None:
        return []
    rules = rules or default_rules()
    found = (_identifier(kind, raw, rules) for kind, raw in raw_identifiers(event.customer))
    return list(dict.fromkeys(f for f in found if f is not None))


def _identifier(kind: str, raw: str, rules: TenantRules) -> tuple[str, str] | None:
    read = normalise_one(kind, raw, rules)
    if isinstance(read, Identifier):
        return kind, _shown(read, raw)
    if ambiguous_readings(read, rules):
        return kind, normalise_phone(raw)
    return None


def _shown(read: Identifier, raw: str) -> str:
    if read.family == "phone":
        return read.value
    return normalise_email(raw) if read.family == "email" else raw

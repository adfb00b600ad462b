"""Customer ids people can read: the name a customer is registered with, and ids read back.

A new customer is named after the key its first touchpoint would have been filed under before
identity resolution existed (`kernel.customer_key`): the explicit customer id, else
`ext:<namespace>:<value>`, `email:<address>`, `phone:<number>` or `anon:<id>`. Those are the ids
producers, agents and existing links already use, so they stay valid. A name is taken once: when
another customer has it, or when another customer holds the identifier behind it (the name would
point at the wrong person), the new customer is named by a UUID derived from its seed instead.
Names never change, whatever is merged, split or unlinked later.

Reading an id back (`identifier_of_key`) is the inverse: `email:ana@x.io` is the email
`ana@x.io`, a plain id is a `customer_id`, so any key a user knows finds the customer holding it.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.envelope import CustomerRef
from services.identity.domain import stable_id
from services.identity.normalise import normalise_one
from services.identity.rules import Identifier, TenantRules
from services.identity.state import IdentityState

# Key prefixes of `kernel.customer_key`, and the API's `<kind>:` spelling of identifiers (timeline
# entries list `anonymous_id:…`, `external:shop:1`), by kind; a key without one is a customer_id.
_PREFIXES = (
    ("email:", "email"),
    ("phone:", "phone"),
    ("anon:", "anonymous_id"),
    ("anonymous_id:", "anonymous_id"),
    ("customer_id:", "customer_id"),
)
_EXTERNAL = ("ext:", "external:")
# Attempts at a free UUID name; only a producer choosing other customers' ids could use one up.
_MAX_FALLBACKS = 100


@dataclass(frozen=True)
class PreferredName:
    """The name a customer registered by this touchpoint should get: the key of its strongest
    identifier as identity normalises it (`phone:+34612345678` however the number was written),
    and that identifier; None when identity can use none of them (a placeholder, `no tiene`)."""

    name: str | None
    identifier: Identifier | None


def preferred_name(ref: CustomerRef, rules: TenantRules) -> PreferredName:
    for kind, raw in _by_key_order(ref):
        found = normalise_one(kind, raw, rules)
        if isinstance(found, Identifier):
            return PreferredName(key_of(found), found)
    return PreferredName(None, None)


def _by_key_order(ref: CustomerRef) -> list[tuple[str, str]]:
    """The ref's identifiers in the order `kernel.customer_key` chooses among them."""
    external = [(f"external:{ns}", ref.external_ids[ns]) for ns in sorted(ref.external_ids)]
    found = [("customer_id", ref.customer_id), *external, ("email", ref.email)]
    found += [("phone", ref.phone), ("anonymous_id", ref.anonymous_id)]
    return [(kind, raw) for kind, raw in found if raw]


def key_of(identifier: Identifier) -> str:
    """The customer key naming an identifier: the inverse of `identifier_of_key`."""
    family, _, namespace = identifier.kind.partition(":")
    if family == "customer_id":
        return identifier.value
    if family == "external":
        # The customer key spelling of `kernel.customer_key` (`ext:`), which names the same customer.
        return f"{_EXTERNAL[0]}{namespace}:{identifier.value}"
    prefix = next(p for p, kind in _PREFIXES if kind == family)
    return prefix + identifier.value


def identifier_of_key(key: str, rules: TenantRules) -> Identifier | None:
    """The identifier a customer key names, normalised; None when it names nothing usable."""
    kind, raw = _split_key(key)
    found = normalise_one(kind, raw, rules) if raw.strip() else None
    return found if isinstance(found, Identifier) else None


def _split_key(key: str) -> tuple[str, str]:
    for prefix, kind in _PREFIXES:
        if key.startswith(prefix):
            return kind, key[len(prefix) :]
    for external in _EXTERNAL:
        namespace, sep, value = key[len(external) :].partition(":")
        if key.startswith(external) and sep and namespace:
            return f"external:{namespace}", value
    return "customer_id", key


def new_customer_name(state: IdentityState, preferred: PreferredName, seed: str) -> str:
    """The preferred name when it is free, else a UUID derived from the seed (unique per seed)."""
    held = preferred.identifier is not None and state.claim(preferred.identifier).holders
    if preferred.name and not held and state.find_customer(preferred.name) is None:
        return preferred.name
    for attempt in range(_MAX_FALLBACKS):
        name = _fallback(state.tenant_id, seed, attempt)
        if state.find_customer(name) is None:
            return name
    raise RuntimeError(f"no free customer name for seed {seed!r}")


def _fallback(tenant_id: str, seed: str, attempt: int) -> str:
    # The first is the id an unnamed customer of this seed would have had.
    parts = (seed,) if attempt == 0 else (seed, str(attempt))
    return str(stable_id(tenant_id, "customer", *parts))

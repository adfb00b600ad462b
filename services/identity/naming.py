"""Customer ids: the id a customer is registered with, and ids read back.

A customer id carries no personal data (`kernel.opaque_ids`): a new customer is named
`c_<26 letters>`, a keyed hash (HMAC-SHA256) of the tenant and its seed, what it is first seen
with (`new_customer_seed`: the identifier it links, at its index version, else the
touchpoint).
The one exception is an explicit `customer_id` a channel system sends: that is the system's own
id for its customer, which producers, agents and existing links already use, so a customer
first seen with one is named by it while it is free. (A system that puts an email there has
chosen to; the README's privacy section says so.) A name is taken once: when another customer has
it, or holds the identifier behind it, the new customer gets an opaque id instead. Names never
change, whatever is merged, split or unlinked later.

Reading an id back (`identifier_of_key`): an opaque or plain id is a `customer_id`; a key typed as
an identifier (`email:ana@x.io`, `kernel.customer_key.split_key`) is looked up as that
identifier, so old readable ids and links still find their customer without any being minted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from kernel.customer_key import split_key
from kernel.opaque_ids import opaque_customer_id
from schemas.envelope import CustomerRef
from services.identity.normalise import Normalised, normalise_one
from services.identity.policy import Claim, lines_alone, rank
from services.identity.rules import Identifier, TenantRules
from services.identity.state import IdentityState

# Attempts at a free opaque name; only a producer choosing other customers' ids could use one up.
_MAX_FALLBACKS = 100


@dataclass(frozen=True)
class PreferredName:
    """What a customer registered by this touchpoint is named with: its strongest identifier as
    identity normalises it (`phone:+34617345678` however the number was written), None when
    identity can use none of them (a placeholder, `no tiene`); the name that identifier gives,
    only when it is an explicit customer_id; and the key opaque names are derived with."""

    name: str | None
    identifier: Identifier | None
    id_key: bytes


def preferred_name(ref: CustomerRef, rules: TenantRules, id_key: bytes) -> PreferredName:
    for kind, raw in _by_key_order(ref):
        found = normalise_one(kind, raw, rules)
        if isinstance(found, Identifier):
            name = found.value if found.kind == "customer_id" else None
            return PreferredName(name, found, id_key)
    return PreferredName(None, None, id_key)


def _by_key_order(ref: CustomerRef) -> list[tuple[str, str]]:
    """The ref's identifiers in the order `kernel.customer_key` chooses among them."""
    external = [(f"external:{ns}", ref.external_ids[ns]) for ns in sorted(ref.external_ids)]
    found = [("customer_id", ref.customer_id), *external, ("email", ref.email)]
    found += [("phone", ref.phone), ("anonymous_id", ref.anonymous_id)]
    return [(kind, raw) for kind, raw in found if raw]


def identifier_of_key(key: str, rules: TenantRules) -> Identifier | None:
    """The identifier a customer key names, normalised; None when it names nothing usable."""
    kind, raw = split_key(key)
    found = normalise_one(kind, raw, rules) if raw.strip() else None
    return found if isinstance(found, Identifier) else None


def new_customer_name(state: IdentityState, preferred: PreferredName, seed: str) -> str:
    """The preferred name (an explicit customer_id) when it is free, else an opaque id derived
    from the seed (unique per seed)."""
    held = preferred.identifier is not None and state.claim(preferred.identifier).holders
    if preferred.name and not held and state.find_customer(preferred.name) is None:
        return preferred.name
    for attempt in range(_MAX_FALLBACKS):
        name = _fallback(state.tenant_id, seed, attempt, preferred.id_key)
        if state.find_customer(name) is None:
            return name
    # Neither the seed nor the identifier behind it: the message may reach logs and dead letters.
    raise RuntimeError("no free customer name for this touchpoint")


def new_customer_seed(
    state: IdentityState,
    claims: Sequence[Claim],
    rules: TenantRules,
    event_id: str,
    linked: frozenset[Identifier],
) -> str:
    """What a new customer's id derives from: the identifier it is first seen with and links, at
    the version of that identifier's index (which linking it advances, so the id is never
    reused); or the touchpoint itself when it links no free identifier (nothing usable, or only
    identifiers it leaves alone: a household's line, a hub), whose index would stay where it is
    and give every such touchpoint one seed."""
    for claim in rank(claims, rules):
        if claim.identifier in linked and _free(claim):
            index = state.index(claim.identifier)
            version = index.version if index else 0
            return f"{claim.identifier.kind}|{claim.identifier.value}|{version}"
    return f"event|{event_id}"


def likely_name(
    state: IdentityState, normalised: Normalised, event_id: str, rules: TenantRules, id_key: bytes
) -> str | None:
    """The opaque name a customer registered by this touchpoint would most likely get, as the
    state stands: `new_customer_seed`'s as if it linked every free identifier it carries (a
    household's line alone links none: the touchpoint's own seed, as for nothing usable); None
    when every identifier it carries is taken (it seldom registers anybody). Read with the batch,
    so that naming a new customer seldom needs a query of its own; a guess, never an answer:
    `new_customer_name` decides."""
    claims = [state.claim(i) for i in normalised.identifiers]
    if lines_alone(normalised.identifiers, rules):
        linked: frozenset[Identifier] = frozenset()
    else:
        linked = frozenset(c.identifier for c in claims if _free(c))
        if claims and not linked:
            return None
    seed = new_customer_seed(state, claims, rules, event_id, linked)
    return _fallback(state.tenant_id, seed, 0, id_key)


def _free(claim: Claim) -> bool:
    """Nobody holds it, and it may still link somebody."""
    return not (claim.holders or claim.suppressed or claim.saturated)


@lru_cache(maxsize=4096)  # a likely name is derived again when its customer is registered
def _fallback(tenant_id: str, seed: str, attempt: int, id_key: bytes) -> str:
    # The first is the id of this seed; the others exist for a producer choosing `c_` ids.
    material = seed if attempt == 0 else f"{seed}|{attempt}"
    return opaque_customer_id(id_key, tenant_id, material)

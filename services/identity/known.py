"""The fast path for evidence already seen: a touchpoint whose every identifier the same customer
holds already, and which changes nothing under the rules, is filed under that customer without
the policy's full decision.

Most touchpoints of a known customer are such. `quiet_decision` answers only when it can show,
from the claims and the group alone, that `policy.decide` would return a decision registering,
linking, merging, proposing, saturating, splitting and reassigning nothing; it names the home
`decide` would choose and the confirmations of mobiles in use `decide` would record. Otherwise it
answers None and the touchpoint takes the full path. Why each condition suffices is said beside
it, in terms of `policy.decide`'s steps.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.identity.normalise import Normalised
from services.identity.policy import (
    CONFIRM_EVERY_MICROS,
    Claim,
    Decision,
    Situation,
    idle,
    lines_alone,
    rank,
    unique_conflicts,
)
from services.identity.rules import Identifier, TenantRules
from services.identity.state import IdentityState


def quiet_decision(
    state: IdentityState, normalised: Normalised, at: int, rules: TenantRules
) -> Decision | None:
    """The decision `decide` would make for this touchpoint (that happened `at`) when it changes
    nothing but the confirmation of mobiles in use, or None when the full decision is needed."""
    if not normalised.identifiers:
        return None  # nothing usable: `decide` registers a one-off customer
    if lines_alone(normalised.identifiers, rules):
        return None  # a household's line alone: `decide` registers a one-off customer
    claims = [state.claim(i) for i in normalised.identifiers]
    if not all(c.holders and not (c.saturated or c.suppressed) for c in claims):
        return None  # a new identifier links or registers; a skipped one is reported
    if any(c.presented_by for c in claims):
        return None  # a device others used too: `_choose_home` may find it shared
    group = state.group(claims[0].holders[-1])
    # Every holder in one group, holding every identifier: `_merge_or_propose` reaches no other
    # group, `_link` finds every claim held by the home's members, `_is_hub` sees every personal
    # line of the touchpoint among the group's own, and `_mistyped_email_of` has no new email.
    canonical = group.canonical_id
    if any(
        h not in group.members or state.group(h).canonical_id != canonical
        for c in claims
        for h in c.holders
    ):
        return None
    if not group.identifiers.issuperset(normalised.identifiers):
        return None
    event_ids = [c.identifier for c in claims]
    if unique_conflicts(event_ids, group.identifiers, rules):
        return None  # `_choose_home` passes over the group: whatever happens then is not quiet
    # Not idle, so neither dormant (its window is never shorter) nor stale: `_choose_home` and
    # `_link` treat every claim as current, and a mobile still extends (read only for merges and
    # new identifiers: none here). An idle one may be stale: its holders' newer numbers are not
    # read here.
    when = Situation(claims=(), groups={}, new_customer_id="", at=at)
    if any(idle(c, when, rules) for c in claims):
        return None
    ranked = rank(claims, rules)
    home = _home(state, ranked, rules)
    if home is None:
        return None
    return Decision(home_id=home, register=False, confirm=tuple(_confirmations(ranked, at, rules)))


def _confirmations(
    ranked: list[Claim], at: int, rules: TenantRules
) -> Iterator[tuple[Identifier, str]]:
    """`_confirm`'s: every holder (all members of the home's group) of a reassignable identifier
    whose use was last recorded a week or more ago. None when `at` is unknown."""
    if not at:
        return
    for claim in ranked:
        if not rules.rule_for(claim.identifier).reassign_after_days:
            continue
        for holder in claim.holders:
            if claim.confirmed.get(holder, 0) + CONFIRM_EVERY_MICROS <= at:
                yield claim.identifier, holder


def _home(state: IdentityState, ranked: list[Claim], rules: TenantRules) -> str | None:
    """`_choose_home`'s choice: the newest holder of the first identifier that may carry the
    touchpoint (a device never decides for a touchpoint with a personal identifier). A device's
    holder that is a person, not the device's profile, would get a new profile: not quiet."""
    personal = any(not rules.rule_for(c.identifier).device_profile for c in ranked)
    for claim in ranked:
        device = rules.rule_for(claim.identifier).device_profile
        if device and personal:
            continue
        holder = claim.holders[-1]
        if device and not _is_profile(state, holder, rules) and _identified(state, holder, rules):
            return None
        return holder
    return None


def _is_profile(state: IdentityState, customer_id: str, rules: TenantRules) -> bool:
    links = state.customer(customer_id).links
    return bool(links) and all(rules.rule_for(i).device_profile for i in links)


def _identified(state: IdentityState, customer_id: str, rules: TenantRules) -> bool:
    identifiers = state.group(customer_id).identifiers
    return any(rules.is_strong(i) or rules.rule_for(i).vouches for i in identifiers)

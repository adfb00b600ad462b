"""Identity commands as events on loaded aggregates: register, link, merge, split, propose, unlink.

Both the automatic path (a resolution's `Decision`) and the manual path (an API call) go through
these functions, so a merge is the same pair of events whoever asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.identity.domain import Customer, MergeCandidate, stable_id
from services.identity.errors import IdentifierNotLinked, MergeRefused, SplitRefused
from services.identity.models import MergePlan, Refusal
from services.identity.policy import (
    CONFIRM_EVERY_MICROS,
    Link,
    Proposal,
    Reassign,
    unique_conflicts,
)
from services.identity.reasons import reason_text
from services.identity.rules import Identifier, TenantRules
from services.identity.state import IdentityState

SYSTEM_ACTOR = "system:identity-resolver"


@dataclass(frozen=True)
class Evidence:
    """The touchpoint that justifies a change, and who made it."""

    event_id: str | None
    source: str
    actor: str = SYSTEM_ACTOR
    at: int = 0  # when the touchpoint happened, epoch microseconds; 0 when unknown
    name: str = ""  # the person's name it carries, normalised (person_names.py); "" when none
    # The subject its event was sealed under (`kernel.shredding.subject_of` of its identifiers as
    # normalised before any known reading): "" when unknown
    subject: str = ""


def register(
    state: IdentityState, seed: str, name: str, reason: str, evidence: Evidence
) -> Customer:
    customer = Customer(
        tenant_id=state.tenant_id,
        seed=seed,
        reason=reason,
        actor=evidence.actor,
        source=evidence.source,
        evidence_event_id=evidence.event_id,
        name=name,
    )
    state.add(customer)
    return customer


def link(state: IdentityState, customer_id: str, link: Link, evidence: Evidence) -> None:
    identifier = link.identifier
    state.customer(customer_id).link(
        kind=identifier.kind,
        value=identifier.value,
        source=evidence.source,
        rule=link.rule,
        evidence_event_id=evidence.event_id,
        actor=evidence.actor,
        seen_at=evidence.at,
    )
    state.index_or_new(identifier).claim(customer_id, evidence.event_id, link.rule)


def record_name(state: IdentityState, customer_id: str, evidence: Evidence) -> None:
    """Keep the touchpoint's name on the customer it was filed under, once per name."""
    customer = state.customer(customer_id)
    if evidence.name and evidence.name not in customer.names:
        customer.record_name(name=evidence.name, evidence_event_id=evidence.event_id)


def present_erased(
    state: IdentityState, customer_id: str, identifier: Identifier, evidence: Evidence
) -> None:
    """The touchpoint filed under the customer carried an erased identifier: kept once on the
    customer (`Customer.ErasedIdentifierPresented`), for the customer's own erasure, and on
    the identifier (`IdentifierIndex.CarriedAfterErasure`), for the erasure of another."""
    customer = state.customer(customer_id)
    if identifier not in customer.presented_erased:
        customer.present_erased(
            kind=identifier.kind, value=identifier.value, evidence_event_id=evidence.event_id
        )
        state.index_or_new(identifier).carry_after_erasure(customer_id=customer_id)


# Customers recorded per identifier as carrying it while skipped; past it, the index only notes
# that more did (`IdentifierIndex.CarriersOverflowed`), and its key is never destroyed.
MAX_CARRIERS = 32


def carry_while_skipped(state: IdentityState, identifier: Identifier, customer_id: str) -> None:
    """The touchpoint filed under the customer was sealed under the identifier's subject, which
    resolution skipped (a home line alone, a hub ...) and the customer does not hold: recorded
    once per customer on the index (`IdentifierIndex.CarriedWhileSkipped`), so erasing the
    identifier's holders leaves its key to this customer's events. Read by erasure only."""
    index = state.index_or_new(identifier)
    if customer_id in index.holders or customer_id in index.carried_while_skipped:
        return
    if len(index.carried_while_skipped) < MAX_CARRIERS:
        index.carry_while_skipped(customer_id=customer_id)
    elif not index.carriers_overflowed:
        index.overflow_carriers()
    # and on the customer, past the index's limit too: its erasure then knows the key it may
    # take with it (kept while the index has overflowed, `erasure._carried_outside`), and a call
    # from a household's line alone knows its line (`resolver._household_lines`)
    customer = state.customer(customer_id)
    if identifier not in customer.carried_skipped:
        customer.carry_skipped(kind=identifier.kind, value=identifier.value)


# A national number's reading written by more customers than this names nobody in particular.
MAX_READERS = 4


def read_nationally(
    state: IdentityState, readings: tuple[Identifier, ...], customer_id: str, at: int
) -> None:
    """The touchpoint filed under the customer, happened `at`, carried a national number whose
    `readings` nobody holds, held or erased (`IdentifierIndex.ReadNationally`): recorded on each
    reading once per customer and week, for up to `MAX_READERS` customers."""
    values = sorted(r.value for r in readings)
    for reading in readings:
        index = state.index_or_new(reading)
        known = index.read_nationally.get(customer_id)
        if known is not None and at < known[0] + CONFIRM_EVERY_MICROS:
            continue  # written again lately: its time is recent enough
        if known is None and len(index.read_nationally) >= MAX_READERS:
            continue
        index.read_nationally_by(customer_id=customer_id, at=at, readings=values)


def confirm(state: IdentityState, identifier: Identifier, holder: str, evidence: Evidence) -> None:
    state.index_or_new(identifier).confirm(customer_id=holder, at=evidence.at)


def present(
    state: IdentityState, identifier: Identifier, customer_id: str, evidence: Evidence
) -> None:
    """A customer used a device it may not hold (`IdentifierIndex.Presented`)."""
    state.index_or_new(identifier).present(customer_id=customer_id, at=evidence.at)


def reassign(state: IdentityState, reassigned: Reassign, evidence: Evidence) -> None:
    """Take a reassigned identifier from its former holders (recorded on each, with why)."""
    identifier = reassigned.identifier
    reason = reason_text("reassigned")
    for holder in reassigned.released_from:
        customer = state.customer(holder)
        if identifier in customer.links:
            customer.unlink(
                kind=identifier.kind,
                value=identifier.value,
                reason=reason,
                actor=evidence.actor,
                erased=False,
            )
        state.index_or_new(identifier).release(
            customer_id=holder, reason=reason, actor=evidence.actor
        )


def saturate(state: IdentityState, identifier: Identifier, limit: int, evidence: Evidence) -> None:
    index = state.index_or_new(identifier)
    if not index.saturated:
        index.saturate(limit=limit, evidence_event_id=evidence.event_id)


def split_hub_merges(state: IdentityState, hub: Identifier, evidence: Evidence) -> list[str]:
    """Undo the automatic merges an identifier made before it was found to be a hub: every active
    merge, in the groups of its holders, whose reason is that both customers held it. Each split
    is audited and keeps the pair apart from automatic merges; a manager may merge them again."""
    reason = reason_text("hub_split", hub=str(hub))
    because = reason_text("both_hold", identifier=str(hub))
    split_ids = []
    for holder in state.claim(hub).holders:
        for member in state.members(state.canonical(holder)):
            customer = state.customer(member)
            for merge_id, absorbed in sorted(customer.absorbed.items()):
                if customer.merge_reasons.get(merge_id) == because:
                    split_ids.append(split(state, member, absorbed, reason, evidence.actor))
    return split_ids


def plan_merge(
    state: IdentityState, survivor_id: str, absorbed_id: str, rules: TenantRules
) -> MergePlan:
    """What merging would give, and whether the rules allow it. Changes nothing."""
    survivor, absorbed = state.customer(survivor_id), state.customer(absorbed_id)
    refusals: list[Refusal] = []
    if survivor.id == absorbed.id:
        refusals.append(("same_customer", {}))
    if absorbed.merged_into:
        canonical = state.canonical(absorbed_id)
        refusals.append(("absorbed_merged", {"absorbed_id": absorbed_id, "canonical": canonical}))
    if survivor.merged_into:
        canonical = state.canonical(survivor_id)
        refusals.append(("survivor_merged", {"survivor_id": survivor_id, "canonical": canonical}))
    first, second = state.group(survivor_id), state.group(absorbed_id)
    conflicts = unique_conflicts(first.identifiers, second.identifiers, rules)
    if conflicts:
        refusals.append(("conflicting_identifiers", {"kinds": ", ".join(conflicts)}))
    members = state.members(survivor_id) + state.members(absorbed_id)
    return MergePlan(
        survivor_id=survivor.customer_id,
        absorbed_id=absorbed.customer_id,
        allowed=not refusals,
        refusals=tuple(refusals),
        members=tuple(dict.fromkeys(members)),
        identifiers=tuple(sorted(first.identifiers | second.identifiers)),
        conflicts=tuple(conflicts),
    )


def merge(state: IdentityState, survivor_id: str, absorbed_id: str, reason: str, actor: str) -> str:
    """Record the merge on both customers; nothing else moves. Returns the merge id."""
    survivor, absorbed = state.customer(survivor_id), state.customer(absorbed_id)
    if absorbed.merged_into or survivor.merged_into or survivor.id == absorbed.id:
        raise MergeRefused([f"{absorbed_id} cannot be merged into {survivor_id}"])
    merge_id = str(stable_id(state.tenant_id, "merge", absorbed.customer_id, str(absorbed.version)))
    fields = {
        "tenant_id": state.tenant_id,
        "merge_id": merge_id,
        "survivor_id": survivor.customer_id,
        "absorbed_id": absorbed.customer_id,
        "reason": reason,
        "actor": actor,
    }
    survivor.absorb(**fields)
    absorbed.merge_into(**fields)
    return merge_id


def split(state: IdentityState, survivor_id: str, absorbed_id: str, reason: str, actor: str) -> str:
    """Reverse the active merge of absorbed into survivor exactly, and keep the pair apart."""
    survivor, absorbed = state.customer(survivor_id), state.customer(absorbed_id)
    merge_id = next((m for m, a in survivor.absorbed.items() if a == absorbed.customer_id), None)
    if merge_id is None:
        raise SplitRefused(f"{absorbed_id} is not merged into {survivor_id}")
    fields = {
        "tenant_id": state.tenant_id,
        "merge_id": merge_id,
        "survivor_id": survivor.customer_id,
        "absorbed_id": absorbed.customer_id,
        "reason": reason,
        "actor": actor,
    }
    survivor.split_off(**fields)
    absorbed.restore(**fields)
    pair = state.pair_or_new(survivor.customer_id, absorbed.customer_id)
    pair.separate(merge_id=merge_id, reason=reason, actor=actor)
    return merge_id


def propose(state: IdentityState, proposal: Proposal, evidence: Evidence) -> str | None:
    """Open a merge candidate for review, unless the pair is already open or kept apart."""
    existing = state.pair(proposal.first_id, proposal.second_id)
    if existing is not None and (existing.status == "open" or existing.kept_apart):
        return None
    pair = state.pair_or_new(proposal.first_id, proposal.second_id)
    pair.propose(
        proposer_id=proposal.first_id,
        reason=proposal.reason,
        identifiers=[str(i) for i in proposal.identifiers],
        evidence_event_id=evidence.event_id,
    )
    return str(pair.id)


def unlink(
    state: IdentityState,
    customer_id: str,
    identifier: Identifier,
    reason: str,
    actor: str,
    erase: bool,
) -> str:
    """Unlink from whichever member holds it; erasing also stops it linking anyone, ever."""
    holder = next(
        (
            m
            for m in state.members(state.canonical(customer_id))
            if identifier in state.customer(m).links
        ),
        None,
    )
    if holder is None:
        raise IdentifierNotLinked(f"{customer_id} does not hold that {identifier.kind}")
    state.customer(holder).unlink(
        kind=identifier.kind, value=identifier.value, reason=reason, actor=actor, erased=erase
    )
    index = state.index_or_new(identifier)
    index.release(customer_id=holder, reason=reason, actor=actor)
    if erase and not index.suppressed:
        index.suppress(reason=reason, actor=actor)
    return holder


def survivor_of(state: IdentityState, customer_id: str, absorbed_id: str) -> str:
    """The customer absorbed_id was merged into, if that is within customer_id's group."""
    absorbed = state.customer(absorbed_id)
    if absorbed.merged_into is None:
        raise SplitRefused(f"{absorbed_id} is not merged into any customer")
    if state.canonical(absorbed_id) != state.canonical(customer_id):
        raise SplitRefused(f"{absorbed_id} is not merged into {customer_id}")
    return absorbed.merged_into


def pair_sides(pair: MergeCandidate, survivor_id: str | None) -> tuple[str, str]:
    """(survivor, absorbed) to accept a candidate; the proposer survives unless told otherwise."""
    survivor = survivor_id or pair.proposal["proposer_id"]
    sides = (pair.first_id, pair.second_id)
    if survivor not in sides:
        raise MergeRefused([f"the survivor must be {sides[0]} or {sides[1]}"])
    return survivor, sides[1] if survivor == sides[0] else sides[0]


def merge_pair(
    state: IdentityState,
    survivor_id: str,
    absorbed_id: str,
    reason: str,
    actor: str,
    rules: TenantRules,
) -> str:
    """Merge the groups the two customers belong to now; "" when they are one group already."""
    survivor, absorbed = state.canonical(survivor_id), state.canonical(absorbed_id)
    if survivor == absorbed:
        return ""
    plan = plan_merge(state, survivor, absorbed, rules)
    if not plan.allowed:
        raise MergeRefused(list(plan.reasons))
    return merge(state, survivor, absorbed, reason, actor)

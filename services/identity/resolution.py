"""One touchpoint's identifiers in, one customer out: load the situation, decide, record.

Every resolution is recorded as a `Filing` of the touchpoint (a row the store keeps by tenant and
event id), in the same transaction as the identity changes it causes. Resolving the same touchpoint again (a replay, a redelivery) returns
that filing and changes nothing, so replays rebuild identical projections and cannot resurrect an
unlinked identifier.
"""

from __future__ import annotations

from dataclasses import replace

import phonenumbers

from kernel.shredding import subject_of
from services.identity import changes
from services.identity.changes import MAX_READERS, Evidence
from services.identity.domain import Filing, IdentifierIndex
from services.identity.erasure import erased, erasure_touches
from services.identity.known import quiet_decision
from services.identity.models import ResolvedCustomer
from services.identity.naming import PreferredName, new_customer_name, new_customer_seed
from services.identity.normalise import (
    Normalised,
    ambiguous_readings,
    is_example_number,
    readings_carried,
)
from services.identity.policy import (
    DAY_MICROS,
    ERASED_SKIP,
    PERSONAL_LINES_PER_PERSON,
    Claim,
    Decision,
    Group,
    Link,
    Situation,
    decide,
    dormant,
    identified,
    personal_line,
    stale,
)
from services.identity.reasons import reason_code, reason_text
from services.identity.rules import Identifier, TenantRules
from services.identity.state import IdentityState


def resolve_in(
    state: IdentityState,
    normalised: Normalised,
    evidence: Evidence,
    rules: TenantRules,
    preferred: PreferredName,
    fast: bool = True,
) -> ResolvedCustomer:
    """With `fast`, a touchpoint that changes nothing is answered by `known.quiet_decision`."""
    assert evidence.event_id, "a resolution needs the touchpoint event that evidences it"
    filing = state.filing(evidence.event_id)
    if filing is not None:
        return ResolvedCustomer(
            customer_id=state.canonical(filing.home_id),
            home_id=filing.home_id,
            replayed=True,
            rejected=normalised.rejected,
        )
    _settle_readings(state, normalised, evidence, rules)
    written = _wrote_it_before(state, normalised, evidence.at, rules)
    if written is not None and not normalised.identifiers:
        home = Decision(home_id=written.holders[0], register=False)
        return _record(state, home, "", normalised, evidence, rules)
    # A name on the touchpoint may say now that a slip of a held email, registered apart, is
    # its holder's (`policy._merge_slips`): such a touchpoint is not quiet.
    held_slips = _held_slips(state, normalised, evidence.name)
    quiet = (
        quiet_decision(state, normalised, evidence.at, rules)
        if fast and not written and not held_slips
        else None
    )
    if quiet is not None:  # the decision `decide` would make, changing nothing else
        return _record(state, quiet, "", normalised, evidence, rules)
    # A national number its writer is taken to hold (`_wrote_it_before`): decided as if it had
    # come in full first and the writer held the reading; nothing is recorded of the reading.
    claims = tuple(state.claim(i) for i in normalised.identifiers) + ((written,) if written else ())
    slips = _slips(state, claims) | held_slips
    groups = {h: state.group(h) for claim in claims for h in claim.holders}
    groups |= {h: state.group(h) for known in slips.values() for c in known for h in c.holders}
    if written is not None:
        groups = _holding(groups, written)
    claims = tuple(_with_successors(state, c, groups, rules) for c in claims)
    # Those who presented a device count toward whom it is shared by; never merged or kept apart.
    presenters = {p: state.group(p) for c in claims for p in c.presented_by if p not in groups}
    situation = Situation(
        claims=claims,
        groups=groups | presenters,
        new_customer_id=PROVISIONAL_ID,
        kept_apart=state.kept_apart(groups),
        at=evidence.at,
        profiles=frozenset(h for h in groups if _is_profile(state, h, rules)),
        name=evidence.name,
        slips=slips,
    )
    decision = decide(situation, rules)
    seed = ""
    if decision.register:
        # Named only now: most touchpoints register nobody. Nothing has changed since the claims
        # were read, so this is the decision made with the name from the start.
        linked = frozenset(link.identifier for link in decision.links)
        seed = new_customer_seed(state, claims, rules, evidence.event_id, linked)
        name = new_customer_name(state, preferred, seed)
        decision = decide(replace(situation, new_customer_id=name), rules)
    if written is not None:
        decision = _without(decision, written.identifier)
    return _record(state, decision, seed, normalised, evidence, rules)


def _holding(groups: dict[str, Group], written: Claim) -> dict[str, Group]:
    """The groups, the writer's holding the reading it is taken to hold."""
    [writer] = written.holders
    canonical = groups[writer].canonical_id
    return {
        h: replace(g, identifiers=g.identifiers | {written.identifier})
        if g.canonical_id == canonical
        else g
        for h, g in groups.items()
    }


def _without(decision: Decision, reading: Identifier) -> Decision:
    """The decision, recording nothing of a reading its writer was only taken to hold: a merge's
    or a proposal's reason names the number by its national digits (`phone=3169513292`), not as
    that reading (nobody holds it, and it may not be the number meant)."""
    national = Identifier(reading.kind, str(_national_digits(reading.value)))

    def named(reason: str) -> str:
        coded = reason_code(reason)
        if coded is None or coded[1].get("identifier") != str(reading):
            return reason
        return reason_text(coded[0], **(coded[1] | {"identifier": str(national)}))

    return replace(
        decision,
        merges=tuple(replace(m, reason=named(m.reason)) for m in decision.merges),
        proposals=tuple(
            replace(
                p,
                reason=named(p.reason),
                identifiers=tuple(national if i == reading else i for i in p.identifiers),
            )
            for p in decision.proposals
        ),
        links=tuple(link for link in decision.links if link.identifier != reading),
        saturate=tuple(i for i in decision.saturate if i != reading),
        skipped=tuple(skip for skip in decision.skipped if skip.identifier != reading),
        reassign=tuple(r for r in decision.reassign if r.identifier != reading),
        confirm=tuple(c for c in decision.confirm if c[0] != reading),
        present=tuple(p for p in decision.present if p[0] != reading),
    )


def _settle_readings(
    state: IdentityState, normalised: Normalised, evidence: Evidence, rules: TenantRules
) -> None:
    """A number the touchpoint carries in full that nobody holds or held, which one customer
    wrote before without its country code (`316 951 3292`, Colombian or Mexican, when no reading
    was held: `IdentifierIndex.ReadNationally`), is that customer's (`_writer`): linked to them
    before the touchpoint is decided, used when it was written, so the decision finds it held as
    if it had been read right the first time. Only when the touchpoint's other identifiers are
    that customer's group's, or devices nobody holds (`_agrees`): a guess never joins an
    identifier of somebody else, nor a new one, to a customer."""
    for identifier in normalised.identifiers:
        if identifier.kind != "phone":
            continue
        index = state.index(identifier)
        if index is None or not index.read_nationally:
            continue
        writer = _writer(state, index, identifier, evidence.at, rules)
        if writer is None or not _agrees(state, normalised, identifier, writer, rules):
            continue
        changes.link(state, writer, Link(identifier, "national_reading"), evidence)
        written_at = index.read_nationally[writer][0]
        if written_at and rules.rule_for(identifier).reassign_after_days:
            changes.confirm(state, identifier, writer, replace(evidence, at=written_at))


def _wrote_it_before(
    state: IdentityState, normalised: Normalised, at: int, rules: TenantRules
) -> Claim | None:
    """A national mobile number the touchpoint carries (`316 951 3292`, Colombian or Mexican,
    no reading held), as a claim of the reading held by the customer who wrote the number before
    (`_writer`, the one `_settle_readings` would give the number in full to): when no erasure
    touches their group and the writing is not from longer after this touchpoint than a mobile
    stays its holder's (a touchpoint that happened earlier can reach the filing stage later; a
    writing from longer before is `_writer`'s: dormant or stale). Had the number come in full first, each touchpoint with it
    written nationally would have been read as the held reading (`with_known_reading`) and
    decided so; without this, each became a customer of its own (or of what else it carried),
    and the number in full could go to none of them (written by several groups). Not a landline
    (anyone at home writes it). None when there is no such number or writer."""
    found = [readings for r in normalised.rejected if (readings := ambiguous_readings(r, rules))]
    if len(found) != 1 or not all(rules.rule_for(r).vouches for r in found[0]):
        return None
    readings = found[0]
    if not all(_untouched(state, r) for r in readings):
        return None
    index = state.index(readings[0])
    if index is None or not index.read_nationally:
        return None
    writer = _writer(state, index, readings[0], at, rules)
    if writer is None:
        return None
    group = state.group(writer)
    if any(erasure_touches(state, m) for m in group.members):
        return None
    if (
        normalised.identifiers
        and all(rules.rule_for(i).device_profile for i in normalised.identifiers)
        and not identified(group.identifiers, rules)
    ):
        # Only a browser (a kiosk) beside it, and the writer known by nothing else: linked, the
        # device would make the writer its profile, which the next person on it absorbs. The
        # touchpoint goes to the device's profile, as when the device came first.
        return None
    written_at = index.read_nationally[writer][0]
    days = rules.rule_for(readings[0]).reassign_after_days
    if written_at and at and days and written_at - at > days * DAY_MICROS:
        return None
    confirmed = {writer: written_at} if written_at else {}
    return Claim(readings[0], holders=(writer,), confirmed=confirmed)


def _writer(
    state: IdentityState,
    index: IdentifierIndex,
    identifier: Identifier,
    at: int,
    rules: TenantRules,
) -> str | None:
    """The customer who wrote the number, when it is theirs to take: nobody holds, held, erased
    or shares it; every customer who wrote it is in one group and none is erased; the one who
    wrote it last (who gets it: a split keeps it theirs) is no device's profile and holds no
    number with its national digits, nor as many personal lines as a person uses (a third would
    make a hub of its email: `policy._is_hub`); none of its other readings was held, erased or
    released since (one was the number meant); and, read at the time it was written, the number
    is neither dormant nor stale now (`policy.dormant`, `policy.stale`: unused longer than a
    mobile stays its holder's, or than a moved-on one while the writer uses a newer number)."""
    writers = list(index.read_nationally)
    if len(writers) >= MAX_READERS or not _untouched(state, identifier):
        return None
    if any(erased(state, w) for w in writers) or len({state.canonical(w) for w in writers}) != 1:
        return None
    writer = max(reversed(writers), key=lambda w: index.read_nationally[w][0])
    written_at, readings = index.read_nationally[writer]
    if _an_example(readings, rules):
        return None  # a form's or guide's example, typed for someone who gave no number
    if any(
        v != identifier.value and not _untouched(state, Identifier("phone", v)) for v in readings
    ):
        return None
    if _is_profile(state, writer, rules) or _holds_digits(state, writer, identifier):
        return None
    group = state.group(writer)
    if sum(personal_line(i, rules) for i in group.identifiers) >= PERSONAL_LINES_PER_PERSON:
        return None
    # Held since it was written, would `decide` find it dormant or stale now?
    held = Claim(
        identifier, holders=(writer,), confirmed={writer: written_at} if written_at else {}
    )
    held = _with_successors(state, held, {writer: group}, rules)
    now = Situation(claims=(held,), groups={writer: group}, new_customer_id=PROVISIONAL_ID, at=at)
    if dormant(held, now, rules) or stale(held, now, rules):
        return None
    return writer


def _an_example(readings: tuple[str, ...], rules: TenantRules) -> bool:
    """Whether a reading of a national number is a region's example number, which the rules take
    for a placeholder (written in full it links nobody: `412 123 4567` is Venezuela's)."""
    return (
        rules.detect_placeholders
        and rules.phone_examples_are_placeholders
        and any(is_example_number(Identifier("phone", v)) for v in readings)
    )


def _untouched(state: IdentityState, identifier: Identifier) -> bool:
    """Nobody holds it, held it, or erased it, and it is not shared by too many."""
    index = state.index(identifier)
    return index is None or not (
        index.holders or index.released or index.saturated or index.suppressed
    )


def _agrees(
    state: IdentityState,
    normalised: Normalised,
    number: Identifier,
    writer: str,
    rules: TenantRules,
) -> bool:
    """Whether the touchpoint's other identifiers are the writer's group's, or devices nobody
    holds (a browser, a landline): nothing in it says it is somebody else. Or identifiers nobody
    holds, when the writer's group holds none and no erasure touches any of its members, and the
    number is one that vouches for who carries it (a mobile): a customer made only of touchpoints that carried
    the number written nationally is whoever this touchpoint's person is. Had it come first,
    those touchpoints would have been filed under its customer (`with_known_reading`): the
    touchpoints of one POST can reach the filing stage in either order. Not a home's landline
    (anyone at home writes it: it would be settled on the writer while the person took it as
    a shared line), nor a group an erasure emptied (a stranger's email would join it)."""
    group = state.canonical(writer)
    writers = state.group(writer)
    anonymous = (
        rules.rule_for(number).vouches
        and not writers.identifiers
        and not any(erasure_touches(state, m) for m in writers.members)
    )
    for identifier in normalised.identifiers:
        if identifier == number:
            continue
        claim = state.claim(identifier)
        if claim.suppressed or claim.saturated:
            return False
        if claim.holders:
            if any(state.canonical(h) != group for h in claim.holders):
                return False
        elif not (anonymous or rules.rule_for(identifier).device_profile):
            return False
    return True


def _holds_digits(state: IdentityState, customer_id: str, number: Identifier) -> bool:
    digits = _national_digits(number.value)
    return any(
        i.kind == "phone" and _national_digits(i.value) == digits
        for i in state.group(customer_id).identifiers
    )


def _national_digits(e164: str) -> int | None:
    try:
        return phonenumbers.parse(e164).national_number
    except phonenumbers.NumberParseException:
        return None


# What a touchpoint is decided with first, in place of the name a customer it registers gets:
# the policy reads `new_customer_id` only when it registers one, and whether it does depends on
# the customers holding the touchpoint's identifiers alone. So a decision that registers nobody
# is the one the name would have given, and one that does is made again with the name. (No
# customer has this id: producers' ids may not hold control characters.)
PROVISIONAL_ID = "\x00new customer"


def _slips(state: IdentityState, claims: tuple[Claim, ...]) -> dict[Identifier, tuple[Claim, ...]]:
    """For each email of the touchpoint nobody holds yet, the held emails one slip from it."""
    found = {}
    for claim in claims:
        if claim.identifier.kind == "email" and not claim.holders and not claim.suppressed:
            known = tuple(c for c in state.slips_of(claim.identifier) if c.holders)
            if known:
                found[claim.identifier] = known
    return found


def _held_slips(
    state: IdentityState, normalised: Normalised, name: str
) -> dict[Identifier, tuple[Claim, ...]]:
    """For each email of a named touchpoint that a customer holds already, the emails one slip
    from it held by customers of another group: the slip and its name, read when the slip was
    new, may have had no name on the other side then (`juan@` came before `jaun@`'s holder was
    known by one), and the same evidence must not give another answer for arriving in another
    order. None without a name: a slip with nothing to corroborate it was proposed for review
    when it was new."""
    if not name:
        return {}
    found = {}
    for identifier in normalised.identifiers:
        if identifier.kind != "email":
            continue
        claim = state.claim(identifier)
        if not claim.holders or claim.suppressed or claim.saturated:
            continue
        ours = {state.canonical(h) for h in claim.holders}
        known = tuple(
            c
            for c in state.slips_of(identifier)
            if c.holders and {state.canonical(h) for h in c.holders} - ours
        )
        if known:
            found[identifier] = known
    return found


def _is_profile(state: IdentityState, customer_id: str, rules: TenantRules) -> bool:
    """Holds device identifiers only (see `KindRule.device_profile`)."""
    links = state.customer(customer_id).links
    return bool(links) and all(rules.rule_for(i).device_profile for i in links)


def _with_successors(
    state: IdentityState, claim: Claim, groups: dict[str, Group], rules: TenantRules
) -> Claim:
    """For a reassignable identifier, when each holder's group last confirmed another value of
    its kind (the number it moved to): read only for identifiers that could be stale."""
    rule = rules.rule_for(claim.identifier)
    if not rule.reassign_after_days or not claim.confirmed:
        return claim
    successors = {}
    for holder in claim.holders:
        others = [
            i
            for i in groups[holder].identifiers
            if i.kind == claim.identifier.kind
            and i != claim.identifier
            and rules.rule_for(i).reassign_after_days
        ]
        members = groups[holder].members
        times = [t for i in others for h, t in state.claim(i).confirmed.items() if h in members]
        if times:
            successors[holder] = max(times)
    return replace(claim, successors=successors) if successors else claim


def _record(
    state: IdentityState,
    decision: Decision,
    seed: str,
    normalised: Normalised,
    evidence: Evidence,
    rules: TenantRules,
) -> ResolvedCustomer:
    if decision.register:
        reason = _registration_reason(decision)
        changes.register(state, seed, decision.home_id, reason, evidence)
    for split in decision.splits:
        survivor = state.customer(split.absorbed_id).merged_into
        if survivor is not None:
            changes.split(state, survivor, split.absorbed_id, split.reason, evidence.actor)
    for reassigned in decision.reassign:
        changes.reassign(state, reassigned, evidence)
    for link in decision.links:
        changes.link(state, decision.home_id, link, evidence)
        if evidence.at and rules.rule_for(link.identifier).reassign_after_days:
            changes.confirm(state, link.identifier, decision.home_id, evidence)
    for identifier, holder in decision.confirm:
        changes.confirm(state, identifier, holder, evidence)
    for identifier, customer_id in decision.present:
        changes.present(state, identifier, customer_id, evidence)
    for identifier in decision.saturate:
        limit = rules.rule_for(identifier).max_holders
        changes.saturate(state, identifier, limit, evidence)
        if rules.is_strong(identifier):  # a hub (see policy._is_hub): undo what it fused
            changes.split_hub_merges(state, identifier, evidence)
    for merge in decision.merges:
        changes.merge(state, merge.survivor_id, merge.absorbed_id, merge.reason, evidence.actor)
    proposed = [changes.propose(state, proposal, evidence) for proposal in decision.proposals]
    changes.record_name(state, decision.home_id, evidence)
    for skip in decision.skipped:
        if skip.reason == ERASED_SKIP:  # sealed under the erased subject: its key goes with this
            changes.present_erased(state, decision.home_id, skip.identifier, evidence)
        elif evidence.subject == subject_of([(skip.identifier.kind, skip.identifier.value)]):
            # sealed under the skipped identifier's subject: its key stays for this customer
            changes.carry_while_skipped(state, skip.identifier, decision.home_id)
    sealed_under = readings_carried(evidence.subject)
    if sealed_under is not None:
        # sealed under a national number's readings (nothing else usable): carried by this
        # customer, so that erasing the customers who carried it takes its key
        changes.carry_while_skipped(state, sealed_under, decision.home_id)
    # A national number that may be one of several: whose, unless the touchpoint went to a
    # device's profile (a kiosk's): that names the device, not who wrote the number on it.
    # A touchpoint decided beside the number its writer was taken to hold (`_wrote_it_before`)
    # and filed outside the writer's group (another account) makes a second writer: the number is
    # then settled on nobody, as a number two customers share is nobody's to read it for.
    if not _is_profile(state, decision.home_id, rules):
        for rejected in normalised.rejected:
            readings = ambiguous_readings(rejected, rules)
            if readings and all(_untouched(state, r) for r in readings):
                changes.read_nationally(state, readings, decision.home_id, evidence.at)
    assert evidence.event_id
    ignored = [f"{r.path}:{r.reason}" for r in normalised.rejected]
    state.file(
        Filing(
            state.tenant_id, evidence.event_id, decision.home_id, evidence.source, tuple(ignored)
        )
    )
    return ResolvedCustomer(
        customer_id=state.canonical(decision.home_id),
        home_id=decision.home_id,
        created=decision.register,
        linked=tuple(link.identifier for link in decision.links),
        merged=tuple(merge.absorbed_id for merge in decision.merges),
        proposed=tuple(p for p in proposed if p),
        skipped=decision.skipped,
        rejected=normalised.rejected,
        ambiguous_between=decision.ambiguous_between,
    )


def _registration_reason(decision: Decision) -> str:
    if decision.links and decision.links[0].rule == "device_profile":
        return reason_text("device_profile", identifier=str(decision.links[0].identifier))
    if decision.links:
        return reason_text("first_seen_with", kind=decision.links[0].identifier.kind)
    if decision.ambiguous_between:
        return reason_text("only_shared")
    return reason_text("no_usable_identifier")

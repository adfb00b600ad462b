"""Erasing one customer in the identity store (issue 11, step 4 of docs/erasure.md).

The filing stage meets a `customer.erased` event and asks identity, in one command, to forget who
the customer is: every identifier its group holds (the customer and every customer merged into
it) is unlinked, and suppressed (it never links anyone again, whatever is replayed) unless a
customer outside the group holds it too (a shared line or device: unlinked from this customer
only, the others keep it). The command records an `Erased` event on the canonical customer naming
the data keys to destroy: one per erased identifier's subject (`kind:value`, as the sealing
publisher names subjects) and one per member's `cem:customer:<id>` subject (a manager's alert
actions are sealed under it), each by its vault key id (an HMAC: no identifier is stored).

The keys, the warehouse rows and the count of both are the caller's (`cem.erasure`): run again
for the same erasure event (a redelivered batch), the command changes nothing and hands back the
key ids it recorded the first time, so a retry destroys the same keys. A second erasure of a
customer already erased (two requests before the first was filed) is the same: nothing changes,
and it hands back the first one's key ids and the group (`Erasure.already`) and the first one's
event (`Erasure.erasure_event_id`): its own completion is not recorded, but when the first
failed before its completion was (a dead letter), the second, which carried out the same
record, records it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.families import FILED_PREFIX
from services.identity.errors import GroupChanged
from services.identity.normalise import READINGS_KIND, readings_in
from services.identity.rules import Identifier, TenantRules
from services.identity.state import IdentityState

# (tenant id, subject) -> the vault's key id of that subject (`kernel.shredding.subject_key_id`).
KeyIdOf = Callable[[str, str], str]


@dataclass(frozen=True)
class Erasure:
    """What one erasure did in the identity store, and the keys it names."""

    customer_id: str  # the canonical customer
    members: tuple[str, ...]
    key_ids: tuple[str, ...]
    counts: dict[str, int]  # members, identifiers erased, identifiers shared (unlinked only)
    already: bool = False  # recorded before, by this erasure event or an earlier one
    completed: bool = False  # and its keys and rows were recorded gone (`complete`)
    # The erasure event the record is of: this one, or the earlier one that recorded it (whose
    # completion this one records when that one failed before it: a dead letter).
    erasure_event_id: str = ""


def subjects(erased: list[Identifier], members: list[str]) -> list[str]:
    """The sealing subjects whose keys an erasure destroys (`kernel.shredding.subject_of`'s
    `kind:value`)."""
    return [f"{i.kind}:{i.value}" for i in erased] + [
        f"customer_id:{FILED_PREFIX}{member}" for member in members
    ]


@dataclass(frozen=True)
class PlannedIdentifier:
    """One identifier an erasure of the group would take (or leave to others)."""

    member: str  # the member holding it, or that carried it again after an earlier erasure
    identifier: Identifier
    kept_for_others: bool  # a customer outside the group may need it: unlinked, key kept
    held: bool  # linked to `member`; False: erased before, carried again since
    # Its key stays: kept for others, or a customer outside the group that does not hold it had
    # a touchpoint sealed under it while resolution skipped it (a call from a home line alone).
    # Suppression is `suppressed`: not kept for others, and the group's own.
    key_kept: bool
    # Not the member's: a touchpoint of its was sealed under it while resolution skipped it (a
    # call from a home line alone). Neither unlinked nor suppressed, nor counted as erased: its
    # key goes only once an erasure of its holders suppressed it and no live customer outside
    # the group may need it (no other holder, presenter or carrier recorded).
    carried_skipped: bool

    @property
    def suppressed(self) -> bool:
        """Whether it links nobody once the group is erased (a held one: suppressed by it)."""
        return not self.kept_for_others and not self.carried_skipped

    @property
    def carried_again(self) -> bool:
        """Erased with an earlier customer, and carried again by the member since."""
        return not self.held and not self.carried_skipped


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing a customer would take, before anything is changed (the admin's preview)."""

    customer_id: str  # the canonical customer
    members: tuple[str, ...]
    identifiers: tuple[PlannedIdentifier, ...]
    joined: dict[str, str]  # member -> why it was merged into the group (not the canonical one)


def plan(state: IdentityState, customer_id: str, rules: TenantRules) -> ErasurePlan:
    """The group `erase` would erase and, for each identifier it holds or carried again, whether
    its key would go; changes nothing. `rules`: the tenant's, which say whose a number written
    without its code is (as resolution read it)."""
    canonical = state.canonical(customer_id)
    members = state.members(canonical)
    group = set(members)
    planned: list[PlannedIdentifier] = []
    joined: dict[str, str] = {}
    for member in members:
        customer = state.customer(member)
        for identifier in sorted(customer.links, key=lambda i: (i.kind, i.value)):
            planned.append(
                _planned(state, rules, member, identifier, group, held=True, carried=False)
            )
        if customer.merged_into is not None and customer.merge_in is not None:
            survivor = state.customer(customer.merged_into)
            joined[member] = survivor.merge_reasons.get(customer.merge_in, "")
    for member in members:  # erased before, carried since: sealed under the same subjects
        for identifier in state.customer(member).presented_erased:
            planned.append(
                _planned(state, rules, member, identifier, group, held=False, carried=False)
            )
    named = {p.identifier for p in planned}
    suppressing = {p.identifier for p in planned if p.held and p.suppressed}
    for member in members:  # skipped, carried: its key may be this group's alone by now
        for identifier in state.customer(member).carried_skipped:
            if identifier not in named:
                named.add(identifier)
                planned.append(
                    _planned(state, rules, member, identifier, group, False, True, suppressing)
                )
    return ErasurePlan(canonical, tuple(members), tuple(planned), joined)


def _planned(
    state: IdentityState,
    rules: TenantRules,
    member: str,
    identifier: Identifier,
    group: set[str],
    held: bool,
    carried: bool,
    suppressing: Collection[Identifier] = (),
) -> PlannedIdentifier:
    outside = bool(_others_of(state, identifier) - group)
    kept = outside or _carried_outside(state, identifier, group)
    if carried and not kept:
        # Not the group's: its key goes only once an erasure of its holders suppressed it. A
        # line nobody holds, or an email unlinked from a member, may be a stranger's, whose
        # events no record lists (not filed yet, or filed before carriers were recorded).
        kept = not _suppressed(state, rules, identifier, group, suppressing)
    return PlannedIdentifier(member, identifier, outside, held, kept, carried)


def _suppressed(
    state: IdentityState,
    rules: TenantRules,
    identifier: Identifier,
    group: set[str],
    suppressing: Collection[Identifier],
) -> bool:
    """Whether a carried identifier's subject is the erased people's by now: suppressed by an
    erasure of its holders. A national number's readings (`phone_readings`), held by nobody,
    are once one of the readings is, before or by this erasure (`suppressing`: what this one
    suppresses), and no live customer outside the group holds, held, presented or carried
    another reading: the number was an erased person's (her calls came from it in full), and
    a touchpoint of someone else's with the same digits, on the log and not filed yet, is not
    more likely than one from an erased person's line (docs/erasure.md)."""
    if identifier.kind != READINGS_KIND:
        return _index_suppressed(state, identifier)
    readings = readings_in(identifier)
    if any(_others_of(state, r) - group or _carried_outside(state, r, group) for r in readings):
        return False
    # A line's writers are not taken to hold it (anyone at home writes it): only a number's
    # whose every reading vouches for who carries it, by the tenant's rules, as resolution
    # decides (`resolution._wrote_it_before`).
    mobile = all(rules.rule_for(r).vouches for r in readings)
    return any(
        r in suppressing or _index_suppressed(state, r) or (mobile and _written_by(state, r, group))
        for r in readings
    )


def _written_by(state: IdentityState, reading: Identifier, group: set[str]) -> bool:
    """Whether the erased group wrote the number nationally, and nobody else alive: its touchpoints
    with the number alone are filed under the one who wrote it (`resolution._wrote_it_before`),
    as they would be under the holder of a reading, so the number is the erased person's."""
    index = state.index(reading)
    writers = set(index.read_nationally) if index is not None else set()
    return bool(writers & group) and all(w in group or erased(state, w) for w in writers)


def _index_suppressed(state: IdentityState, identifier: Identifier) -> bool:
    index = state.index(identifier)
    return index is not None and index.suppressed


def erase(
    state: IdentityState,
    customer_id: str,
    reason: str,
    actor: str,
    erasure_event_id: str,
    key_id_of: KeyIdOf,
    rules: TenantRules,
    expected: Sequence[str] | None = None,
) -> Erasure:
    """Unlink (and suppress, unless shared outside the group) every identifier of the
    customer's group, drop the names every member recorded, and record the erasure on its
    canonical customer. The identifiers erased before that the group's touchpoints carried
    since (a subject who came back with the same email: `Customer.presented_erased`) are
    named too: their subjects have a new key, which goes unless a customer outside the group
    may still need it. What goes is `plan`'s, so a preview shows what this does. `expected`: the
    group as the admin confirmed it (the preview's members); when the group is not exactly those
    customers now, `GroupChanged` and nothing changes (checked here, where the erasure is
    carried out, so a merge or split between the request and its filing is caught too)."""
    earlier = _recorded_as(state, customer_id, erasure_event_id)
    if earlier is not None:
        # This very erasure, run again (redelivered), after its group was merged into a live
        # customer since too: it took its own group then, and takes nobody else now.
        return _done(earlier[0], [earlier[0]], earlier[1])
    canonical = state.canonical(customer_id)
    record = state.customer(canonical).erasure
    if record is not None:
        if customer_id in merged_since(state, customer_id):
            # Asked for a live customer that a merge took into an erased group after the
            # request (the route answers 409 `merged_into_erased` when it comes first): that
            # erasure did not take it, and this one may not pass for done. Refused, as a group
            # changed since its confirmation is: split it off and ask again.
            members = state.members(canonical)
            raise GroupChanged(list(expected or [customer_id]), members)
        # Run again for the same event, or a second erasure asked before the first was filed
        # (both passed the route's 409): the first one's record and keys stand. Recording the
        # second would replace its key ids with the few a customer without identifiers has.
        return _done(canonical, state.members(canonical), record)
    planned = plan(state, canonical, rules)
    members = list(planned.members)
    if expected is not None and sorted(set(expected)) != sorted(members):
        raise GroupChanged(list(expected), members)
    for item in (p for p in planned.identifiers if p.held):
        identifier, erased_here = item.identifier, item.suppressed
        state.customer(item.member).unlink(
            kind=identifier.kind,
            value=identifier.value,
            reason=reason,
            actor=actor,
            erased=erased_here,
        )
        index = state.index_or_new(identifier)
        index.release(customer_id=item.member, reason=reason, actor=actor)
        if erased_here and not index.suppressed:
            index.suppress(reason=reason, actor=actor)
    # An identifier two members hold (or one holds and another carried) is counted once.
    ours = [p for p in planned.identifiers if not p.carried_skipped]
    erased = list(dict.fromkeys(p.identifier for p in ours if not p.kept_for_others))
    shared = [
        i for i in dict.fromkeys(p.identifier for p in ours if p.kept_for_others) if i not in erased
    ]
    for member in members:  # the canonical one's names go with its `Erased`
        customer = state.customer(member)
        if member != canonical and customer.names:
            customer.forget_names(erasure_event_id=erasure_event_id)
    tenant_id = state.tenant_id
    keyed = list(dict.fromkeys(p.identifier for p in planned.identifiers if not p.key_kept))
    key_ids = list(dict.fromkeys(key_id_of(tenant_id, s) for s in subjects(keyed, members)))
    counts = {"members": len(members), "identifiers": len(erased), "shared": len(shared)}
    state.customer(canonical).erase(
        reason=reason,
        actor=actor,
        erasure_event_id=erasure_event_id,
        key_ids=key_ids,
        counts=counts,
        members=tuple(members),
    )
    return Erasure(
        canonical, tuple(members), tuple(key_ids), counts, erasure_event_id=erasure_event_id
    )


def _others_of(state: IdentityState, identifier: Identifier) -> set[str]:
    """Every customer whose events may be sealed under the identifier's subject: its holders,
    those it was released from (a recycled mobile's earlier owner), those that presented it
    without holding it, and those whose touchpoints carried it once it was erased. One outside
    the group keeps the key (the identifier is shared), unless that customer was erased itself:
    its events under the subject must not outlive both."""
    claim = state.claim(identifier)
    index = state.index(identifier)
    carried = index.carried_after_erasure if index is not None else []
    others = {*claim.holders, *claim.released, *claim.presented_by, *carried}
    return {c for c in others if not erased(state, c)}


def _carried_outside(state: IdentityState, identifier: Identifier, group: set[str]) -> bool:
    """Whether a live customer outside the group had a touchpoint sealed under the identifier's
    subject while resolution skipped it (`IdentifierIndex.CarriedWhileSkipped`), or more did
    than the index keeps: its key must stay for their events."""
    index = state.index(identifier)
    if index is None:
        return False
    if index.carriers_overflowed:
        return True
    return any(c not in group and not erased(state, c) for c in index.carried_while_skipped)


def erased(state: IdentityState, customer_id: str) -> bool:
    """Whether the customer was erased: named in the group an erasure recorded on it or on a
    customer it was merged into (a record made before groups were names no group: only the
    customer it is on). A customer merged into an erased one since is not: its own events still
    need their keys; one erased and merged into another erased since still is."""
    return any(
        customer_id in recorded or (not recorded and holder == customer_id)
        for holder, recorded in _erasures_up(state, customer_id)
    )


def merged_since(state: IdentityState, customer_id: str) -> list[str]:
    """The members of the customer's erased group that the erasure did not take: customers
    merged into it afterwards (by mistake, or on a candidate proposed before), still live, their
    data readable: asked to erase one, the route answers 409 `merged_into_erased`; they are split
    off (allowed: `erased_together` is false for them) and erased on their own. Empty when the
    group was never erased."""
    canonical = state.canonical(customer_id)
    record = state.customer(canonical).erasure
    if record is None or not recorded_members(record):
        # never erased, or erased before groups were recorded: nobody can be told from a member
        # then, and a split below it is refused (`erased_together`)
        return []
    return [m for m in state.members(canonical) if not erased(state, m)]


def erasure_touches(state: IdentityState, customer_id: str) -> bool:
    """Whether the customer was erased (`erased`) or stands in a group an erasure is recorded on
    (a live customer merged into an erased one since): a merge proposed before then would join
    an erased group, or an erased member, on the strength of evidence the erasure took."""
    return erased(state, customer_id) or erasure_of(state, customer_id) is not None


def erased_together(state: IdentityState, first_id: str, second_id: str) -> bool:
    """Whether one erasure named both customers in its group (recorded on a customer up the
    second's `merged_into` chain): splitting them would leave one erased by nothing. A record
    made before groups were names none: any split below it is refused."""
    return any(
        not recorded or (first_id in recorded and second_id in recorded)
        for _, recorded in _erasures_up(state, second_id)
    )


def _recorded_as(
    state: IdentityState, customer_id: str, erasure_event_id: str
) -> tuple[str, dict[str, Any]] | None:
    """The customer up the merge chain this erasure event is recorded on, and its record."""
    for holder, _ in _erasures_up(state, customer_id):
        record = state.customer(holder).erasure
        if record is not None and record["erasure_event_id"] == erasure_event_id:
            return holder, record
    return None


def _erasures_up(state: IdentityState, customer_id: str) -> Iterator[tuple[str, list[str]]]:
    """Each erasure recorded on the customer or on one up its `merged_into` chain: the customer
    it is on, and the group it names (empty for a record made before groups were)."""
    current: str | None = customer_id
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        customer = state.customer(current)
        if customer.erasure is not None:
            yield current, recorded_members(customer.erasure)
        current = customer.merged_into


def complete(
    state: IdentityState, customer_id: str, erasure_event_id: str, counts: dict[str, int]
) -> None:
    """Record what the keys and the warehouse lost (once per erasure event), on the customer the
    erasure is recorded on: the group's canonical one then, up the merge chain from it now (the
    same erasure run again after its group was merged into a live customer, `erase`)."""
    recorded = _recorded_as(state, customer_id, erasure_event_id)
    if recorded is not None and not recorded[1]["completed"]:
        state.customer(recorded[0]).complete_erasure(
            erasure_event_id=erasure_event_id, counts=counts
        )


def record_rows(
    state: IdentityState, customer_id: str, erasure_event_id: str, counts: dict[str, int]
) -> None:
    """Record the warehouse rows an erasure's `erased-rows` group deleted (later than the keys,
    in another process or thread: `cem.erasure.CustomerEraser.delete_rows`) on the customer the
    erasure was filed under, read as it is (not through a merge since). Only for that erasure,
    once its keys are recorded gone (rows recorded on a record whose keys were not would read as
    a finished erasure), and once: the group reading the erasure again finds nothing left."""
    customer = state.customer(customer_id)
    record = customer.erasure
    if record is None or record["erasure_event_id"] != erasure_event_id:
        return
    if record["completed"] is None or record.get("rows_deleted") is not None:
        return
    customer.record_erased_rows(erasure_event_id=erasure_event_id, counts=counts)


def recorded_on(state: IdentityState, customer_id: str) -> dict[str, Any] | None:
    """The erasure recorded on the customer itself (the canonical one when it was erased), not
    through whatever it was merged into since; None if none."""
    return state.customer(customer_id).erasure


def removed(record: dict[str, Any]) -> dict[str, int] | None:
    """What an erasure removed: the keys (and the rows when the filing stage deleted them),
    then the rows deleted apart; None until its keys are gone."""
    completed = record["completed"]
    if completed is None:
        return None
    return {**completed, **(record.get("rows_deleted") or {})}


def _done(canonical: str, members: list[str], record: dict[str, Any]) -> Erasure:
    return Erasure(
        canonical,
        tuple(recorded_members(record) or members),
        tuple(record["key_ids"]),
        dict(record["counts"]),
        already=True,
        completed=record["completed"] is not None,
        erasure_event_id=str(record["erasure_event_id"]),
    )


def recorded_members(record: dict[str, Any]) -> list[str]:
    """The group an erasure recorded (empty for one recorded before groups were: read today's)."""
    return list(record.get("members") or ())


def erasure_of(state: IdentityState, customer_id: str) -> dict[str, Any] | None:
    """The erasure recorded on the customer's group (its canonical customer), None if none."""
    return state.customer(state.canonical(customer_id)).erasure

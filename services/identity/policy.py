"""Which customer an event belongs to, and what it changes: the resolution policy (pure).

The resolver loads what the store knows about the event's identifiers (`Situation`) and applies
the `Decision`. Everything here is a function of its inputs, so every rule is testable without a
store and two replicas given the same state decide the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from rapidfuzz.distance import OSA

from services.identity.keyboard import SEPARATORS, keyboard_slip
from services.identity.mailbox_names import one_persons_mailboxes
from services.identity.person_names import (
    agree,
    agree_with_surname,
    fits_mailbox,
    is_full,
    names_agree,
    same_full_name,
    spells_whole,
)
from services.identity.reasons import reason_text
from services.identity.rules import Identifier, TenantRules
from services.identity.slips import MIN_TYPO_LOCAL

DIGITS = "0123456789"  # a local part's number at its end (a year): set aside to read its words


@dataclass(frozen=True)
class Claim:
    """What the identifier index knows about one identifier of the event."""

    identifier: Identifier
    holders: tuple[str, ...] = ()  # customers holding it, in claim order
    released: frozenset[str] = frozenset()  # customers it was unlinked from: never relinked to them
    saturated: bool = False  # shared by too many customers: links nobody any more
    suppressed: bool = False  # erased: links nobody, ever
    # holder -> when its use was last confirmed (epoch microseconds), for reassignable kinds
    confirmed: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # holder -> when its group last confirmed another value of this kind (its newer number)
    successors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # customers that presented it without holding it (a device beside somebody's mobile), in order
    presented_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """A canonical customer with every customer merged into it, as the policy sees it."""

    canonical_id: str
    members: frozenset[str]
    identifiers: frozenset[Identifier]
    names: frozenset[str] = frozenset()  # its members' recorded names (person_names.py)


@dataclass(frozen=True)
class Situation:
    claims: tuple[Claim, ...]
    groups: Mapping[str, Group]  # holder (or presenter) id -> the group it belongs to now
    new_customer_id: str  # the id a customer registered by this event gets
    kept_apart: frozenset[frozenset[str]] = (
        frozenset()
    )  # canonical pairs never merged automatically
    at: int = 0  # when the touchpoint happened (epoch microseconds); 0: unknown, nothing is stale
    # Holders that are device profiles: customers holding only device identifiers (see
    # `KindRule.device_profile`), whether on their own or merged into a person.
    profiles: frozenset[str] = frozenset()
    name: str = ""  # the person's name the touchpoint carries, normalised; "" when none
    # For each email of the touchpoint nobody holds yet, the held emails one slip from it
    # (`one_slip_apart`, found by `slips.slip_keys`), in order of value; for a named
    # touchpoint's email held already, those held by customers of another group.
    slips: Mapping[Identifier, tuple[Claim, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )


# Why an identifier was linked (`Link.rule`): one of these codes, some followed by `:` and the
# identifier kinds that decided (`seen_with:email`, `typo_of:email with phone`). The console names
# each code in the reader's language, so a new rule needs its name there too.
LINK_RULES = (
    "first_seen",
    "seen_with",
    "vouched_by",
    "completed_by",
    "typo_of",
    "second_mailbox",
    "same_name",
    "shared_holder",
    "reassigned",
    "device_profile",
    "national_reading",
)


@dataclass(frozen=True)
class Link:
    identifier: Identifier
    rule: str


@dataclass(frozen=True)
class Skip:
    identifier: Identifier
    reason: str


@dataclass(frozen=True)
class Merge:
    survivor_id: str
    absorbed_id: str
    reason: str


@dataclass(frozen=True)
class Split:
    """Take a device profile out of the customer it was merged into: the device turned out to be
    used by another customer too, so its anonymous touchpoints are nobody's in particular."""

    absorbed_id: str
    reason: str


@dataclass(frozen=True)
class Reassign:
    """A number its holders replaced and stopped using long ago, now presented by someone else:
    theirs from now on (a recycled mobile number). See `stale`."""

    identifier: Identifier
    released_from: tuple[str, ...]


@dataclass(frozen=True)
class Proposal:
    first_id: str
    second_id: str
    reason: str
    identifiers: tuple[Identifier, ...]


@dataclass(frozen=True)
class Decision:
    home_id: str  # the customer the evidence is filed under
    register: bool  # home_id is a new customer
    links: tuple[Link, ...] = ()
    saturate: tuple[Identifier, ...] = ()
    merges: tuple[Merge, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    skipped: tuple[Skip, ...] = ()
    ambiguous_between: tuple[str, ...] = ()
    reassign: tuple[Reassign, ...] = ()
    confirm: tuple[tuple[Identifier, str], ...] = ()  # (identifier, holder) used again now
    splits: tuple[Split, ...] = ()
    present: tuple[tuple[Identifier, str], ...] = ()  # (device, customer) presented, not linked


@dataclass
class _Draft:
    """The decision being built; members and identifiers grow as customers merge into the home."""

    home: str
    register: bool
    anchor: str
    members: set[str]
    identifiers: set[Identifier]
    names: set[str] = field(default_factory=set)  # the home's recorded names and the event's
    # The names that are the home's own: recorded before this event for a customer it already
    # had (the event's name may be someone else's: a daughter's checkout on her mother's
    # account), the event's for a customer the event registers.
    own_names: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)
    saturate: list[Identifier] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # canonical ids already merged or proposed
    reassign: list[Reassign] = field(default_factory=list)
    confirm: list[tuple[Identifier, str]] = field(default_factory=list)
    splits: list[Split] = field(default_factory=list)
    present: list[tuple[Identifier, str]] = field(default_factory=list)


def rank(claims: Iterable[Claim], rules: TenantRules) -> list[Claim]:
    """Highest-priority identifiers first; ties in a fixed order so every replica agrees."""

    def key(claim: Claim) -> tuple[int, str, str]:
        rule = rules.rule_for(claim.identifier)
        return -rule.priority, claim.identifier.kind, claim.identifier.value

    return sorted(claims, key=key)


def unique_conflicts(
    ours: Iterable[Identifier], theirs: Iterable[Identifier], rules: TenantRules
) -> list[str]:
    """Unique kinds for which the two sides hold different values."""
    ours_by_kind = _values_by_kind(ours, rules, unique_only=True)
    theirs_by_kind = _values_by_kind(theirs, rules, unique_only=True)
    return sorted(
        kind
        for kind, values in ours_by_kind.items()
        if kind in theirs_by_kind and values != theirs_by_kind[kind]
    )


def _values_by_kind(
    identifiers: Iterable[Identifier], rules: TenantRules, unique_only: bool = False
) -> dict[str, set[str]]:
    """Values of strong kinds (or of unique kinds only) by kind."""
    found: dict[str, set[str]] = {}
    for identifier in identifiers:
        rule = rules.rule_for(identifier)
        if rule.unique if unique_only else rule.strong:
            found.setdefault(identifier.kind, set()).add(identifier.value)
    return found


DAY_MICROS = 86_400_000_000
# A holder's use is recorded again only this long after the last record: bounds the writes.
CONFIRM_EVERY_MICROS = 7 * DAY_MICROS


def dormant(claim: Claim, situation: Situation, rules: TenantRules) -> bool:
    """Whether no holder of a reassignable identifier (a mobile number) confirmed using it for
    longer than the rule allows: it may have been given to someone else, so it no longer joins
    two customers holding different emails (it still completes one and carries its calls)."""
    return _unused_for(claim, situation, rules.rule_for(claim.identifier).reassign_after_days)


def idle(claim: Claim, situation: Situation, rules: TenantRules) -> bool:
    """Whether no holder of a reassignable identifier confirmed using it for the shorter of its
    rule's windows (`moved_on_after_days`, `reassign_after_days`): it may be stale (`stale`).
    The shorter window holds even for a call from the number alone: filing a recycled number's
    new owner under its former holder would show a stranger's calls in that history, while the
    opposite error (a rarely used second mobile's call filed apart) only splits one person."""
    rule = rules.rule_for(claim.identifier)
    windows = [d for d in (rule.moved_on_after_days, rule.reassign_after_days) if d]
    return _unused_for(claim, situation, min(windows, default=None))


def _unused_for(claim: Claim, situation: Situation, days: int | None) -> bool:
    """Whether every holder of the claim confirmed using it, and none within `days` (None: no
    window, never unused)."""
    if not days or not situation.at or not claim.holders:
        return False
    before = situation.at - days * DAY_MICROS
    return all(0 <= claim.confirmed.get(h, -1) < before for h in claim.holders)


def stale(claim: Claim, situation: Situation, rules: TenantRules) -> bool:
    """An idle identifier whose every holder has since confirmed another value of its kind (a
    new number): it belongs to none of them any more. It anchors, merges and vouches for nobody,
    and passes to the next customer who presents it (a number the carrier gave to someone else:
    their calls are not the old holder's)."""
    return idle(claim, situation, rules) and all(
        claim.successors.get(h, -1) > claim.confirmed[h] for h in claim.holders
    )


def _extends(claim: Claim, situation: Situation, rules: TenantRules) -> bool:
    return rules.rule_for(claim.identifier).extends and not dormant(claim, situation, rules)


def decide(situation: Situation, rules: TenantRules) -> Decision:
    usable, skipped = _usable(situation.claims, situation, rules)
    usable, hubs = _without_hubs(usable, situation, rules)
    ranked = rank(usable, rules)
    skipped += [Skip(h, HUB_REASON) for h in hubs]
    if lines_alone([c.identifier for c in ranked], rules):
        caller = _line_caller(ranked, situation, rules)
        if caller is not None:
            return Decision(
                home_id=caller,
                register=False,
                saturate=tuple(hubs),
                skipped=tuple(skipped),
            )
        return _line_alone(ranked, skipped, hubs, situation)
    draft = _start(ranked, situation, rules)
    draft.skipped += skipped
    draft.saturate += hubs
    _merge_or_propose(draft, ranked, situation, rules)
    _link(draft, ranked, situation, rules)
    _confirm(draft, ranked, situation, rules)
    _note_users_of_shared(draft, situation, rules)
    one_off = draft.register and not draft.links
    return Decision(
        home_id=draft.home,
        register=draft.register,
        links=tuple(draft.links),
        saturate=tuple(draft.saturate),
        merges=tuple(draft.merges),
        # A customer that holds nothing cannot be the same person as anyone: nothing to review.
        proposals=() if one_off else tuple(draft.proposals),
        skipped=tuple(draft.skipped),
        ambiguous_between=tuple(draft.ambiguous) if one_off else (),
        reassign=tuple(draft.reassign),
        confirm=tuple(draft.confirm),
        splits=tuple(draft.splits),
        present=tuple(draft.present),
    )


LINE_ALONE_REASON = "a household's line alone: it names a home, not a person"


def household_line(identifier: Identifier, rules: TenantRules) -> bool:
    """A fixed line (by the numbering plan): it rings in a home or an office, where several
    people answer it and call from it."""
    return identifier.family == "phone" and rules.rule_for(identifier).device_profile


def lines_alone(identifiers: Sequence[Identifier], rules: TenantRules) -> bool:
    """Only fixed lines, for a tenant leaving what a shared identifier alone carries unattributed
    (one filing shared ones under their latest holder accepts a household's calls on one)."""
    return (
        bool(identifiers)
        and rules.shared_identifier == "unresolved"
        and all(household_line(i, rules) for i in identifiers)
    )


def _line_alone(
    ranked: list[Claim], skipped: list[Skip], hubs: list[Identifier], situation: Situation
) -> Decision:
    """A touchpoint carrying only fixed lines (a call from a home's landline, a receipt with it):
    whoever called could be anyone living there, so it is filed under a customer of its own and
    joins nobody, neither a person who gave the line nor the line's other calls (grouping those
    made one customer of a household: its members would see each other's calls). The line still
    joins the people who give it beside their own identifiers (see `_link`)."""
    lines = [Skip(c.identifier, LINE_ALONE_REASON) for c in ranked]
    holders = sorted({g for c in ranked for g in _groups_of(c.holders, situation)})
    return Decision(
        home_id=situation.new_customer_id,
        register=True,
        saturate=tuple(hubs),
        skipped=tuple(skipped + lines),
        ambiguous_between=tuple(holders) if len(holders) > 1 else (),
    )


def _line_caller(ranked: list[Claim], situation: Situation, rules: TenantRules) -> str | None:
    """The customer a call from a household's line alone is filed under when the call carries
    a full name (`is_full`) and exactly one of the line's customers is known by it
    (`same_full_name`), no other by a name that agrees with it: the caller said who they are.
    None otherwise (`_line_alone`)."""
    name, surnames = situation.name, rules.name_surnames
    if not (name and surnames and is_full(name, surnames)):
        return None
    found: dict[str, str] = {}  # canonical id -> a member holding the line
    for claim in ranked:
        for member in claim.holders:
            found.setdefault(_canonical(member, situation), member)
    groups = _by_canonical(situation)
    named = [
        c
        for c in sorted(found)
        if c in groups and same_full_name({name}, groups[c].names, surnames)
    ]
    if len(named) != 1:
        return None
    others = [groups[c] for c in found if c != named[0] and c in groups]
    if any(agree(name, theirs) for other in others for theirs in other.names):
        return None
    return found[named[0]]


# A person uses one or two mobiles at a time (a personal and a work line, or the old and the new
# number while changing): a strong identifier whose customer would need a third one is a hub.
PERSONAL_LINES_PER_PERSON = 2
# Why a suppressed identifier (erased: `IdentifierIndex.Suppressed`) is skipped.
ERASED_SKIP = "erased"
HUB_REASON = "a hub: presented by people who disagree on everything else"


def _without_hubs(
    claims: list[Claim], situation: Situation, rules: TenantRules
) -> tuple[list[Claim], list[Identifier]]:
    """The claims less the strong identifiers this touchpoint shows to be hubs (a shop's counter
    email, a placeholder nobody listed), which stop linking anybody from now on."""
    hubs = [c.identifier for c in claims if _is_hub(c, claims, situation, rules)]
    return [c for c in claims if c.identifier not in hubs], hubs


def _is_hub(claim: Claim, claims: list[Claim], situation: Situation, rules: TenantRules) -> bool:
    """A strong, non-unique identifier (an email) held by a customer, presented beside personal
    lines (mobiles) of which the customer holds none, when either such a line belongs to somebody
    else known by another value of the identifier's kind (another email: two people, not one
    person's second mailbox), or the customer would hold more personal lines than a person uses."""
    rule = rules.rule_for(claim.identifier)
    if not (rule.strong and not rule.unique and claim.holders):
        return False
    group = situation.groups[claim.holders[-1]]
    ours = {i for i in group.identifiers if personal_line(i, rules)}
    theirs = [c for c in claims if personal_line(c.identifier, rules)]
    if not theirs or any(c.identifier in ours for c in theirs):
        return False  # nothing to disagree on, or a line of the customer's own: agreement
    if len(ours | {c.identifier for c in theirs}) > PERSONAL_LINES_PER_PERSON:
        return True
    kind = claim.identifier.kind
    return bool(ours) and any(
        _holds_other(situation.groups[h], claim.identifier, kind)
        for c in theirs
        for h in c.holders
        if situation.groups[h].canonical_id != group.canonical_id
    )


def personal_line(identifier: Identifier, rules: TenantRules) -> bool:
    rule = rules.rule_for(identifier)
    return rule.vouches and not rule.device_profile


def _holds_other(group: Group, identifier: Identifier, kind: str) -> bool:
    values = {i.value for i in group.identifiers if i.kind == kind}
    return bool(values) and identifier.value not in values


def _usable(
    claims: Iterable[Claim], situation: Situation, rules: TenantRules
) -> tuple[list[Claim], list[Skip]]:
    usable, skipped = [], []
    for claim in claims:
        if claim.suppressed:
            skipped.append(Skip(claim.identifier, ERASED_SKIP))
        elif claim.saturated:
            again = _one_persons_again(claim, situation, rules)
            if again is None:
                skipped.append(Skip(claim.identifier, "shared by too many customers"))
            else:
                usable.append(again)
        else:
            usable.append(claim)
    return usable, skipped


def _one_persons_again(claim: Claim, situation: Situation, rules: TenantRules) -> Claim | None:
    """A browser or app install judged shared (saturated: customers who looked like different
    people used it) whose recorded users (`_users_of`: at least the two that made it look shared,
    no more than its rule allows) have all since been found to be one person, merged into one
    customer: it is that person's again, as a browser its own customers used is (`_shared_by`).
    As that person's it is held by their members only: the profiles that left them when it
    looked shared stand apart (kept apart from the person) and decide nothing. A split of the
    merge makes it shared again; so does anyone else using it (`_note_users_of_shared`). A kiosk
    more customers used than its rule allows stays shared for good, as does a device whose users
    were not recorded (saturated by an earlier release: one user or none on record)."""
    if not _used_by_people(claim.identifier, rules):
        return None
    users = _users_of(claim, situation)
    if not 2 <= len(users) <= rules.rule_for(claim.identifier).max_holders:
        return None
    people = _groups_of(users, situation)
    if len(people) != 1:
        return None
    person = next(iter(people))
    holders = tuple(h for h in claim.holders if situation.groups[h].canonical_id == person)
    return replace(claim, saturated=False, holders=holders)


def _users_of(claim: Claim, situation: Situation) -> set[str]:
    """The customers known as people that used a device: its holders other than device profiles
    (anonymous visits, whoever made them), and those that presented it (`_presented`)."""
    return set(_people(claim, situation)) | set(claim.presented_by)


def _start(ranked: list[Claim], situation: Situation, rules: TenantRules) -> _Draft:
    chosen = _choose_home(ranked, situation, rules)
    if isinstance(chosen, _ProfileOf):
        return _new_profile(chosen.device, chosen.person_id, situation)
    home, anchor, ambiguous = chosen
    if home is None:
        draft = _Draft(situation.new_customer_id, True, "first_seen", set(), set())
    else:
        group = situation.groups[home]
        draft = _Draft(home, False, anchor, set(group.members), set(group.identifiers))
        draft.names |= group.names
        draft.own_names |= group.names
    event_name = {situation.name} - {""}
    draft.names |= event_name
    if home is None or _names_its_mailbox(event_name, draft, rules):
        draft.own_names |= event_name
    draft.ambiguous = ambiguous
    draft.touched.add(_canonical(draft.home, situation))
    return draft


def _people(claim: Claim, situation: Situation) -> list[str]:
    """The claim's holders but device profiles (customers known by a device only)."""
    return [h for h in claim.holders if h not in situation.profiles]


def _by_canonical(situation: Situation) -> dict[str, Group]:
    """The situation's groups by their canonical ids."""
    return {g.canonical_id: g for g in situation.groups.values()}


def _mailbox_named(names: Iterable[str], email: Identifier, rules: TenantRules) -> bool:
    """An email whose mailbox is named after one of these full names (`fits_mailbox`)."""
    return email.kind == "email" and any(
        fits_mailbox(name, email.value, rules.name_surnames) for name in names
    )


def _names_its_mailbox(event_name: set[str], draft: _Draft, rules: TenantRules) -> bool:
    """An established home with no recorded name takes the event's full name as its own when an
    email of the home is named after it (`fits_mailbox`): the holder of `rgonzalez@` giving
    `Raúl González Pérez`. A name the home's mailboxes do not fit (a daughter's checkout on her
    mother's account) stays the event's."""
    if draft.own_names or not event_name:
        return False
    return any(_mailbox_named(event_name, i, rules) for i in draft.identifiers)


@dataclass(frozen=True)
class _ProfileOf:
    """Only a device of this person: file the touchpoint under a new profile of the device."""

    device: Claim
    person_id: str


def _choose_home(
    ranked: list[Claim], situation: Situation, rules: TenantRules
) -> tuple[str | None, str, list[str]] | _ProfileOf:
    """The holder of the highest-priority identifier that may carry this event, if any (with the
    rule that chose it, and who it might have been when only shared identifiers were seen)."""
    event_ids = [c.identifier for c in ranked]
    new_ids = [c.identifier for c in ranked if not c.holders]
    personal = any(not _is_device(c.identifier, rules) for c in ranked)
    ambiguous: list[str] = []
    mistyped = _mistyped_email_of(ranked, new_ids, situation, rules)
    if mistyped is not None:
        return mistyped
    for claim in ranked:
        if not claim.holders:
            continue
        if stale(claim, situation, rules):
            continue  # its holders moved on: probably someone else's number now
        device = _is_device(claim.identifier, rules)
        if device and personal:
            # A device decides whose a person's touchpoint is only when it completes its user.
            if _device_completes(claim, ranked, situation, rules):
                # Filed under the person, not the device's profile (which leaves if shared).
                person = _people(claim, situation)
                return (person or claim.holders)[-1], f"completed_by:{claim.identifier.kind}", []
            continue
        groups = _groups_of(claim.holders, situation)
        if device and _used_by_people(claim.identifier, rules):
            groups = _shared_by(claim, situation)  # one user may hold it, several use it
        if len(groups) > 1 and rules.shared_identifier == "unresolved":
            ambiguous = ambiguous or sorted(groups)
            continue
        holder = claim.holders[-1]  # the most recent claim, for identifiers shared on purpose
        group = situation.groups[holder]
        if device and holder not in situation.profiles and identified(group.identifiers, rules):
            # Only a device: its touchpoints go to a profile of their own, which joins the
            # person using the device and leaves again if somebody else turns out to use it.
            return _ProfileOf(claim, group.canonical_id)
        weak = not rules.is_strong(claim.identifier)
        if weak and new_ids and not _vouches(claim, group, new_ids, situation, rules):
            continue  # a shared line or device must not give someone a new email or number
        if unique_conflicts(event_ids, group.identifiers, rules):
            continue
        verb = "vouched_by" if weak and new_ids else "seen_with"
        return holder, f"{verb}:{claim.identifier.kind}", []
    return None, "first_seen", ambiguous


def _mistyped_email_of(
    ranked: list[Claim], new_ids: list[Identifier], situation: Situation, rules: TenantRules
) -> tuple[str, str, list[str]] | None:
    """The customer whose email a new email of the event is a slip of (one keystroke in the local
    part, same domain), when another identifier of the event, held by that customer alone (its
    device, its line), corroborates it: the touchpoint is that customer's, and links the slip."""
    emails = [i for i in new_ids if i.family == "email"]
    for claim in ranked:
        groups = _groups_of(claim.holders, situation)
        if len(groups) != 1 or stale(claim, situation, rules):
            continue
        group = situation.groups[claim.holders[-1]]
        # A home's landline does not corroborate a slip at the initial or the end (not
        # `_inside`): `iquintero@` and `mquintero@` calling from it are siblings sharing both
        # surnames. Nor does anything when the names differ (the touchpoint's and theirs).
        line = household_line(claim.identifier, rules)
        slip = _may_be_named(situation, group) and any(
            one_slip_apart(e, known) and (not line or _inside(e, known))
            for e in emails
            for known in group.identifiers
        )
        if slip and not unique_conflicts([c.identifier for c in ranked], group.identifiers, rules):
            return claim.holders[-1], f"typo_of:email with {claim.identifier.kind}", []
        if emails and _second_mailbox_on(claim, group, ranked, situation, rules):
            person = _people(claim, situation)
            why = f"second_mailbox:email on {claim.identifier.kind}"  # a kind, never a value
            return (person or claim.holders)[-1], why, []
        if new_ids and _new_details_named_alike(claim, group, ranked, situation, rules):
            person = _people(claim, situation)
            why = f"same_name:{new_ids[0].kind} on {claim.identifier.kind}"
            return (person or claim.holders)[-1], why, []
    return _slip_of_known(emails, ranked, situation, rules)


def _slip_of_known(
    emails: list[Identifier], ranked: list[Claim], situation: Situation, rules: TenantRules
) -> tuple[str, str, list[str]] | None:
    """The customer holding an email one slip from a new email of the event (`Situation.slips`:
    whichever of the two is the slip), when the event carries the name it is known by
    (`_slip_holder`: `slip_and_name`): the person's touchpoint, and the slip theirs. A slip
    with no name to corroborate it is at most a candidate for review (`_merge_slips`)."""
    ours = {situation.name} - {""}
    event = [c.identifier for c in ranked]
    for email in emails:
        for known in situation.slips.get(email, ()):
            if known.saturated or known.suppressed:
                continue
            groups = _groups_of(known.holders, situation)
            if len(groups) != 1:
                continue
            group = situation.groups[known.holders[-1]]
            if any(_groups_of(_people(c, situation), situation) - groups for c in ranked):
                # Another identifier names somebody else: it decides, and the slip's customer
                # may join it (`_merge_slips`). A device's profile (anonymous visits) is nobody
                # yet: it joins whoever the touchpoint is filed under.
                continue
            why = _slip_holder(email, known.identifier, ours, situation.name, event, group, rules)
            if why == "slip_and_name":
                person = _people(known, situation)
                return (person or known.holders)[-1], "typo_of:email with name", []
    return None


def _slip_holder(
    new: Identifier,
    known: Identifier,
    names: set[str],
    event_name: str,
    identifiers: Iterable[Identifier],
    other: Group,
    rules: TenantRules,
) -> str:
    """Whether the customer holding `known` may be the person who wrote `new`, one slip from
    it, on a touchpoint (or customer) known by `names` and `identifiers` (`event_name`: the
    name the touchpoint itself carries, or ""): the code of the reason
    (services/identity/reasons.py), `slip_and_name` (corroborated: one person) or `typing_slip`
    (a candidate for review), or "" when nothing says so.
    - Never when only a dot, hyphen or underscore differs (`_written_otherwise`), when the two
      hold different unique identifiers, or personal lines and none in common (two mobiles: two
      people, as in `_named_alike`), or when the slip touches the local part's first character
      or its end (an initial, `cnavarro@`/`pnavarro@`; a second surname's initial,
      `josegarcia@`/`josegarciap@`, a father and his son), name or not. Unnamed, its last two
      characters are kept (`_inside`); named, a letter after it is enough (`_before_the_end`:
      `mgarriso@` for `mgarrido@`).
    - `slip_and_name`: the touchpoint carries a name, both sides are known by one name
      (`person_names.agree_with_surname`: every name the other's beginning, two words at least
      on each side), one of those names is full (`is_full`: a given name and both surnames
      as the tenant's people carry them), and a name word one address spells across the slip
      is the other side's too (`_named_where_it_slips`: `José Luis Domínguez` on Marín's
      address is not Martín, whose full name spells `martin`; a review). A name tells people
      apart where a keystroke cannot (`maria@` and `mario@`); names recorded before, without
      one on the touchpoint, do not.
      With no name recorded for them, their mailbox named after the touchpoint's full name
      (`fits_mailbox`), which one of the other `names` (if any) agrees with, is that one name.
    - `typing_slip`: the slip is one a finger makes (`typing_slip`), and no name on either side
      differs from the other's: likely one person, yet the slip alone is weak evidence (nothing
      the two hold corroborates it), so a reviewer decides."""
    if _written_otherwise(new, known):
        return ""
    inside = _inside(new, known)
    if not (inside or _before_the_end(new, known)):
        return ""
    if unique_conflicts(identifiers, other.identifiers, rules):
        return ""
    if _other_lines(identifiers, other.identifiers, rules):
        return ""
    if not inside:
        # A slip just before the end (`_before_the_end`) is also where two second surnames
        # differ (`josegarciavega@`, `josegarciavera@`: Vega, Vera): only one full name, the
        # same on the touchpoint and on the holder, says one person (a review: "José García" on
        # the second merged a father and his son).
        same = event_name and same_full_name(names, other.names, rules.name_surnames)
        return "slip_and_name" if same else ""
    full = any(is_full(n, rules.name_surnames) for n in (*names, *other.names))
    if (
        event_name
        and full
        and agree_with_surname(names, other.names)
        and _named_where_it_slips(new, known, names, other.names)
    ):
        return "slip_and_name"
    # No name recorded for them, but their mailbox is named after the touchpoint's name, or after
    # a name of the home's that it agrees with (`David` on David Durán Márquez's touchpoint), and
    # the home is known by no name, or by one the touchpoint's agrees with: not a stranger's
    # name (the mother's, on her line) read for the daughter who typed.
    home_names = names - {event_name}
    agreeing = {n for n in home_names if agree(event_name, n)}
    if (
        event_name
        and not other.names
        and (agreeing or not home_names)
        and _mailbox_named({event_name} | agreeing, known, rules)
    ):
        return "slip_and_name"
    if typing_slip(new, known) and names_agree(names, other.names):
        return "typing_slip"
    return ""


def _named_where_it_slips(
    new: Identifier, known: Identifier, ours: Iterable[str], theirs: Iterable[str]
) -> bool:
    """Whether the names leave no doubt where the two addresses differ: a word of a name (either
    side's) that one address spells across the slip (`_spells_across`) is a word of a name of the
    other address's side too. Martín's `joseluis.dominguez.martin@` beside a new
    `joseluis.dominguez.marin@` on a touchpoint carrying `José Luis Domínguez`: nothing says that
    José Luis Domínguez is Martín (Marín is a surname too); carrying `José Luis Domínguez
    Martín`, it is his slip. Nor the other way round (`José Luis Domínguez Marín` on the new
    address, the customer known as `José Luis Domínguez`). A slip in a word both sides are known
    by (`teresamrenog@` of Teresa Moreno Gil, `teresamorenog@` of Teresa Moreno), or in none of
    their words, the names do not tell apart."""
    ours_words, theirs_words = _name_words(ours), _name_words(theirs)
    a, b = new.value.rpartition("@")[0], known.value.rpartition("@")[0]
    return all(
        (word in ours_words or not _spells_across(word, b, a))
        and (word in theirs_words or not _spells_across(word, a, b))
        for word in ours_words | theirs_words
    )


# Name words shorter than this (`de`, `la`) are found by chance inside other words of an address.
MIN_NAME_WORD = 3


def _name_words(names: Iterable[str]) -> set[str]:
    """The words of the names, letters only (`garcia-lopez`: `garcia`, `lopez`)."""
    words = (w for name in names for w in re.split(r"[^a-z]+", name))
    return {w for w in words if len(w) >= MIN_NAME_WORD}


def _spells_across(word: str, local: str, other: str) -> bool:
    """`local` spells `word` where it differs from `other` (one slip apart): the letters that
    differ (changed, swapped, or one more than `other`'s) are inside one occurrence of it, or
    the letter only `other` has falls between two of its letters (`santiago` in `santiagoperez`
    beside `santiaagoperez`)."""
    shortest = min(len(local), len(other))
    start = 0
    while start < shortest and local[start] == other[start]:
        start += 1
    same_end = 0
    while same_end < shortest - start and local[-1 - same_end] == other[-1 - same_end]:
        same_end += 1
    end = len(local) - same_end
    at = local.find(word)
    while at >= 0:
        if end > start and at <= start and end <= at + len(word):
            return True
        if end == start and at < start < at + len(word):
            return True
        at = local.find(word, at + 1)
    return False


def _inside(new: Identifier, known: Identifier) -> bool:
    """The two local parts keep their first character and their last two: the slip is inside.
    Digits that end both alike (a year, `77`) are set aside first: what ends the words is what
    tells a son's second surname's initial (`josegarcia77@`, `josegarciap77@`)."""
    a, b = new.value.rpartition("@")[0], known.value.rpartition("@")[0]
    a_word, b_word = a.rstrip(DIGITS), b.rstrip(DIGITS)
    if a[len(a_word) :] == b[len(b_word) :] and a_word and b_word:
        a, b = a_word, b_word
    return a[:1] == b[:1] and a[-2:] == b[-2:]


def _before_the_end(new: Identifier, known: Identifier) -> bool:
    """The two local parts keep their first character, and a letter after the slip that ends
    both words (digits at the end left aside: they are equal): `nalvarz@` for `nalvarez@`,
    `mgarriso@` for `mgarrido@`. Not a letter added, dropped or changed at the end, whatever
    letter it follows (`josegarciaa@` beside `josegarcia@`, `josegarciap7@` beside
    `josegarcia7@`: a son's second surname's initial). Taken for a slip only with a name to
    corroborate it (`_slip_holder`'s `slip_and_name`), never for review alone."""
    a, b = new.value.rpartition("@")[0], known.value.rpartition("@")[0]
    a, b = a.rstrip(DIGITS), b.rstrip(DIGITS)
    if a[:1] != b[:1]:
        return False
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    rest_a, rest_b = a[common:], b[common:]
    return bool(rest_a and rest_b) and rest_a[-1] == rest_b[-1] and rest_a[-1].isalpha()


def _written_otherwise(new: Identifier, known: Identifier) -> bool:
    """The same letters, only the dots, hyphens and underscores differ (`mariadelcarmen_molina@`,
    `mariadelcarmenmolina@`): another way to write a name, which two people of that name may
    each hold as their own mailbox (keyboard.py), not a slip."""
    a, b = new.value.rpartition("@")[0], known.value.rpartition("@")[0]
    return _letters(a) == _letters(b)


def _letters(local: str) -> str:
    return "".join(c for c in local if c not in SEPARATORS)


# A slip inside a local part at least this long, away from its ends, is a finger's, not another
# name's: shorter ones are initials and surnames (`jcano@`), where one letter is another person.
MIN_SLIP_LOCAL = 8


def typing_slip(new: Identifier, known: Identifier) -> bool:
    """Two emails `one_slip_apart` by a slip of a finger (`keyboard_slip`: a key next to the
    right one, two letters swapped, one doubled or hit with its neighbour), in local parts of
    `MIN_SLIP_LOCAL` characters at least, that keep their first character (an initial) and
    their last two (where a second surname's initial is added: `lauraiglesiasm@`)."""
    if not one_slip_apart(new, known):
        return False
    a, b = new.value.rpartition("@")[0], known.value.rpartition("@")[0]
    if min(len(a), len(b)) < MIN_SLIP_LOCAL or not _inside(new, known):
        return False
    return keyboard_slip(a, b)


def _new_details_named_alike(
    claim: Claim, group: Group, ranked: list[Claim], situation: Situation, rules: TenantRules
) -> bool:
    """The event's device is a browser used only by customers whose full name is the one the
    event carries (`_users_named`): new contact details typed on it are theirs."""
    if not _is_device(claim.identifier, rules) or claim.identifier.family == "phone":
        return False
    if any(_groups_of(c.holders, situation) - {group.canonical_id} for c in ranked):
        return False  # another identifier names somebody else: it decides
    if unique_conflicts([c.identifier for c in ranked], group.identifiers, rules):
        return False
    return _users_named({situation.name} - {""}, claim, None, situation, rules)


def _users_named(
    ours: set[str], device: Claim, home: str | None, situation: Situation, rules: TenantRules
) -> bool:
    """Every customer that used the device (holders and presenters, `_shared_by`), besides
    `home`, has the same full name as `ours` (the touchpoint's side), and no name of theirs
    differs from it (`person_names.same_full_name`): one person, who registered twice (a second
    or changed email). Two people of a household never share a full name with both surnames."""
    surnames = rules.name_surnames
    users = _shared_by(device, situation) - {home}
    if not (surnames and ours and users):
        return False
    groups = _by_canonical(situation)
    return all(_named_as(ours, groups[user], rules) for user in sorted(users))


def _their_name_on_our_mailbox(
    draft: _Draft, device: Claim, home: str, situation: Situation, rules: TenantRules
) -> set[str]:
    """A home with no name recorded, on a device whose other users are known by one full name:
    that name is the home's too when the home's mailbox is named after it (`fits_mailbox`:
    `silviamarin2004@` for `silvia marin delgado`) and the touchpoint carries a name that agrees
    with it (`Silvia`). Without a name on the touchpoint, a sibling's `smarin@` would fit too."""
    if not situation.name:
        return set()
    groups = _by_canonical(situation)
    users = _shared_by(device, situation) - {home}
    names = {name for user in users if user in groups for name in groups[user].names}
    full = {name for name in names if is_full(name, rules.name_surnames)}
    if len(full) != 1 or not all(agree(situation.name, name) for name in full):
        return set()
    emails = [i for i in draft.identifiers if i.kind == "email"]
    if not emails:
        return _their_name_on_our_line(draft, full, users, groups, situation, rules)
    return full if any(_mailbox_named(full, email, rules) for email in emails) else set()


def _their_name_on_our_line(
    draft: _Draft,
    full: set[str],
    users: set[str],
    groups: Mapping[str, Group],
    situation: Situation,
    rules: TenantRules,
) -> set[str]:
    """A home known by nothing that says whose it is (no name recorded, no email: a mobile's
    calls and messages), whose mobile the touchpoint carries with the full name the device's
    other users are known by, itself and whole (`same_full_name`), when none of those users holds
    another mobile (two mobiles: two people, `_other_lines`): that name is the home's. It is
    what `_new_details_named_alike` decides when the mobile comes first on such a touchpoint;
    here the mobile's calls came before."""
    lines = {i for i in draft.identifiers if personal_line(i, rules)}
    carried = [c for c in situation.claims if c.identifier in lines]
    if not carried or any(dormant(c, situation, rules) for c in carried):
        return set()
    if not same_full_name({situation.name}, full, rules.name_surnames):
        return set()
    if any(
        _other_lines(draft.identifiers, groups[u].identifiers, rules) for u in users if u in groups
    ):
        return set()
    return full


def _named_as(ours: set[str], group: Group, rules: TenantRules) -> bool:
    """The group is known by the one full name `ours` holds (`same_full_name`): by its recorded
    names; with none recorded, by an email whose mailbox is named after it (`fits_mailbox`:
    `dcaballero@` for `daniel caballero marin`); with only part of it recorded (`agustin vega`),
    by an email whose mailbox is the whole name and nothing else (`spells_whole`:
    `agustin.vega.vargas@`; a son recorded as `jose garcia` with `jgarcia@` or
    `jose.garcia.martinez@` is not known as his father `jose garcia lopez`)."""
    surnames = rules.name_surnames
    if any(is_full(name, surnames) for name in group.names):
        return same_full_name(ours, group.names, surnames)
    full = {name for name in ours if is_full(name, surnames)}
    if len(full) != 1 or not same_full_name(ours | group.names, full, surnames):
        return False
    emails = [i.value for i in group.identifiers if i.kind == "email"]
    if group.names:
        [name] = full
        return any(spells_whole(name, email) for email in emails)
    return any(_mailbox_named(full, i, rules) for i in group.identifiers)


def _may_be_named(situation: Situation, group: Group) -> bool:
    """The touchpoint's name (if it carries one) may be that of the person the customer is known
    by, each of its names (`person_names.names_agree`)."""
    return names_agree({situation.name} - {""}, group.names)


def _second_mailbox_on(
    claim: Claim, group: Group, ranked: list[Claim], situation: Situation, rules: TenantRules
) -> bool:
    """The event's device is a browser only this customer used, and the event's new email is
    named after the same person as the customer's (`_named_alike`): their second mailbox. Not
    when the touchpoint's name says another person than one the customer is known by
    (`_may_be_named`): a son `José López Martín` typing `lopez.jose@` on his father's laptop
    (`jose.lopez@`, `José López García`) is not his father, however alike their mailboxes."""
    if not (_is_device(claim.identifier, rules) and _personal_device(claim, group, situation)):
        return False
    if not _may_be_named(situation, group):
        return False
    event = [c.identifier for c in ranked]
    if unique_conflicts(event, group.identifiers, rules):
        return False
    return _named_alike(event, group.identifiers, rules) is not None


def one_slip_apart(new: Identifier, known: Identifier) -> bool:
    """Two emails of one domain whose local parts differ by one keystroke (a letter missed,
    added, changed, or two swapped): the one a customer holds, and a slip of it."""
    if new.kind != "email" or known.kind != "email" or new == known:
        return False
    local, _, domain = new.value.rpartition("@")
    known_local, _, known_domain = known.value.rpartition("@")
    if domain != known_domain or min(len(local), len(known_local)) < MIN_TYPO_LOCAL:
        return False
    if _digits(local) != _digits(known_local) and not _digit_in_a_word(local, known_local):
        return False  # `ana.garcia1` and `ana.garcia2`: numbered accounts, often of one household
    return OSA.distance(local, known_local, score_cutoff=1) <= 1


# Digits that stand for the letter beside them on purpose (`j0rge`, `andr3s`): a person who
# found the name taken, not a slip.
LOOK_ALIKES = frozenset({frozenset("0o"), frozenset("3e")})


def _digit_in_a_word(first: str, second: str) -> bool:
    """The one difference is a digit of the keyboard's top row hit inside a word for the letter
    under it (`mariat4resa` for `mariateresa`): a finger's slip, where a number at the end
    (`ana.garcia1`), standing apart, or added (at Gmail, whose dots identity drops,
    `pilar5.ruiz` is kept as `pilar5ruiz`) numbers an account, and a digit that looks like the
    letter it replaces (`j0rge`) was chosen."""
    if len(first) != len(second) or not keyboard_slip(first, second):
        return False
    diff = [i for i, (x, y) in enumerate(zip(first, second, strict=True)) if x != y]
    if len(diff) != 1:
        return False  # two characters swapped: no digit hit for a letter
    at = diff[0]
    pair = frozenset((first[at], second[at]))
    digits = [word for word in (first, second) if word[at].isdigit()]
    if len(digits) != 1 or pair in LOOK_ALIKES:
        return False  # `ana.garcia1`, `ana.garcia2`: both numbered
    word = digits[0]
    around = word[at - 1 : at] + word[at + 1 : at + 2]
    return len(around) == 2 and around.isalpha()


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _personal_device(claim: Claim, group: Group, situation: Situation) -> bool:
    """A browser or an app install (not a line) that this group alone has used: held by nobody
    else, and presented by nobody else (`_shared_by`)."""
    return claim.identifier.family != "phone" and _shared_by(claim, situation) == {
        group.canonical_id
    }


# The kinds of a sign-in: a customer known by nothing else is an account without its contact
# details, which the same person gives on the same browser (an email in a chat, a mobile at
# checkout).
SIGN_IN_KINDS = frozenset({"customer_id"})


def _account_only(identifiers: Iterable[Identifier], rules: TenantRules) -> bool:
    """Known only by an account sign-in (and its devices): no email, line or card of its own."""
    kinds = {i.kind for i in identifiers if not _is_device(i, rules)}
    return bool(kinds) and kinds <= SIGN_IN_KINDS


def _complete_each_other(draft: _Draft, other: Group, rules: TenantRules) -> bool:
    """`_account_and_details` of two customers: a browser only one of them used, carrying the
    other's identifiers, makes them one person."""
    return _account_and_details(draft.identifiers, other.identifiers, rules)


def _account_and_details(
    ours: Iterable[Identifier], theirs: Iterable[Identifier], rules: TenantRules
) -> bool:
    """One side is only an account signed in on a browser, the other holds contact details and
    no account: one person, the account holder giving contact details (or signing in where they
    gave them). Two sides known by contact details (a shared family tablet, a store kiosk) are
    never one by a device alone."""
    ours, theirs = set(ours), set(theirs)
    if _account_only(ours, rules):
        return identified(theirs, rules) and not _strong_kinds(theirs, rules) & SIGN_IN_KINDS
    if _account_only(theirs, rules):
        return identified(ours, rules) and not _strong_kinds(ours, rules) & SIGN_IN_KINDS
    return False


def _device_completes(
    claim: Claim, ranked: list[Claim], situation: Situation, rules: TenantRules
) -> bool:
    """A browser only one customer used, presented with identifiers nobody holds yet that, with
    that customer's, are an account and its holder's contact details (`_account_and_details`):
    the touchpoint is that customer's, and completes it."""
    if not claim.holders or not rules.auto_merge:
        return False
    group = situation.groups[claim.holders[-1]]
    if not _personal_device(claim, group, situation):
        return False
    others = [c for c in ranked if not _is_device(c.identifier, rules)]
    if any(c.holders for c in others):
        return False  # another identifier names someone already: it decides
    return _account_and_details(group.identifiers, [c.identifier for c in others], rules)


def _is_device(identifier: Identifier, rules: TenantRules) -> bool:
    return rules.rule_for(identifier).device_profile


def _new_profile(device: Claim, person_id: str, situation: Situation) -> _Draft:
    """Register the device's profile, holding the device, merged into the person using it."""
    person = next(g for g in situation.groups.values() if g.canonical_id == person_id)
    profile = situation.new_customer_id
    draft = _Draft(
        profile,
        True,
        "device_profile",
        {profile, *person.members},
        set(person.identifiers),
        set(person.names) | ({situation.name} - {""}),
    )
    draft.links.append(Link(device.identifier, "device_profile"))
    draft.merges.append(
        Merge(person_id, profile, reason_text("profile_of_user", identifier=str(device.identifier)))
    )
    draft.touched |= {profile, person_id}
    return draft


def _vouches(
    claim: Claim,
    group: Group,
    new_ids: list[Identifier],
    situation: Situation,
    rules: TenantRules,
) -> bool:
    """A weak identifier held by this group alone may bring it new identifiers when the group is
    anonymous, or when the identifier is personal and only completes the group (no strong kind it
    holds already), or extends it too (a mobile: one person's second mailbox). A personal
    identifier that does not extend never brings a second email: it may well be someone else's."""
    if not _only_holder(claim, group, situation):
        return False
    if not identified(group.identifiers, rules):
        return True
    rule = rules.rule_for(claim.identifier)
    held_kinds = _strong_kinds(group.identifiers, rules)
    completes = not any(rules.is_strong(i) and i.kind in held_kinds for i in new_ids)
    return rule.vouches and (completes or _extends(claim, situation, rules))


def identified(identifiers: Iterable[Identifier], rules: TenantRules) -> bool:
    """Known as a person: holds a strong or a personal identifier (not only devices or lines)."""
    return any(rules.is_strong(i) or rules.rule_for(i).vouches for i in identifiers)


def _strong_kinds(identifiers: Iterable[Identifier], rules: TenantRules) -> set[str]:
    return {i.kind for i in identifiers if rules.is_strong(i)}


def _merge_or_propose(
    draft: _Draft, ranked: list[Claim], situation: Situation, rules: TenantRules
) -> None:
    """Every other customer the event reaches is merged into the home or proposed for review."""
    reached: dict[str, list[Claim]] = {}
    for claim in ranked:
        if stale(claim, situation, rules):
            continue  # a possibly reassigned number joins nobody
        for canonical_id in sorted(_groups_of(claim.holders, situation) - draft.touched):
            reached.setdefault(canonical_id, []).append(claim)
    for canonical_id, claims in reached.items():
        member = _any_member(claims[0].holders, canonical_id, situation)
        _merge_or_propose_one(draft, claims, situation.groups[member], situation, rules)
    _merge_slips(draft, ranked, situation, rules)


def _merge_slips(
    draft: _Draft, ranked: list[Claim], situation: Situation, rules: TenantRules
) -> None:
    """The customers holding an email one slip from a new email of the event (`Situation.slips`)
    join the home when both are known by one name (`_slip_holder`: `slip_and_name`, the home's
    names and the event's against theirs): the slip goes to the home, so the home is who they
    are. A finger's slip with no name against it (`typing_slip`), or a named one the home cannot
    take (a customer registered by this event), is proposed for review. An email of the event
    held already joins the holders of its slips by a name only (`resolution._held_slips`): they
    met without one when the second of the two was new."""
    home = _canonical(draft.home, situation)
    mergeable = rules.auto_merge and not draft.register
    for claim in ranked:
        for known in situation.slips.get(claim.identifier, ()):
            if known.saturated or known.suppressed:
                continue
            for canonical_id in sorted(_groups_of(known.holders, situation) - draft.touched):
                other = situation.groups[_any_member(known.holders, canonical_id, situation)]
                if frozenset({home, canonical_id}) in situation.kept_apart:
                    continue
                why = _slip_holder(
                    claim.identifier,
                    known.identifier,
                    draft.names,
                    situation.name,
                    draft.identifiers,
                    other,
                    rules,
                )
                if not why or (
                    claim.holders and not _one_full_name(why, draft, other, situation, rules)
                ):
                    continue
                draft.touched.add(canonical_id)
                if why == "slip_and_name" and mergeable:
                    _absorb(draft, other, home, reason_text(why))
                elif rules.rule_for(claim.identifier).propose_candidates:
                    # No address in it: the other's email is theirs alone, and outlives an
                    # erasure of them in a candidate (docs/erasure.md).
                    reason = reason_text("slip_for_review")
                    draft.proposals.append(Proposal(home, canonical_id, reason, ()))


def _one_full_name(
    why: str, draft: _Draft, other: Group, situation: Situation, rules: TenantRules
) -> bool:
    """Whether a slip of an email the event's home holds already (`resolution._held_slips`) is
    its holder's: two customers established apart, so more than `slip_and_name`'s agreeing names.
    The touchpoint carries a full name, and it is the one full name of both sides
    (`same_full_name`): `José Luis Domínguez` on `joseluis.dominguez.marin@` says nothing against
    José Luis Domínguez Martín's `joseluis.dominguez.martin@`, and nothing for him either (two
    men, Marín and Martín). A slip with no such name was proposed for review when it was new."""
    return (
        why == "slip_and_name"
        and is_full(situation.name, rules.name_surnames)
        and same_full_name(draft.names, other.names, rules.name_surnames)
    )


def _other_lines(
    ours: Iterable[Identifier], theirs: Iterable[Identifier], rules: TenantRules
) -> bool:
    """Both sides have personal lines (mobiles), and none in common: two people."""
    our_lines = {i for i in ours if personal_line(i, rules)}
    their_lines = {i for i in theirs if personal_line(i, rules)}
    return bool(our_lines and their_lines and not our_lines & their_lines)


def _merge_or_propose_one(
    draft: _Draft, claims: list[Claim], other: Group, situation: Situation, rules: TenantRules
) -> None:
    home = _canonical(draft.home, situation)
    strong = [c for c in claims if rules.is_strong(c.identifier)]
    evidence = (strong or claims)[0]
    draft.touched.add(other.canonical_id)
    if frozenset({home, other.canonical_id}) in situation.kept_apart:
        draft.skipped.append(Skip(evidence.identifier, f"kept apart from {other.canonical_id}"))
        return
    mergeable = rules.auto_merge and not draft.register
    conflicts = unique_conflicts(draft.identifiers, other.identifiers, rules)
    devices = [c for c in claims if _is_device(c.identifier, rules)]
    if devices and len(devices) == len(claims):
        if not identified(other.identifiers, rules):
            # A device's profile joins the person now using it; a line's does not: calls from a
            # household's landline before anyone gave a name may have been anyone's there.
            # Nor does the profile of a device other customers used too (`_shared_by`).
            lines = any(c.identifier.family == "phone" for c in devices)
            used = any(_shared_by(c, situation) - {home, other.canonical_id} for c in devices)
            if rules.auto_merge and not lines and not used:
                _absorb(
                    draft,
                    other,
                    home,
                    reason_text("used_before", identifier=str(devices[0].identifier)),
                )
            return
        # One person: a device only they used vouches that one's email is a slip of the other's,
        # as it does for a touchpoint carrying the slip itself (`_mistyped_email_of`).
        own = [c for c in devices if _only_holder(c, other, situation)]
        if mergeable and own and not conflicts:
            slip = _slip_between(draft.identifiers, other.identifiers)
            if slip:
                _absorb(draft, other, home, reason_text(slip, kind=own[0].identifier.kind))
                return
            browsers = [c for c in own if _personal_device(c, other, situation)]
            if browsers and _named_slip_between(draft, other, situation, rules):
                on = browsers[0].identifier.kind
                _absorb(draft, other, home, reason_text("slip_and_name_on", kind=on))
                return
        browsers = [c for c in own if _personal_device(c, other, situation)]
        if mergeable and browsers and not conflicts:
            on = browsers[0].identifier.kind
            if _complete_each_other(draft, other, rules):
                _absorb(draft, other, home, reason_text("account_and_contact", kind=on))
                return
            # Mailboxes named alike say one person unless the names both customers are known by
            # differ (a father and his son: `jose.lopez@` and `lopez.jose@`, `José López García`
            # and `José López Martín`); a name only this touchpoint carries (a gift order typed
            # by someone else) is not ours, and a side without a name decides nothing.
            alike = names_agree(draft.own_names, other.names)
            if alike and (why := _named_alike(draft.identifiers, other.identifiers, rules)):
                _absorb(draft, other, home, reason_text(why, kind=on))
                return
        # A browser used only by customers of one full name (and no other name) is one person's.
        named = [c for c in devices if c.identifier.family != "phone"]
        named = [
            c
            for c in named
            if _users_named(
                draft.own_names or _their_name_on_our_mailbox(draft, c, home, situation, rules),
                c,
                home,
                situation,
                rules,
            )
        ]
        if mergeable and named and not conflicts:
            on = named[0].identifier.kind
            _absorb(draft, other, home, reason_text("same_full_name", kind=on))
            return
        if _different_people(draft, other, rules):
            _shared_devices(draft, devices, other, situation)
    apart = _named_apart(draft.own_names, other.names, rules)
    if mergeable and strong and not conflicts and not apart:
        _absorb(draft, other, home, reason_text("both_hold", identifier=str(evidence.identifier)))
    elif (
        mergeable
        and not conflicts
        and not apart
        and (voucher := _voucher(claims, draft, other, rules, situation))
    ):
        _absorb(draft, other, home, reason_text("completed_through", identifier=str(voucher)))
    elif any(rules.rule_for(c.identifier).propose_candidates for c in claims):
        shared = str(evidence.identifier)
        reason = reason_text("share", identifier=shared)
        if conflicts:
            kinds = ", ".join(conflicts)
            reason = reason_text("share_hold_different", identifier=shared, kinds=kinds)
        identifiers = tuple(c.identifier for c in claims)
        draft.proposals.append(Proposal(home, other.canonical_id, reason, identifiers))


def _named_apart(ours: Iterable[str], theirs: Iterable[str], rules: TenantRules) -> bool:
    """Each side is known by a full name (`is_full`) with no word in common with one of the
    other's: two people, whatever identifier they both hold (a number the carrier gave to
    someone else). They are proposed for review, not merged. Names that share a word are not
    told apart (`Ma Teresa Lozano` and `María Teresa Lozano Rodríguez` are one person; a
    household shares surnames)."""
    surnames = rules.name_surnames
    if not surnames:
        return False
    our_full = [set(n.split()) for n in ours if is_full(n, surnames)]
    their_full = [set(n.split()) for n in theirs if is_full(n, surnames)]
    # Any two with no word in common: a name filed on one of them by a call from the number
    # alone (the new holder's, while the number still looked the old one's) does not join them.
    return any(not a & b for a in our_full for b in their_full)


def _slip_between(ours: Iterable[Identifier], theirs: Iterable[Identifier]) -> str | None:
    """Why two established customers' emails are one person's, as its reason's code
    (services/identity/reasons.py): one is a slip of the other (`one_slip_apart`) that a finger
    makes (`keyboard_slip`: `kateo@` for `mateo@`), not another name one letter away (`maria@`
    and `mario@`, `daniel@` and `daniela@`: often one household)."""
    known = sorted(theirs)
    for mine in sorted(ours):
        for other in known:
            if one_slip_apart(mine, other) and keyboard_slip(
                mine.value.rpartition("@")[0], other.value.rpartition("@")[0]
            ):
                return "keystroke_apart"
    return None


def _named_slip_between(
    draft: _Draft, other: Group, situation: Situation, rules: TenantRules
) -> bool:
    """An email of ours one slip from one of theirs (`one_slip_apart`: a letter missed too,
    which `_slip_between` does not take alone), on a browser only `other` used (the caller
    checks `_personal_device`), when the touchpoint carries a name that is ours too (every name
    recorded for the home agrees with it; with none recorded, the home's mailbox is named after
    it) and both are known by (`_slip_holder`'s `slip_and_name`, over every name of the home
    and the touchpoint's). Not a sister's gift order on her laptop with her brother's address
    and her own name, nor a call from a home's line."""
    name = situation.name
    if not name:
        return False
    own = draft.own_names
    if own and not all(agree(name, n) for n in own):
        return False
    ours = set(draft.identifiers)
    mine = sorted(i for i in ours if i.kind == "email")
    if not own and not any(_mailbox_named({name}, e, rules) for e in mine):
        return False
    theirs = sorted(i for i in other.identifiers if i.kind == "email")
    return any(
        one_slip_apart(a, b)
        and _slip_holder(a, b, draft.names | {name}, name, ours, other, rules) == "slip_and_name"
        for a in mine
        for b in theirs
    )


def _named_alike(
    ours: Iterable[Identifier], theirs: Iterable[Identifier], rules: TenantRules
) -> str | None:
    """Why two sides are one person, as its reason's code: an email of each, named after the
    same person (`one_persons_mailboxes`: a personal and a work address, an old and a new one),
    and no personal lines of their own that differ (two mobiles: two people of one household,
    whatever their addresses say)."""
    ours, theirs = set(ours), set(theirs)
    if _other_lines(ours, theirs, rules):
        return None
    mine = sorted(i.value for i in ours if i.kind == "email")
    known = sorted(i.value for i in theirs if i.kind == "email")
    for a in mine:
        for b in known:
            if one_persons_mailboxes(a, b, rules.email_dotless_domains):
                return "named_alike"
    return None


def _different_people(draft: _Draft, other: Group, rules: TenantRules) -> bool:
    """Both are established customers holding different values of one strong kind (two emails):
    the evidence that a device they both use is shared. A new customer, or two that complete
    each other (an account and an email), may be one person: they are only proposed."""
    if draft.register:
        return False
    ours = _values_by_kind(draft.identifiers, rules)
    theirs = _values_by_kind(other.identifiers, rules)
    return any(kind in theirs and values != theirs[kind] for kind, values in ours.items())


def _shared_devices(
    draft: _Draft, devices: list[Claim], other: Group, situation: Situation
) -> None:
    """Devices of another person used by this one too: shared (a family tablet, a kiosk). They
    stop linking anybody, and their profiles leave the person they had joined."""
    for claim in devices:
        _saturate_device(draft, claim, situation, joined=other.canonical_id)


def _voucher(
    claims: list[Claim], draft: _Draft, other: Group, rules: TenantRules, situation: Situation
) -> Identifier | None:
    """The weak identifier, held by the other group alone, that makes both groups one person:
    any such identifier when the other group is anonymous, a personal one when the two groups
    complete each other (no strong kind on both sides), a personal one that `extends` in any case."""
    overlap = _strong_kinds(other.identifiers, rules) & _strong_kinds(draft.identifiers, rules)
    anonymous = not identified(other.identifiers, rules)
    for claim in claims:
        rule = rules.rule_for(claim.identifier)
        extends = _extends(claim, situation, rules)
        personal = anonymous or (rule.vouches and (extends or not overlap))
        if personal and _only_holder(claim, other, situation):
            return claim.identifier
    return None


def _only_holder(claim: Claim, group: Group, situation: Situation) -> bool:
    return _groups_of(claim.holders, situation) == {group.canonical_id}


def _absorb(draft: _Draft, other: Group, survivor: str, reason: str) -> None:
    draft.merges.append(Merge(survivor, other.canonical_id, reason))
    draft.members |= other.members
    draft.identifiers |= other.identifiers
    draft.names |= other.names
    draft.own_names |= other.names


def _link(draft: _Draft, ranked: list[Claim], situation: Situation, rules: TenantRules) -> None:
    strong_anchor = bool(_strong_kinds(draft.identifiers, rules)) or any(
        rules.is_strong(c.identifier) and not c.holders for c in ranked
    )
    for claim in ranked:
        if draft.members & set(claim.holders) or any(
            link.identifier == claim.identifier for link in draft.links
        ):
            continue
        if claim.identifier in draft.saturate:
            draft.skipped.append(Skip(claim.identifier, "used by several customers"))
            continue
        if stale(claim, situation, rules):
            _reassign_or_skip(draft, claim)
            continue
        reason = _why_not_link(draft, claim, situation, rules, strong_anchor)
        if reason is None:
            rule = draft.anchor if not claim.holders else "shared_holder"
            draft.links.append(Link(claim.identifier, rule))
            draft.identifiers.add(claim.identifier)
        else:
            draft.skipped.append(Skip(claim.identifier, reason))


def _reassign_or_skip(draft: _Draft, claim: Claim) -> None:
    if claim.released & (draft.members | {draft.home}):
        draft.skipped.append(Skip(claim.identifier, "possibly reassigned; not confirmed here"))
        return
    draft.links.append(Link(claim.identifier, "reassigned"))
    draft.identifiers.add(claim.identifier)
    draft.reassign.append(Reassign(claim.identifier, tuple(claim.holders)))


def _confirm(draft: _Draft, ranked: list[Claim], situation: Situation, rules: TenantRules) -> None:
    """Record that the home's members used their reassignable identifiers again. A dormant one is
    confirmed only next to another identifier of the home (a call from the number alone may be
    its new owner's), and a fresh one at most once a week."""
    if not situation.at:
        return
    for claim in ranked:
        if not rules.rule_for(claim.identifier).reassign_after_days:
            continue
        holders = [h for h in claim.holders if h in draft.members]
        if not holders:
            continue
        if dormant(claim, situation, rules) and not _corroborated(draft, claim, ranked):
            continue
        for holder in holders:
            if claim.confirmed.get(holder, 0) + CONFIRM_EVERY_MICROS <= situation.at:
                draft.confirm.append((claim.identifier, holder))


def _corroborated(draft: _Draft, claim: Claim, ranked: list[Claim]) -> bool:
    """Another identifier of the event is the home's (held already or linked now)."""
    linked = {link.identifier for link in draft.links}
    return any(
        other.identifier != claim.identifier
        and (other.identifier in linked or draft.members & set(other.holders))
        for other in ranked
    )


def _why_not_link(
    draft: _Draft, claim: Claim, situation: Situation, rules: TenantRules, strong_anchor: bool
) -> str | None:
    rule = rules.rule_for(claim.identifier)
    holders = _groups_of(claim.holders, situation) - {_canonical(draft.home, situation)}
    if claim.released & (draft.members | {draft.home}):
        return "unlinked from this customer before"
    if unique_conflicts([claim.identifier], draft.identifiers, rules):
        return f"customer already holds another {claim.identifier.kind}"
    if not holders:
        return None
    if rule.max_holders == 1:
        return "held by another customer"
    if _used_by_people(claim.identifier, rules):
        sharing = _shared_by(claim, situation) - {_canonical(draft.home, situation)}
        if len(sharing) >= rule.max_holders:
            _saturate_device(draft, claim, situation)
            return f"shared by more than {rule.max_holders} customers"
    if not strong_anchor:
        _presented(draft, claim, rules)
        return "shared; only a strong identifier may add a holder"
    if len(holders) >= rule.max_holders:
        draft.saturate.append(claim.identifier)
        return f"shared by more than {rule.max_holders} customers"
    return None


def _used_by_people(identifier: Identifier, rules: TenantRules) -> bool:
    """A browser, an app install, a tablet or a kiosk: a device (not a line, whose calls alone
    are nobody's already, see `_line_alone`) that people use by turns."""
    return _is_device(identifier, rules) and identifier.family != "phone"


def _shared_by(claim: Claim, situation: Situation) -> set[str]:
    """The customers (groups) a device is known to be used by: those holding it, and those that
    presented it without being able to hold it (a kiosk used by walk-ins known only by their
    mobiles, whose weak identifiers may not add a holder)."""
    return _groups_of((*claim.holders, *claim.presented_by), situation)


def _saturate_device(
    draft: _Draft, claim: Claim, situation: Situation, joined: str | None = None
) -> None:
    """A device used by more customers than its rule allows (a store kiosk): it stops linking
    anybody, and its profiles leave the people they had joined (their visits were anyone's); with
    `joined`, only the profiles merged into that customer."""
    if claim.identifier not in draft.saturate:
        draft.saturate.append(claim.identifier)
    reason = reason_text("device_shared", identifier=str(claim.identifier))
    users = _users_of(claim, situation)
    for holder in claim.holders:
        person = situation.groups[holder].canonical_id
        if holder in situation.profiles and person != holder and joined in (None, person):
            draft.splits.append(Split(holder, reason))
            # The person used it (through the profile leaving them): on record as a user.
            if not _groups_of(users, situation) & {person}:
                _record_presenter(draft, claim.identifier, person)


def _note_users_of_shared(draft: _Draft, situation: Situation, rules: TenantRules) -> None:
    """Who uses a browser or app judged shared (saturated before or by this touchpoint) stays on
    record, as presenting it: the touchpoint's customer when it is known as a person and not one
    of the device's users yet, until more customers used it than its rule allows (a kiosk, shared
    for good). So the judgement can be revisited when its users turn out to be one person
    (`_one_persons_again`), and is not when somebody else used it meanwhile."""
    if not identified(draft.identifiers, rules):
        return
    for claim in situation.claims:
        shared = claim.saturated or claim.identifier in draft.saturate
        if claim.suppressed or not shared or not _used_by_people(claim.identifier, rules):
            continue
        users = _users_of(claim, situation)
        if len(users) > rules.rule_for(claim.identifier).max_holders:
            continue
        linked = any(link.identifier == claim.identifier for link in draft.links)
        if not (linked or draft.members & users or draft.home in users):
            _record_presenter(draft, claim.identifier, draft.home)


def _record_presenter(draft: _Draft, identifier: Identifier, customer_id: str) -> None:
    if (identifier, customer_id) not in draft.present:
        draft.present.append((identifier, customer_id))


def _presented(draft: _Draft, claim: Claim, rules: TenantRules) -> None:
    """Remember that a person other than its holders used the device (`_shared_by`): a customer
    known by what it holds (not a one-off), once."""
    if not _used_by_people(claim.identifier, rules) or not identified(draft.identifiers, rules):
        return
    if draft.home not in claim.presented_by and not draft.members & set(claim.presented_by):
        _record_presenter(draft, claim.identifier, draft.home)


def _canonical(customer_id: str, situation: Situation) -> str:
    group = situation.groups.get(customer_id)
    return group.canonical_id if group else customer_id


def _groups_of(holders: Iterable[str], situation: Situation) -> set[str]:
    return {situation.groups[h].canonical_id for h in holders}


def _any_member(holders: Iterable[str], canonical_id: str, situation: Situation) -> str:
    return next(h for h in holders if situation.groups[h].canonical_id == canonical_id)

"""Which customer an event belongs to, and what it changes: the resolution policy (pure).

The resolver loads what the store knows about the event's identifiers (`Situation`) and applies
the `Decision`. Everything here is a function of its inputs, so every rule is testable without a
store and two replicas given the same state decide the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.identity.rules import Identifier, TenantRules


@dataclass(frozen=True)
class Claim:
    """What the identifier index knows about one identifier of the event."""

    identifier: Identifier
    holders: tuple[str, ...] = ()  # customers holding it, in claim order
    released: frozenset[str] = frozenset()  # customers it was unlinked from: never relinked to them
    saturated: bool = False  # shared by too many customers: links nobody any more
    suppressed: bool = False  # erased: links nobody, ever


@dataclass(frozen=True)
class Group:
    """A canonical customer with every customer merged into it, as the policy sees it."""

    canonical_id: str
    members: frozenset[str]
    identifiers: frozenset[Identifier]


@dataclass(frozen=True)
class Situation:
    claims: tuple[Claim, ...]
    groups: Mapping[str, Group]  # holder id -> the group it belongs to now
    new_customer_id: str  # the id a customer registered by this event gets
    kept_apart: frozenset[frozenset[str]] = (
        frozenset()
    )  # canonical pairs never merged automatically


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


@dataclass
class _Draft:
    """The decision being built; members and identifiers grow as customers merge into the home."""

    home: str
    register: bool
    anchor: str
    members: set[str]
    identifiers: set[Identifier]
    links: list[Link] = field(default_factory=list)
    saturate: list[Identifier] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # canonical ids already merged or proposed


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
    ours_by_kind = _values_by_unique_kind(ours, rules)
    theirs_by_kind = _values_by_unique_kind(theirs, rules)
    return sorted(
        kind
        for kind, values in ours_by_kind.items()
        if kind in theirs_by_kind and values != theirs_by_kind[kind]
    )


def _values_by_unique_kind(
    identifiers: Iterable[Identifier], rules: TenantRules
) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for identifier in identifiers:
        if rules.rule_for(identifier).unique:
            found.setdefault(identifier.kind, set()).add(identifier.value)
    return found


def decide(situation: Situation, rules: TenantRules) -> Decision:
    usable, skipped = _usable(situation.claims)
    ranked = rank(usable, rules)
    draft = _start(ranked, situation, rules)
    draft.skipped += skipped
    _merge_or_propose(draft, ranked, situation, rules)
    _link(draft, ranked, situation, rules)
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
    )


def _usable(claims: Iterable[Claim]) -> tuple[list[Claim], list[Skip]]:
    usable, skipped = [], []
    for claim in claims:
        if claim.suppressed:
            skipped.append(Skip(claim.identifier, "erased"))
        elif claim.saturated:
            skipped.append(Skip(claim.identifier, "shared by too many customers"))
        else:
            usable.append(claim)
    return usable, skipped


def _start(ranked: list[Claim], situation: Situation, rules: TenantRules) -> _Draft:
    home, anchor, ambiguous = _choose_home(ranked, situation, rules)
    if home is None:
        draft = _Draft(situation.new_customer_id, True, "first_seen", set(), set())
    else:
        group = situation.groups[home]
        draft = _Draft(home, False, anchor, set(group.members), set(group.identifiers))
    draft.ambiguous = ambiguous
    draft.touched.add(_canonical(draft.home, situation))
    return draft


def _choose_home(
    ranked: list[Claim], situation: Situation, rules: TenantRules
) -> tuple[str | None, str, list[str]]:
    """The holder of the highest-priority identifier that may carry this event, if any."""
    event_ids = [c.identifier for c in ranked]
    new_ids = [c.identifier for c in ranked if not c.holders]
    ambiguous: list[str] = []
    for claim in ranked:
        if not claim.holders:
            continue
        groups = _groups_of(claim.holders, situation)
        if len(groups) > 1 and rules.shared_identifier == "unresolved":
            ambiguous = ambiguous or sorted(groups)
            continue
        holder = claim.holders[-1]  # the most recent claim, for identifiers shared on purpose
        group = situation.groups[holder]
        weak = not rules.is_strong(claim.identifier)
        if weak and new_ids and not _vouches(claim, group, new_ids, situation, rules):
            continue  # a shared line or device must not give someone a new email or number
        if unique_conflicts(event_ids, group.identifiers, rules):
            continue
        verb = "vouched_by" if weak and new_ids else "seen_with"
        return holder, f"{verb}:{claim.identifier.kind}", []
    return None, "first_seen", ambiguous


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
    if not _identified(group.identifiers, rules):
        return True
    rule = rules.rule_for(claim.identifier)
    held_kinds = _strong_kinds(group.identifiers, rules)
    completes = not any(rules.is_strong(i) and i.kind in held_kinds for i in new_ids)
    return rule.vouches and (completes or rule.extends)


def _identified(identifiers: Iterable[Identifier], rules: TenantRules) -> bool:
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
        for canonical_id in sorted(_groups_of(claim.holders, situation) - draft.touched):
            reached.setdefault(canonical_id, []).append(claim)
    for canonical_id, claims in reached.items():
        member = _any_member(claims[0].holders, canonical_id, situation)
        _merge_or_propose_one(draft, claims, situation.groups[member], situation, rules)


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
    if mergeable and strong and not conflicts:
        _absorb(draft, other, home, f"both hold {evidence.identifier}")
    elif (
        mergeable
        and not conflicts
        and (voucher := _voucher(claims, draft, other, rules, situation))
    ):
        _absorb(draft, other, home, f"completed through {voucher}")
    elif any(rules.rule_for(c.identifier).propose_candidates for c in claims):
        reason = f"share {evidence.identifier}"
        if conflicts:
            reason += f"; hold different {', '.join(conflicts)}"
        identifiers = tuple(c.identifier for c in claims)
        draft.proposals.append(Proposal(home, other.canonical_id, reason, identifiers))


def _voucher(
    claims: list[Claim], draft: _Draft, other: Group, rules: TenantRules, situation: Situation
) -> Identifier | None:
    """The weak identifier, held by the other group alone, that makes both groups one person:
    any such identifier when the other group is anonymous, a personal one when the two groups
    complete each other (no strong kind on both sides), a personal one that `extends` in any case."""
    overlap = _strong_kinds(other.identifiers, rules) & _strong_kinds(draft.identifiers, rules)
    anonymous = not _identified(other.identifiers, rules)
    for claim in claims:
        rule = rules.rule_for(claim.identifier)
        personal = anonymous or (rule.vouches and (rule.extends or not overlap))
        if personal and _only_holder(claim, other, situation):
            return claim.identifier
    return None


def _only_holder(claim: Claim, group: Group, situation: Situation) -> bool:
    return _groups_of(claim.holders, situation) == {group.canonical_id}


def _absorb(draft: _Draft, other: Group, survivor: str, reason: str) -> None:
    draft.merges.append(Merge(survivor, other.canonical_id, reason))
    draft.members |= other.members
    draft.identifiers |= other.identifiers


def _link(draft: _Draft, ranked: list[Claim], situation: Situation, rules: TenantRules) -> None:
    strong_anchor = bool(_strong_kinds(draft.identifiers, rules)) or any(
        rules.is_strong(c.identifier) and not c.holders for c in ranked
    )
    for claim in ranked:
        if draft.members & set(claim.holders):
            continue
        reason = _why_not_link(draft, claim, situation, rules, strong_anchor)
        if reason is None:
            rule = draft.anchor if not claim.holders else "shared_holder"
            draft.links.append(Link(claim.identifier, rule))
            draft.identifiers.add(claim.identifier)
        else:
            draft.skipped.append(Skip(claim.identifier, reason))


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
    if not strong_anchor:
        return "shared; only a strong identifier may add a holder"
    if len(holders) >= rule.max_holders:
        draft.saturate.append(claim.identifier)
        return f"shared by more than {rule.max_holders} customers"
    return None


def _canonical(customer_id: str, situation: Situation) -> str:
    group = situation.groups.get(customer_id)
    return group.canonical_id if group else customer_id


def _groups_of(holders: Iterable[str], situation: Situation) -> set[str]:
    return {situation.groups[h].canonical_id for h in holders}


def _any_member(holders: Iterable[str], canonical_id: str, situation: Situation) -> str:
    return next(h for h in holders if situation.groups[h].canonical_id == canonical_id)

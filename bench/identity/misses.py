"""Why linkable pairs were missed: the split-off touchpoints, from the truth (pure).

A pair of one person's touchpoints is *linkable* when the evidence connects them (scoring.py's
`evidence_components`); it is *missed* when the two were filed under different customers (or one
was lost). Within one linkable group, the touchpoints filed under one customer form a *block*; a
missed pair joins two blocks of a group, and is put down to the smaller one (on a tie, the one
first seen later): the touchpoints that were split off from the rest of their person.

Each split-off block is described three ways, from what the population knows:
- `hazard`: the most telling hazard among its touchpoints (`HAZARD_ORDER`: a lost touchpoint, a
  lone local-part slip, a foreign number... `none` when nothing was hazardous);
- `carries`: the kinds of evidence its touchpoints carry (`cookie`, `email+cookie`, `typo`: a
  slip alone, standing for an address of its own);
- `bridge`: the kinds of the keys it shares with the rest of its group and nobody else uses,
  the identifiers that would have connected it (`cookie`: the browser; `email`).

A block connected to its group only through a device (a browser, an app install) is missed
when the resolver held the device shared: `device_bridged` counts those pairs by how many of the
person's customers (at the end) were named on the device, by touchpoints carrying an email, a
phone, an account or a card beside it. Two or more: the person was still split there (a second or
changed email, an unrecognised slip), so the browser looked like a household's.

This module imports nothing of ours, so that it can be tested on hand-built touchpoints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any, Protocol

LOST = "lost"
NONE = "none"
# The hazards that can split a person, most telling first. A hazard not listed comes after them
# (alphabetically); the way a value was written (`phone_national`, `email_case`) last of all.
HAZARD_ORDER = (
    "email_typo_local",
    "email_typo_domain",
    "email_typo",
    "malformed_identifier",
    "foreign_number",
    "recycled_number",
    "second_email",
    "changed_email",
    "shared_landline",
    "shared_tablet",
    "kiosk",
    "cleared_cookie",
    "placeholder_email",
    "placeholder_phone",
)
_SPELLING = ("phone_", "email_")
DEVICE_FAMILIES = frozenset({"cookie", "app", "tablet", "kiosk"})
TOP = 12  # classes listed (the JSON and the printed table)


class Touched(Protocol):
    @property
    def person(self) -> int: ...

    @property
    def evidence(self) -> frozenset[str]: ...

    @property
    def hazards(self) -> frozenset[str]: ...


def family(key: str) -> str:
    return key.partition(":")[0]


def main_hazard(hazards: set[str] | frozenset[str]) -> str:
    """The most telling of a block's hazards (`HAZARD_ORDER`), `none` without any."""
    for hazard in HAZARD_ORDER:
        if hazard in hazards:
            return hazard
    rest = sorted(hazards, key=lambda h: (h.startswith(_SPELLING), h))
    return rest[0] if rest else NONE


def missed_linkable_pairs(
    touches: Sequence[Touched],
    customers: Sequence[str | None],
    components: Sequence[int],
) -> dict[str, Any]:
    """The missed linkable pairs by the hazard, the evidence and the bridge of the blocks split
    off (see the module's docstring), with the largest classes of all three together."""
    predicted: list[Hashable] = [c if c is not None else (LOST, i) for i, c in enumerate(customers)]
    users: dict[str, set[int]] = {}
    for touch in touches:
        for key in touch.evidence:
            users.setdefault(key, set()).add(touch.person)
    own = {key for key, people in users.items() if len(people) == 1}
    named_on: dict[str, set[Hashable]] = {}  # device key -> customers of touchpoints naming
    for i, touch in enumerate(touches):
        if any(family(k) not in DEVICE_FAMILIES for k in touch.evidence):
            for key in touch.evidence:
                if family(key) in DEVICE_FAMILIES:
                    named_on.setdefault(key, set()).add(predicted[i])
    blocks: dict[int, dict[Hashable, list[int]]] = {}
    for i, component in enumerate(components):
        blocks.setdefault(component, {}).setdefault(predicted[i], []).append(i)
    by_hazard: Counter[str] = Counter()
    by_carries: Counter[str] = Counter()
    by_bridge: Counter[str] = Counter()
    classes: Counter[tuple[str, str, str]] = Counter()
    device_bridged: Counter[str] = Counter()
    class_blocks: Counter[tuple[str, str, str]] = Counter()
    total = stray_blocks = 0
    for group in blocks.values():
        if len(group) < 2:
            continue
        # Larger blocks first; on a tie, the one seen first.
        ordered = sorted(group.values(), key=lambda b: (-len(b), b[0]))
        for rank, block in enumerate(ordered[1:], start=1):
            pairs = len(block) * sum(len(b) for b in ordered[:rank])
            label, bridges = _describe(block, ordered, own, touches, customers)
            if bridges and all(family(k) in DEVICE_FAMILIES for k in bridges):
                named = len(set().union(*(named_on.get(k, set()) for k in bridges)))
                device_bridged[_NAMED[min(named, 2)]] += pairs
            total += pairs
            stray_blocks += 1
            by_hazard[label[0]] += pairs
            by_carries[label[1]] += pairs
            by_bridge[label[2]] += pairs
            classes[label] += pairs
            class_blocks[label] += 1
    return {
        "pairs": total,
        "blocks": stray_blocks,
        "by_hazard": _ranked(by_hazard),
        "by_carries": _ranked(by_carries),
        "by_bridge": _ranked(by_bridge),
        "device_bridged": _ranked(device_bridged),
        "classes": [
            {"hazard": h, "carries": c, "bridge": b, "pairs": n, "blocks": class_blocks[(h, c, b)]}
            for (h, c, b), n in sorted(classes.items(), key=lambda item: (-item[1], item[0]))[:TOP]
        ],
    }


def _describe(
    block: list[int],
    ordered: list[list[int]],
    own: set[str],
    touches: Sequence[Touched],
    customers: Sequence[str | None],
) -> tuple[tuple[str, str, str], set[str]]:
    if any(customers[i] is None for i in block):
        hazard = LOST
    else:
        hazard = main_hazard({h for i in block for h in touches[i].hazards})
    keys = {k for i in block for k in touches[i].evidence}
    others = {k for b in ordered if b is not block for i in b for k in touches[i].evidence}
    bridges = keys & others & own
    return (hazard, _kinds(keys) or NONE, _kinds(bridges) or NONE), bridges


_NAMED = ("named_by_no_customer", "named_by_one_customer", "named_by_several_customers")


def _kinds(keys: set[str]) -> str:
    return "+".join(sorted({family(k) for k in keys}))


def _ranked(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

"""Why a customer holds several people: what their touchpoints on it share, from the truth (pure).

The population knows what every key a touchpoint carries stands for (spelling.py, channels.py):
a placeholder typed for someone who gave nothing, a household's landline or tablet, a store
kiosk, a number that changed hands. A customer holding touchpoints of several people was fused
through the keys those people share; each shared key is given a cause here, and the customer the
causes that are needed to connect its people (`fusion_causes`).

Causes, most innocent first (the order explanations are tried in):
- `shared_tablet`: a household's tablet (its visits carry only the device: nobody can be told);
- `kiosk`: a store kiosk; `device`: any other browser or app install two people used;
- `shared_landline`: a household's fixed line; `recycled_number`: a mobile given up and handed
  by the carrier to someone else;
- `mistyped_email`: one person's slip is another's real address;
- `hub`: any other real identifier several people present (none by design in the population,
  where what staff type for everybody is a placeholder: counted so that one would show);
- `placeholder`: a value typed for people who gave none (`sin@email.com`, `612345678`);
- `nothing_shared`: people on the customer that no shared key connects (a rule's inference: a
  slip, two mailboxes named alike, an account and contact details on one browser).

A customer counts as fused *through a placeholder or hub* (the issue's done-when) when its people
cannot all be connected without a placeholder or hub key. The resolver may have ignored a
placeholder that the people also share (`ninguno@ninguno.net` beside a kiosk): the more innocent
explanation is tried first, so that customer is the kiosk's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

PLACEHOLDER_KEY = "placeholder:"  # spelling.PLACEHOLDER (this module imports nothing of ours)
TYPO_KEY = "typo:"

CAUSES = (
    "shared_tablet",
    "kiosk",
    "device",
    "shared_landline",
    "recycled_number",
    "mistyped_email",
    "hub",
    "placeholder",
)
NOTHING_SHARED = "nothing_shared"
THROUGH_PLACEHOLDER_OR_HUB = frozenset({"placeholder", "hub"})
_DEVICES = {"tablet": "shared_tablet", "kiosk": "kiosk", "cookie": "device", "app": "device"}


class Carried(Protocol):
    @property
    def person(self) -> int: ...

    @property
    def carried(self) -> frozenset[str]: ...

    @property
    def hazards(self) -> frozenset[str]: ...


def comparable(key: str) -> str:
    """The key as the address it is written with: a lone slip (`typo:ana@x.es`) compares with
    the mailbox of that address (`email:ana@x.es`), since the resolver sees only the text."""
    if key.startswith(TYPO_KEY):
        return "email:" + key.removeprefix(TYPO_KEY)
    if key.startswith("email:"):
        return key.lower()
    return key


def cause_of(key: str, touches: Iterable[Carried]) -> str:
    """Why `key`, carried by the touchpoints given (of several people), is shared."""
    if key.startswith(PLACEHOLDER_KEY):
        return "placeholder"
    family = key.partition(":")[0]
    if family in _DEVICES:
        return _DEVICES[family]
    hazards = {h for t in touches for h in t.hazards}
    if family == "phone" and "shared_landline" in hazards:
        return "shared_landline"
    if family == "phone" and "recycled_number" in hazards:
        return "recycled_number"
    kinds = {k.partition(":")[0] for t in touches for k in t.carried if comparable(k) == key}
    if family == "email" and TYPO_KEY[:-1] in kinds:
        return "mistyped_email"
    return "hub"


def fusion_causes(touches: Sequence[Carried]) -> frozenset[str]:
    """The causes needed to connect the different people of one customer's touchpoints, tried
    in `CAUSES` order (the empty set for one person). `nothing_shared` when some stay apart."""
    people = sorted({t.person for t in touches})
    if len(people) < 2:
        return frozenset()
    holders: dict[str, set[int]] = {}
    for touch in touches:
        for key in touch.carried:
            holders.setdefault(comparable(key), set()).add(touch.person)
    bridges: dict[str, list[set[int]]] = {}
    for key in sorted(holders):
        if len(holders[key]) > 1:
            carrying = [t for t in touches if any(comparable(k) == key for k in t.carried)]
            bridges.setdefault(cause_of(key, carrying), []).append(holders[key])
    parent = {p: p for p in people}

    def root(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    needed: set[str] = set()
    for cause in CAUSES:
        for group in bridges.get(cause, []):
            first, *rest = sorted(group)
            for other in rest:
                a, b = root(first), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                    needed.add(cause)
    if len({root(p) for p in people}) > 1:
        needed.add(NOTHING_SHARED)
    return frozenset(needed)


def several_people_causes(
    touches: Sequence[Carried], customers: Sequence[str | None]
) -> dict[str, Any]:
    """Over every customer holding several people: how many need each cause (a customer needing
    two counts under both), how many need only one (`alone`), and how many are fused through a
    placeholder or hub."""
    members: dict[str, list[Carried]] = {}
    for touch, customer in zip(touches, customers, strict=True):
        if customer is not None:
            members.setdefault(customer, []).append(touch)
    found = [fusion_causes(m) for m in members.values()]
    fused = [causes for causes in found if causes]
    needing = Counter(cause for causes in fused for cause in causes)
    alone = Counter(next(iter(causes)) for causes in fused if len(causes) == 1)
    order = [*CAUSES, NOTHING_SHARED]
    return {
        "customers": len(fused),
        "needing": {c: needing[c] for c in order if needing[c]},
        "alone": {c: alone[c] for c in order if alone[c]},
        "through_placeholder_or_hub": sum(bool(c & THROUGH_PLACEHOLDER_OR_HUB) for c in fused),
    }

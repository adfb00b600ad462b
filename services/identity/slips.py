"""Which known emails a new one is a slip of, found without reading every email (pure).

A slip (`policy.one_slip_apart`) is one keystroke in the local part of an email of the same
domain: a letter missed, added, changed, or two swapped. Two local parts one such edit apart
always share a *slip key*: the local part itself or with one character left out (a change
leaves out the changed character from both; two swapped, either of them). So each email index
is filed under its keys when it is created (`domain.SlipKey`, rows of the identity store: a
handful of indexes per key, however many emails the tenant has), and a new email reads the
indexes under its own keys, then keeps those truly one slip apart.
"""

from __future__ import annotations

from services.identity.rules import Identifier

# A local part shorter than this is too short for one keystroke to tell a slip from another name
# (`policy.one_slip_apart` reads it too).
MIN_TYPO_LOCAL = 5


def slip_keys(identifier: Identifier) -> list[str]:
    """The keys an email is indexed and looked up under; none for anything else, or a local
    part too short to have slips."""
    if identifier.kind != "email":
        return []
    local, at, domain = identifier.value.rpartition("@")
    if not at or len(local) < MIN_TYPO_LOCAL:
        return []
    variants = dict.fromkeys([local, *(local[:i] + local[i + 1 :] for i in range(len(local)))])
    return [f"{domain}\x00{variant}" for variant in variants]

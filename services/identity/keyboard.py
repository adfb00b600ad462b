"""Which one-letter differences a finger makes: keys next to each other on the keyboard.

Used where a slip alone would merge two established customers: `maria@` and `mario@` are one edit
apart but `a` and `o` are far apart, so that is two people (and Spanish names that differ only by
their ending are common in one household), while `kateo@` for `mateo@` is a key next to the right
one. The layout is the Spanish QWERTY (`ñ` right of `l`; `,` `.` `-` right of `m`, so `.` sits below
`l`: `af.ores@` for `aflores@` is a slip), which matches the English one elsewhere.

A dot or a hyphen hit for a letter, or a letter for one, is a slip like any other; a dot or a hyphen
added beside a letter, missed, or written for the other, is not: `a.lopez@`, `alopez@` and
`a-lopez@` are three ways to write a name, and at most providers mailboxes that different people
may each hold.
"""

from __future__ import annotations

from functools import cache

ROWS = ("1234567890", "qwertyuiop", "asdfghjklñ", "zxcvbnm,.-")
SEPARATORS = frozenset(".-_")


@cache
def neighbours() -> dict[str, frozenset[str]]:
    """Each key's neighbours: either side on its row, and the two touching it on the rows above
    and below (each row sits half a key to the right of the one above it)."""
    where = {key: (row, col) for row, keys in enumerate(ROWS) for col, key in enumerate(keys)}
    near: dict[str, set[str]] = {key: set() for key in where}
    for key, (row, col) in where.items():
        touching = [(row, col - 1), (row, col + 1), (row - 1, col), (row - 1, col + 1)]
        touching += [(row + 1, col - 1), (row + 1, col)]
        for r, c in touching:
            if 0 <= r < len(ROWS) and 0 <= c < len(ROWS[r]):
                near[key].add(ROWS[r][c])
                near[ROWS[r][c]].add(key)
    return {key: frozenset(keys) for key, keys in near.items()}


def _adjacent(a: str, b: str) -> bool:
    return b in neighbours().get(a, frozenset())


def keyboard_slip(typed: str, meant: str) -> bool:
    """Whether one of the strings is the other with one slip of a finger: a key next to the right
    one, two neighbouring letters swapped, or a letter doubled or hit with its neighbour."""
    if typed == meant:
        return False
    if len(typed) == len(meant):
        diff = [i for i, (x, y) in enumerate(zip(typed, meant, strict=True)) if x != y]
        if len(diff) == 1:
            pair = {typed[diff[0]], meant[diff[0]]}
            return not pair <= SEPARATORS and _adjacent(*pair)
        i = diff[0]
        return diff == [i, i + 1] and typed[i] == meant[i + 1] and typed[i + 1] == meant[i]
    longer, shorter = (typed, meant) if len(typed) > len(meant) else (meant, typed)
    if len(longer) != len(shorter) + 1:
        return False
    for i, extra in enumerate(longer):
        if longer[:i] + longer[i + 1 :] == shorter:
            around = longer[i - 1 : i] + longer[i + 1 : i + 2]
            # `a.lopez` and `alopez`: another way to write a name, not a slip (see above).
            near = extra not in SEPARATORS and any(_adjacent(extra, c) for c in around)
            if extra in around or near:
                return True
    return False

"""Typing slips on a Spanish QWERTY keyboard, drawn from the keyboard's geometry.

A slip is one of what fingers do: hit a neighbouring key instead of the right one, hit both, swap
two letters, press a key twice or miss one. Neighbours are the keys whose centres lie within about
one key's width on the physical layout (rows staggered as on a real keyboard), so `gmail` becomes
`gmakl`, `gmial`, `gmaail` or `gmil` by chance, never from a list of known misspellings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import cache

# The Spanish (ES) ISO layout, unshifted, row by row, and how far each row starts to the right.
ROWS = ("1234567890'¡", "qwertyuiop`+", "asdfghjklñ´ç", "<zxcvbnm,.-")
ROW_OFFSETS = (0.0, 0.5, 0.75, 0.25)
REACH = 1.3  # key widths between centres that a finger slips across
# Keys a slip can produce inside an address: `,` `ñ` and `-` are real slips that still look like
# an address; a slip onto a dead key (´ `) or a symbol is left out, it types nothing visible.
TYPEABLE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789ñ,.-")


def _positions() -> dict[str, tuple[float, float]]:
    return {
        key: (column + ROW_OFFSETS[row], float(row))
        for row, keys in enumerate(ROWS)
        for column, key in enumerate(keys)
    }


@cache
def neighbours(key: str) -> tuple[str, ...]:
    """The typeable keys a finger aiming at `key` may hit instead."""
    positions = _positions()
    if key not in positions:
        return ()
    x, y = positions[key]
    return tuple(
        other
        for other, (ox, oy) in positions.items()
        if other != key and other in TYPEABLE and math.hypot(ox - x, oy - y) <= REACH
    )


def substitute(text: str, at: int, rng: random.Random) -> str | None:
    near = neighbours(text[at])
    return text[:at] + rng.choice(near) + text[at + 1 :] if near else None


def insert_neighbour(text: str, at: int, rng: random.Random) -> str | None:
    """Both keys hit: the neighbour lands before or after the intended one."""
    near = neighbours(text[at])
    if not near:
        return None
    extra = rng.choice(near)
    return (
        text[:at] + extra + text[at:]
        if rng.random() < 0.5
        else text[: at + 1] + extra + text[at + 1 :]
    )


def transpose(text: str, at: int, rng: random.Random) -> str | None:
    if at + 1 >= len(text) or text[at] == text[at + 1]:
        return None
    return text[:at] + text[at + 1] + text[at] + text[at + 2 :]


def double(text: str, at: int, rng: random.Random) -> str | None:
    return text[: at + 1] + text[at] + text[at + 1 :]


def drop(text: str, at: int, rng: random.Random) -> str | None:
    return text[:at] + text[at + 1 :] if len(text) > 2 else None


Slip = Callable[[str, int, random.Random], str | None]
# Rough shares of slips in typing studies: wrong key most often, then doubled, missed, swapped.
SLIPS: tuple[tuple[Slip, int], ...] = (
    (substitute, 35),
    (insert_neighbour, 15),
    (double, 15),
    (drop, 20),
    (transpose, 15),
)


def slip(text: str, rng: random.Random) -> str:
    """`text` with one slip at a letter or digit, chosen at random; `text` when none applies."""
    places = [i for i, ch in enumerate(text) if ch.isalnum()]
    for _ in range(10):
        if not places:
            break
        kind = rng.choices([s for s, _ in SLIPS], weights=[w for _, w in SLIPS])[0]
        typed = kind(text, rng.choice(places), rng)
        if typed and typed != text:
            return typed
    return text


def mistype_email(address: str, rng: random.Random) -> tuple[str, str]:
    """One slip in the local part or the domain name (never in the `@`); returns the typed
    address and where the slip fell (`local` or `domain`)."""
    local, _, domain = address.partition("@")
    if rng.random() < 0.5:
        return f"{slip(local, rng)}@{domain}", "local"
    return f"{local}@{slip(domain, rng)}", "domain"

"""Random draws shared by the population and the journeys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from random import Random
from typing import Any, TypeVar

T = TypeVar("T")


def cumulative(weights: Iterable[float]) -> tuple[float, ...]:
    """Cumulative weights: `Random.choices` bisects them instead of summing on every draw."""
    return tuple(accumulate(weights))


def by_share(table: Mapping[str, tuple[Any, ...]]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The keys of a table whose rows start with a share, and their cumulative shares."""
    return tuple(table), cumulative(row[0] for row in table.values())


def random_hex(rng: Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def random_digits(rng: Random, n: int) -> str:
    return str(rng.randrange(10**n)).zfill(n)


def pick(rng: Random, options: Sequence[T], cum_weights: Sequence[float]) -> T:
    """One of `options`, weighted by their cumulative weights."""
    return rng.choices(options, cum_weights=cum_weights)[0]

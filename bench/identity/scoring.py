"""Pairwise scoring of a clustering against known truth (pure), for the identity benchmarks.

Every score counts pairs of touchpoints. Precision: of the pairs filed under one customer, the
share that are truly one person. Recall: of the pairs that are one person, the share filed
together. Linkable recall: the same over pairs the data can link at all (see
`evidence_components`). Restricted to a hazard, a score counts the pairs with at least one
touchpoint carrying it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Truth(Protocol):
    @property
    def person(self) -> int: ...

    @property
    def evidence(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class PairScores:
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


def _c2(n: int) -> int:
    return n * (n - 1) // 2


def _pairs(counts: Counter[Any]) -> int:
    return sum(_c2(n) for n in counts.values())


def pair_scores(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> PairScores:
    """Pairwise scores of a clustering: item i is truly `truth[i]` and was put in `predicted[i]`."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted must label the same items")
    return PairScores(
        true_pairs=_pairs(Counter(truth)),
        predicted_pairs=_pairs(Counter(predicted)),
        correct_pairs=_pairs(Counter(zip(truth, predicted, strict=True))),
    )


def pairs_involving(groups: Sequence[Hashable], marked: Sequence[bool]) -> int:
    """Pairs of items in one group of which at least one item is marked."""
    everyone = Counter(groups)
    unmarked = Counter(g for g, m in zip(groups, marked, strict=True) if not m)
    return sum(_c2(n) - _c2(unmarked[g]) for g, n in everyone.items())


def evidence_components(events: Sequence[Truth]) -> list[int]:
    """Per touchpoint, which group of its person's touchpoints it is linked to by evidence: two
    touchpoints of one person are linked when they share an identifier that is truly theirs alone,
    directly or through others. An identifier several people use (a family tablet or landline, a
    store kiosk, a number that changed hands) tells nobody apart, so it links nothing here. Pairs
    in different groups cannot be joined by any resolver that sees only identifiers."""
    users: dict[str, set[int]] = {}
    for touch in events:
        for identifier in touch.evidence:
            users.setdefault(identifier, set()).add(touch.person)
    parent = list(range(len(events)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[tuple[int, str], int] = {}
    for i, touch in enumerate(events):
        for identifier in touch.evidence:
            if len(users[identifier]) > 1:
                continue
            j = first_seen.setdefault((touch.person, identifier), i)
            parent[root(i)] = root(j)
    return [root(i) for i in range(len(events))]


@dataclass(frozen=True)
class Scores:
    """Pair counts of one slice of the touchpoints (all of them, or those with one hazard)."""

    touchpoints: int
    predicted_pairs: int
    correct_pairs: int
    true_pairs: int
    found_pairs: int
    linkable_pairs: int
    found_linkable_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.found_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def linkable_recall(self) -> float:
        return self.found_linkable_pairs / self.linkable_pairs if self.linkable_pairs else 1.0

    def as_dict(self) -> dict[str, float | int]:
        counts = dict(self.__dict__)
        rates = {"precision": self.precision, "recall": self.recall}
        return counts | rates | {"linkable_recall": self.linkable_recall}


def scores(
    persons: Sequence[int],
    predicted: Sequence[Hashable],
    components: Sequence[int],
    marked: Sequence[bool],
) -> Scores:
    """The pair counts of the pairs touching a marked touchpoint (mark all for the whole)."""
    by_both = list(zip(persons, predicted, strict=True))
    by_component = list(zip(components, predicted, strict=True))
    return Scores(
        touchpoints=sum(marked),
        predicted_pairs=pairs_involving(predicted, marked),
        correct_pairs=pairs_involving(by_both, marked),
        true_pairs=pairs_involving(persons, marked),
        found_pairs=pairs_involving(by_both, marked),
        linkable_pairs=pairs_involving(components, marked),
        found_linkable_pairs=pairs_involving(by_component, marked),
    )

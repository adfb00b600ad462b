"""Pairwise scoring of a clustering against known truth (pure), for the identity benchmark."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.identity.workload import Touch


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


def _pairs(counts: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in counts.values())


def pair_scores(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> PairScores:
    """Pairwise scores of a clustering: item i is truly `truth[i]` and was put in `predicted[i]`."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted must label the same items")
    return PairScores(
        true_pairs=_pairs(Counter(truth)),
        predicted_pairs=_pairs(Counter(predicted)),
        correct_pairs=_pairs(Counter(zip(truth, predicted, strict=True))),
    )


def evidence_components(events: Sequence[Touch]) -> list[int]:
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


def hazard_breakdown(
    events: Sequence[Touch], predicted: Sequence[str], components: Sequence[int]
) -> dict[str, dict[str, int]]:
    """Per hazard: touchpoints carrying it, wrong pairs and missed linkable pairs they are part of."""
    table: dict[str, Counter[str]] = {}
    for touch in events:
        for hazard in touch.hazards or {"none"}:
            table.setdefault(hazard, Counter())["touchpoints"] += 1
    for i, j in _pairs_within(predicted):
        if events[i].person != events[j].person:
            _count(table, events[i], events[j], "wrong_pairs")
    for i, j in _pairs_within(components):
        if predicted[i] != predicted[j]:
            _count(table, events[i], events[j], "missed_pairs")
    return {
        h: {k: c[k] for k in ("touchpoints", "wrong_pairs", "missed_pairs")}
        for h, c in table.items()
    }


def _pairs_within(labels: Sequence[Hashable]) -> list[tuple[int, int]]:
    groups: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return [(a, b) for g in groups.values() for k, a in enumerate(g) for b in g[k + 1 :]]


def _count(table: dict[str, Counter[str]], first: Touch, second: Touch, column: str) -> None:
    for hazard in (first.hazards | second.hazards) or {"none"}:
        table.setdefault(hazard, Counter())[column] += 1

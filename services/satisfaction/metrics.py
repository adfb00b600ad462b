"""Satisfaction metrics as named, versioned definitions (METRICS.md v1): the Python reference.

A definition never changes once published: a new formula is a new version computed beside the old
one. The warehouse computes the same formulas in SQL (`services.satisfaction.sql`); tests hold the
two equal. Every value comes with its sample size `n`, and an empty sample gives `None`, never a
division by zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

# Views flag aggregates over fewer responses than this as low confidence (METRICS.md).
MIN_CONFIDENT_N = 30
Z95 = 1.959963984540054  # two-sided 95% normal quantile
IntervalMethod = Literal["wilson", "normal"]
Interval = tuple[float, float]


@dataclass(frozen=True)
class MetricValue:
    """One aggregate, the number of responses it was computed from, and its 95% confidence
    interval (None when the sample cannot give one). The interval is not part of equality: SQL
    and Python compute it with different float rounding."""

    value: float | None
    n: int
    interval: Interval | None = field(default=None, compare=False)

    @property
    def low_confidence(self) -> bool:
        return self.n < MIN_CONFIDENT_N


@dataclass(frozen=True)
class Answer:
    """The part of a survey response every definition reads."""

    kind: str
    score: int
    scale: str


def _share(numerator: float, n: int) -> MetricValue:
    return MetricValue(numerator / n if n else None, n)


def compute_nps(scores: Sequence[int]) -> MetricValue:
    """Promoters 9–10, detractors 0–6: 100 × (promoters − detractors) / responses."""
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return _share(100 * (promoters - detractors), len(scores))


def compute_csat(scores: Sequence[int]) -> MetricValue:
    """CSAT% = 100 × responses rated 4 or 5 / responses."""
    return _share(100 * sum(1 for s in scores if s >= 4), len(scores))


def compute_csat_mean(scores: Sequence[int]) -> MetricValue:
    """The mean CSAT rating, a metric of its own beside CSAT%."""
    return _share(sum(scores), len(scores))


def compute_ces(scores: Sequence[int]) -> MetricValue:
    """CES 2.0: the mean 1–7 agreement rating."""
    return _share(sum(scores), len(scores))


def compute_ces_easy(scores: Sequence[int]) -> MetricValue:
    """%easy = 100 × ratings 5–7 / responses."""
    return _share(100 * sum(1 for s in scores if s >= 5), len(scores))


def wilson_interval(percent: float, n: int) -> Interval | None:
    """Wilson score 95% interval of a percentage of n responses (sound at small n and near 0/100)."""
    if n == 0:
        return None
    p, z2 = percent / 100, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(max(0.0, p * (1 - p)) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Exactly 0 or 100 at the ends, never past the value: the float arithmetic left 2.8e-15
    # above a share of 0 (found by a review).
    return within((100 * (centre - half), 100 * (centre + half)), percent, (0.0, 100.0))


def within(interval: Interval, value: float, bounds: Interval) -> Interval:
    """The interval cut to the values the metric can take, and holding its own value."""
    low, high = interval
    floor, ceiling = bounds
    return (min(max(low, floor), value), max(min(high, ceiling), value))


def normal_interval(
    mean: float, sum_squares: float, n: int, bounds: Interval | None = None
) -> Interval | None:
    """mean ± 1.96 × s / √n, s the sample standard deviation of the per-response contributions
    (for NPS: +100 promoter, 0 passive, −100 detractor), cut to `bounds` (the values the metric
    can take: an NPS of 33 from 3 answers gave −97 to 164 on a −100…100 scale). Needs two
    responses."""
    if n < 2:
        return None
    variance = max(0.0, (sum_squares - n * mean * mean) / (n - 1))
    half = Z95 * math.sqrt(variance / n)
    interval = (mean - half, mean + half)
    return interval if bounds is None else within(interval, mean, bounds)


@dataclass(frozen=True)
class Definition:
    """A published metric: which answers it reads (kind and scale), its formula, and how its
    confidence interval is computed. Every formula is the mean of a per-response contribution
    (`contribution`), which is what the interval is about."""

    name: str
    version: int
    kind: str
    scale: str
    description: str
    formula: Callable[[Sequence[int]], MetricValue]
    interval_method: IntervalMethod
    contribution: Callable[[int], float]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def evaluate(self, answers: Iterable[Answer]) -> MetricValue:
        # The scale is part of the input: an answer on another scale is not this metric's sample.
        scores = [a.score for a in answers if self.reads(a)]
        result = self.formula(scores)
        squares = sum(self.contribution(s) ** 2 for s in scores)
        return self.with_interval(result.value, result.n, squares)

    def with_interval(self, value: float | None, n: int, sum_squares: float) -> MetricValue:
        """The value with its 95% interval, from n and the sum of squared contributions."""
        if value is None:
            return MetricValue(None, n)
        if self.interval_method == "wilson":
            return MetricValue(value, n, wilson_interval(value, n))
        return MetricValue(value, n, normal_interval(value, sum_squares, n, self.bounds))

    @property
    def bounds(self) -> Interval:
        """The lowest and highest value the metric can take: its contribution's over the scale."""
        first, _, last = self.scale.partition("-")
        contributions = [self.contribution(s) for s in range(int(first), int(last) + 1)]
        return (min(contributions), max(contributions))

    @property
    def interval_description(self) -> str:
        if self.interval_method == "wilson":
            return "95% Wilson score interval of the percentage"
        return (
            "95% normal interval: value ± 1.96 × s/√n (s: sample standard deviation), n ≥ 2, "
            "cut to the values the metric can take"
        )

    def reads(self, answer: Answer) -> bool:
        return answer.kind == self.kind and answer.scale == self.scale


def _nps_contribution(score: int) -> float:
    return 100.0 if score >= 9 else -100.0 if score <= 6 else 0.0


def _at_least(threshold: int) -> Callable[[int], float]:
    return lambda score: 100.0 if score >= threshold else 0.0


def _itself(score: int) -> float:
    return float(score)


NPS_V1 = Definition(
    "nps", 1, "nps", "0-10", "100 × (promoters 9–10 − detractors 0–6) / responses", compute_nps,
    "normal", _nps_contribution,
)  # fmt: skip
CSAT_V1 = Definition(
    "csat", 1, "csat", "1-5", "100 × responses rated 4 or 5 / responses", compute_csat,
    "wilson", _at_least(4),
)  # fmt: skip
CSAT_MEAN_V1 = Definition(
    "csat_mean", 1, "csat", "1-5", "mean CSAT rating (1–5)", compute_csat_mean,
    "normal", _itself,
)  # fmt: skip
CES_V1 = Definition(
    "ces", 1, "ces", "1-7", "mean CES 2.0 rating (1–7)", compute_ces, "normal", _itself
)
CES_EASY_V1 = Definition(
    "ces_easy", 1, "ces", "1-7", "100 × ratings 5–7 / responses", compute_ces_easy,
    "wilson", _at_least(5),
)  # fmt: skip

DEFINITIONS: tuple[Definition, ...] = (NPS_V1, CSAT_V1, CSAT_MEAN_V1, CES_V1, CES_EASY_V1)
BY_KEY: dict[str, Definition] = {d.key: d for d in DEFINITIONS}


def evaluate_all(answers: Iterable[Answer]) -> dict[str, MetricValue]:
    """Every published definition over the same answers, keyed `name@version`."""
    sample = list(answers)
    return {d.key: d.evaluate(sample) for d in DEFINITIONS}

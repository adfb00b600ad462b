"""Satisfaction metrics as named, versioned definitions (METRICS.md v1): the Python reference.

A definition never changes once published: a new formula is a new version computed beside the old
one. The warehouse computes the same formulas in SQL (`services.satisfaction.sql`); tests hold the
two equal. Every value comes with its sample size `n`, and an empty sample gives `None`, never a
division by zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Views flag aggregates over fewer responses than this as low confidence (METRICS.md).
MIN_CONFIDENT_N = 30


@dataclass(frozen=True)
class MetricValue:
    """One aggregate and the number of responses it was computed from."""

    value: float | None
    n: int

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


@dataclass(frozen=True)
class Definition:
    """A published metric: which answers it reads (kind and scale) and its formula."""

    name: str
    version: int
    kind: str
    scale: str
    description: str
    formula: Callable[[Sequence[int]], MetricValue]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def evaluate(self, answers: Iterable[Answer]) -> MetricValue:
        # The scale is part of the input: an answer on another scale is not this metric's sample.
        return self.formula([a.score for a in answers if self.reads(a)])

    def reads(self, answer: Answer) -> bool:
        return answer.kind == self.kind and answer.scale == self.scale


NPS_V1 = Definition(
    "nps", 1, "nps", "0-10", "100 × (promoters 9–10 − detractors 0–6) / responses", compute_nps
)
CSAT_V1 = Definition(
    "csat", 1, "csat", "1-5", "100 × responses rated 4 or 5 / responses", compute_csat
)
CSAT_MEAN_V1 = Definition(
    "csat_mean", 1, "csat", "1-5", "mean CSAT rating (1–5)", compute_csat_mean
)
CES_V1 = Definition("ces", 1, "ces", "1-7", "mean CES 2.0 rating (1–7)", compute_ces)
CES_EASY_V1 = Definition(
    "ces_easy", 1, "ces", "1-7", "100 × ratings 5–7 / responses", compute_ces_easy
)

DEFINITIONS: tuple[Definition, ...] = (NPS_V1, CSAT_V1, CSAT_MEAN_V1, CES_V1, CES_EASY_V1)
BY_KEY: dict[str, Definition] = {d.key: d for d in DEFINITIONS}


def evaluate_all(answers: Iterable[Answer]) -> dict[str, MetricValue]:
    """Every published definition over the same answers, keyed `name@version`."""
    sample = list(answers)
    return {d.key: d.evaluate(sample) for d in DEFINITIONS}

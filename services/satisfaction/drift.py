"""Touchpoint drift alerts (`drift@1`): a metric that fell significantly below the touchpoint's own
recent baseline. Pure: the same daily samples always give the same alerts, with the same ids.

A **period** is a closed UTC day; its **baseline** is the touchpoint's answers of the 28 days
before it (every channel of the touchpoint together: the attributed touchpoint, as the cells).
The test is one-sided, at level `ALPHA`, and runs only when both samples have at least
`MIN_DRIFT_N` answers:
- `csat@1` (CSAT%): two-proportion z-test with the pooled proportion;
- `nps@1` and `ces@1` (means of per-answer scores): Welch's t-test.
The drop is `baseline − period`, with its 95% confidence interval (normal for a difference of
proportions, Welch's t for means).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.satisfaction.metrics import BY_KEY, Z95

DEFINITION = "drift@1"
RULE = "drift"
ALPHA = 0.01  # one-sided: a false alarm on 1 in 100 touchpoint-metric-days of pure noise
HIGH_ALPHA = 0.001
MIN_DRIFT_N = 30  # METRICS.md's low-confidence bound, for the period and for the baseline
BASELINE_DAYS = 28
DAY_S = 86_400
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "cem:satisfaction:drift")

Test = Literal["two_proportion_z", "welch_t"]


@dataclass(frozen=True)
class DriftMetric:
    """A metric drift watches: which answers, and each answer's contribution to the mean."""

    key: str
    kind: str
    scale: str
    test: Test
    unit: str

    def contribution(self, score: int) -> float:
        """The answer's share of the mean: the published definition's (metrics.py)."""
        return BY_KEY[self.key].contribution(score)

    def drives(self, score: int) -> bool:
        """Whether an answer pulls the metric down: the answers an alert links to."""
        return self.contribution(score) < {"csat": 100.0, "nps": 0.0}.get(self.kind, 5.0)


DRIFT_METRICS: tuple[DriftMetric, ...] = (
    DriftMetric("csat@1", "csat", "1-5", "two_proportion_z", "percentage points"),
    DriftMetric("nps@1", "nps", "0-10", "welch_t", "NPS points"),
    DriftMetric("ces@1", "ces", "1-7", "welch_t", "points of mean rating"),
)


@dataclass(frozen=True)
class Sample:
    """Answers of one metric on one touchpoint: count, sum and sum of squared contributions."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.n + other.n, self.total + other.total, self.squares + other.squares)

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        """Sample variance (n − 1)."""
        return max(0.0, (self.squares - self.n * self.mean**2) / (self.n - 1))


def sample_of(metric: DriftMetric, scores: Iterable[int]) -> Sample:
    values = [metric.contribution(s) for s in scores]
    return Sample(len(values), sum(values), sum(v * v for v in values))


@dataclass(frozen=True)
class Drop:
    """A significant fall of the period below its baseline."""

    drop: float  # baseline − period, in the metric's unit
    interval: tuple[float, float]  # 95% confidence interval of the drop
    p_value: float  # one-sided


def _proportion_drop(period: Sample, baseline: Sample) -> Drop:
    p1, p0 = period.mean / 100, baseline.mean / 100
    pooled = (period.total + baseline.total) / 100 / (period.n + baseline.n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / period.n + 1 / baseline.n))
    z = (p0 - p1) / se_pooled if se_pooled > 0 else 0.0
    se = math.sqrt(p1 * (1 - p1) / period.n + p0 * (1 - p0) / baseline.n)
    half = Z95 * se
    drop = 100 * (p0 - p1)
    return Drop(drop, (drop - 100 * half, drop + 100 * half), _normal_sf(z))


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def _mean_drop(period: Sample, baseline: Sample) -> Drop:
    v1, v0 = period.variance / period.n, baseline.variance / baseline.n
    drop = baseline.mean - period.mean
    se = math.sqrt(v1 + v0)
    if se == 0:  # every answer alike in both: a drop is certain, no drop is none
        return Drop(drop, (drop, drop), 0.0 if drop > 0 else 1.0)
    df = (v1 + v0) ** 2 / (v1**2 / (period.n - 1) + v0**2 / (baseline.n - 1))
    # Imported here, not at the top: scipy takes a second to import, which every `cem` command
    # that reaches this module (retention, the CLI) would pay for a test it never runs.
    from scipy import special

    half = float(special.stdtrit(df, 0.975)) * se  # Student's t quantile
    return Drop(drop, (drop - half, drop + half), float(special.stdtr(df, -drop / se)))


def significant_drop(metric: DriftMetric, period: Sample, baseline: Sample) -> Drop | None:
    """The drop when both samples are large enough and it is significant at `ALPHA`, else None."""
    if period.n < MIN_DRIFT_N or baseline.n < MIN_DRIFT_N:
        return None
    test = _proportion_drop if metric.test == "two_proportion_z" else _mean_drop
    found = test(period, baseline)
    return found if found.drop > 0 and found.p_value < ALPHA else None


@dataclass(frozen=True)
class DriftAlert:
    alert_id: str
    touchpoint: str
    metric: DriftMetric
    period_start: int  # epoch seconds, UTC day
    period: Sample
    baseline: Sample
    found: Drop

    @property
    def severity(self) -> str:
        return "high" if self.found.p_value < HIGH_ALPHA else "medium"


def drift_alert_id(tenant_id: str, touchpoint: str, metric: str, period_start: int) -> str:
    """Deterministic: the same touchpoint, metric and day always give the same id."""
    name = f"{tenant_id}/{touchpoint}/{metric}/{period_start}/{DEFINITION}"
    return str(uuid.uuid5(_NAMESPACE, name))


# Daily samples by (touchpoint, metric key, day start in epoch seconds).
Daily = Mapping[tuple[str, str, int], Sample]


def baseline_of(daily: Daily, touchpoint: str, metric: str, day: int) -> Sample:
    days = (day - DAY_S * back for back in range(1, BASELINE_DAYS + 1))
    return sum((daily.get((touchpoint, metric, d), Sample()) for d in days), Sample())


def detect(tenant_id: str, daily: Daily, days: Sequence[int]) -> list[DriftAlert]:
    """Drift alerts of the given (closed) days, oldest first."""
    metrics = {m.key: m for m in DRIFT_METRICS}
    found: list[DriftAlert] = []
    wanted = set(days)
    for touchpoint, key, day in sorted(k for k in daily if k[2] in wanted):
        metric, period = metrics[key], daily[(touchpoint, key, day)]
        baseline = baseline_of(daily, touchpoint, key, day)
        drop = significant_drop(metric, period, baseline)
        if drop is not None:
            alert_id = drift_alert_id(tenant_id, touchpoint, key, day)
            found.append(DriftAlert(alert_id, touchpoint, metric, day, period, baseline, drop))
    return sorted(found, key=lambda a: (a.period_start, a.alert_id))


def daily_samples(answers: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, int], Sample]:
    """Daily samples from attributed answers (`touchpoint`, `kind`, `scale`, `score`,
    `answered_at` in epoch micros): the Python reference of the SQL aggregate."""
    found: dict[tuple[str, str, int], Sample] = {}
    for answer in answers:
        for metric in DRIFT_METRICS:
            if (answer["kind"], answer["scale"]) == (metric.kind, metric.scale):
                day = answer["answered_at"] // 1_000_000 // DAY_S * DAY_S
                key = (answer["touchpoint"], metric.key, day)
                one = sample_of(metric, [int(answer["score"])])
                found[key] = found.get(key, Sample()) + one
    return found

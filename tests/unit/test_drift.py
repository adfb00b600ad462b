"""drift@1, by hand and by simulation: the z-test and Welch's t-test against independent
computations, the minimum sample, the baseline window, deterministic ids, and the false-alarm
rate and power measured over many seeds."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from scipy import stats

from services.satisfaction.drift import (
    ALPHA,
    BASELINE_DAYS,
    DAY_S,
    DRIFT_METRICS,
    Sample,
    baseline_of,
    daily_samples,
    detect,
    drift_alert_id,
    sample_of,
    significant_drop,
)

CSAT, NPS, CES = DRIFT_METRICS
DAY0 = 1_780_012_800  # a UTC midnight (2026-05-29)


def csat_scores(good: int, bad: int) -> list[int]:
    return [5] * good + [2] * bad


def test_csat_drop_is_a_pooled_two_proportion_z_test() -> None:
    # Period 24 of 40 satisfied (60%), baseline 170 of 200 (85%): by hand, pooled p = 194/240,
    # z = 0.25 / sqrt(p(1−p)(1/40 + 1/200)), one-sided p = erfc(z/√2)/2.
    period, baseline = sample_of(CSAT, csat_scores(24, 16)), sample_of(CSAT, csat_scores(170, 30))
    pooled = 194 / 240
    z = 0.25 / math.sqrt(pooled * (1 - pooled) * (1 / 40 + 1 / 200))
    found = significant_drop(CSAT, period, baseline)
    assert found is not None
    assert found.drop == pytest.approx(25.0)
    assert found.p_value == pytest.approx(math.erfc(z / math.sqrt(2)) / 2)
    se = math.sqrt(0.6 * 0.4 / 40 + 0.85 * 0.15 / 200)
    assert found.interval == pytest.approx((25 - 100 * 1.959964 * se, 25 + 100 * 1.959964 * se))


def test_means_use_welchs_t_test() -> None:
    rng = random.Random(7)
    period_scores = [rng.choice([3, 4, 5, 6, 7]) for _ in range(40)]
    baseline_scores = [rng.choice([5, 6, 7, 7]) for _ in range(120)]
    found = significant_drop(CES, sample_of(CES, period_scores), sample_of(CES, baseline_scores))
    reference = stats.ttest_ind(period_scores, baseline_scores, equal_var=False, alternative="less")
    assert found is not None
    assert found.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    mean = sum(baseline_scores) / 120 - sum(period_scores) / 40
    assert found.drop == pytest.approx(mean)


def test_nps_scores_are_plus_100_0_minus_100_per_answer() -> None:
    sample = sample_of(NPS, [10, 9, 8, 7, 6, 0])
    assert (sample.n, sample.total, sample.squares) == (6, 0.0, 40_000.0)


def test_a_small_sample_raises_nothing_however_bad() -> None:
    baseline = sample_of(CSAT, csat_scores(170, 30))
    assert significant_drop(CSAT, sample_of(CSAT, csat_scores(0, 29)), baseline) is None
    assert significant_drop(CSAT, sample_of(CSAT, csat_scores(0, 30)), baseline) is not None
    tiny_baseline = sample_of(CSAT, csat_scores(29, 0))
    assert significant_drop(CSAT, sample_of(CSAT, csat_scores(0, 40)), tiny_baseline) is None


def test_a_rise_or_a_drop_within_noise_raises_nothing() -> None:
    baseline = sample_of(CSAT, csat_scores(160, 40))  # 80%
    assert significant_drop(CSAT, sample_of(CSAT, csat_scores(38, 2)), baseline) is None
    assert significant_drop(CSAT, sample_of(CSAT, csat_scores(30, 10)), baseline) is None  # 75%


def test_identical_answers_compare_without_dividing_by_zero() -> None:
    same = sample_of(CES, [7] * 40)
    assert significant_drop(CES, same, same) is None
    found = significant_drop(CES, sample_of(CES, [2] * 40), same)
    assert found is not None and found.drop == 5.0 and found.p_value == 0.0


def test_the_baseline_is_the_28_days_before_the_period() -> None:
    one = Sample(1, 100.0, 10_000.0)
    daily = {("tp", "csat@1", DAY0 - DAY_S * back): one for back in range(0, BASELINE_DAYS + 2)}
    baseline = baseline_of(daily, "tp", "csat@1", DAY0)
    assert baseline.n == BASELINE_DAYS  # not the day itself, nor the 29th day before


def csat_drop_answers(touchpoint: str) -> list[dict[str, Any]]:
    """CSAT answers of a touchpoint: 90% satisfied on each of the 28 days before DAY0 (280
    answers), then 50% on DAY0 (40): a drop of 40 points."""
    answers = [
        {"touchpoint": touchpoint, "kind": "csat", "scale": "1-5", "score": 5 if i % 10 else 2,
         "answered_at": (DAY0 - DAY_S * (1 + i % 28)) * 1_000_000 + i}
        for i in range(280)
    ]  # fmt: skip
    return answers + [
        {"touchpoint": touchpoint, "kind": "csat", "scale": "1-5", "score": 1 if i % 2 else 4,
         "answered_at": DAY0 * 1_000_000 + i}
        for i in range(40)
    ]  # fmt: skip


def test_detect_names_the_day_and_gives_the_same_id_every_time() -> None:
    daily = daily_samples(csat_drop_answers("tp"))
    [alert] = detect("t1", daily, [DAY0])
    assert (alert.touchpoint, alert.metric.key, alert.period_start) == ("tp", "csat@1", DAY0)
    assert (alert.period.n, alert.baseline.n) == (40, 280)
    assert alert.found.drop == pytest.approx(40.0)
    assert alert.alert_id == drift_alert_id("t1", "tp", "csat@1", DAY0)
    assert detect("t1", daily, [DAY0 - DAY_S]) == []  # the baseline days raise nothing


def simulate(seed: int, today: float, n: int = 60) -> bool:
    """Whether a touchpoint with CSAT 80% for 28 days and `today` on the last one alerts."""
    rng = random.Random(seed)
    daily = {
        ("tp", "csat@1", DAY0 - DAY_S * back): sample_of(
            CSAT, [5 if rng.random() < 0.8 else 2 for _ in range(n)]
        )
        for back in range(1, BASELINE_DAYS + 1)
    }
    daily[("tp", "csat@1", DAY0)] = sample_of(
        CSAT, [5 if rng.random() < today else 2 for _ in range(n)]
    )
    return bool(detect("t", daily, [DAY0]))


def test_noise_rarely_alerts_and_a_real_drop_alerts_within_one_day() -> None:
    seeds = range(400)
    false_alarms = sum(simulate(seed, 0.8) for seed in seeds) / len(seeds)
    detected = sum(simulate(seed, 0.55) for seed in seeds) / len(seeds)
    print(
        f"drift@1 CSAT, n=60/day: false alarms {false_alarms:.2%}, drop 80→55% found {detected:.2%}"
    )
    assert false_alarms <= 2.5 * ALPHA
    assert detected >= 0.95

"""The v1 metric definitions behave as METRICS.md defines them."""

from __future__ import annotations

import math
from statistics import fmean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.satisfaction.metrics import (
    BY_KEY,
    DEFINITIONS,
    MIN_CONFIDENT_N,
    Answer,
    Definition,
    MetricValue,
    compute_ces,
    compute_ces_easy,
    compute_csat,
    compute_csat_mean,
    compute_nps,
    evaluate_all,
)

nps_scores = st.lists(st.integers(0, 10), max_size=60)
csat_scores = st.lists(st.integers(1, 5), max_size=60)
ces_scores = st.lists(st.integers(1, 7), max_size=60)


def _nps_contribution(score: int) -> int:
    """Each answer as METRICS.md classifies it: promoter +100, passive 0, detractor −100."""
    if score >= 9:
        return 100
    return 0 if score >= 7 else -100


@settings(max_examples=50)
@given(nps_scores.filter(bool))
def test_nps_is_promoters_minus_detractors_over_responses(scores: list[int]) -> None:
    result = compute_nps(scores)
    assert result.n == len(scores)
    assert result.value == pytest.approx(fmean(_nps_contribution(s) for s in scores))
    assert result.value is not None and -100 <= result.value <= 100


@settings(max_examples=50)
@given(csat_scores.filter(bool))
def test_csat_is_share_of_4_and_5(scores: list[int]) -> None:
    result = compute_csat(scores)
    assert result.value == pytest.approx(100 * fmean(s >= 4 for s in scores))
    assert result.value is not None and 0 <= result.value <= 100
    assert result.n == len(scores)


@settings(max_examples=50)
@given(csat_scores.filter(bool))
def test_csat_mean_is_the_mean_rating(scores: list[int]) -> None:
    result = compute_csat_mean(scores)
    assert result.value == pytest.approx(fmean(scores))
    assert result.value is not None and 1 <= result.value <= 5


@settings(max_examples=50)
@given(ces_scores.filter(bool))
def test_ces_is_mean_and_easy_is_share_of_5_to_7(scores: list[int]) -> None:
    assert compute_ces(scores).value == pytest.approx(fmean(scores))
    assert compute_ces_easy(scores).value == pytest.approx(100 * fmean(s >= 5 for s in scores))
    assert compute_ces_easy(scores).n == compute_ces(scores).n == len(scores)


@pytest.mark.parametrize(
    ("score", "expected"), [(0, -100.0), (6, -100.0), (7, 0.0), (8, 0.0), (9, 100.0), (10, 100.0)]
)
def test_nps_class_boundaries(score: int, expected: float) -> None:
    assert compute_nps([score]).value == expected


@pytest.mark.parametrize(("score", "satisfied"), [(1, False), (3, False), (4, True), (5, True)])
def test_csat_boundary_between_3_and_4(score: int, satisfied: bool) -> None:
    assert compute_csat([score]).value == (100.0 if satisfied else 0.0)


@pytest.mark.parametrize(("score", "easy"), [(1, False), (4, False), (5, True), (7, True)])
def test_ces_easy_boundary_between_4_and_5(score: int, easy: bool) -> None:
    assert compute_ces_easy([score]).value == (100.0 if easy else 0.0)


def test_a_mixed_nps_sample() -> None:
    # two promoters, two passives, two detractors: they cancel out
    assert compute_nps([10, 9, 8, 7, 6, 0]) == MetricValue(0.0, 6)
    # three promoters and one detractor of four: 100 × (3 − 1) / 4
    assert compute_nps([9, 9, 10, 3]) == MetricValue(50.0, 4)


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.key)
def test_an_empty_sample_has_no_value_and_n_zero(definition: Definition) -> None:
    result = definition.evaluate([])
    assert result == MetricValue(None, 0)
    assert result.low_confidence


@pytest.mark.parametrize(("n", "low"), [(1, True), (MIN_CONFIDENT_N - 1, True), (30, False)])
def test_low_confidence_below_30_responses(n: int, low: bool) -> None:
    assert MIN_CONFIDENT_N == 30
    assert compute_csat([5] * n).low_confidence is low


def test_definitions_are_named_and_versioned() -> None:
    assert set(BY_KEY) == {"nps@1", "csat@1", "csat_mean@1", "ces@1", "ces_easy@1"}
    assert {(d.kind, d.scale) for d in DEFINITIONS} == {
        ("nps", "0-10"),
        ("csat", "1-5"),
        ("ces", "1-7"),
    }


answers = st.one_of(
    st.builds(Answer, st.just("nps"), st.integers(0, 10), st.just("0-10")),
    st.builds(Answer, st.just("csat"), st.integers(1, 5), st.just("1-5")),
    st.builds(Answer, st.just("ces"), st.integers(1, 7), st.just("1-7")),
)


@settings(max_examples=40)
@given(st.lists(answers, max_size=80))
def test_each_definition_reads_only_its_own_kind(mixed: list[Answer]) -> None:
    results = evaluate_all(mixed)
    by_kind = {k: [a.score for a in mixed if a.kind == k] for k in ("nps", "csat", "ces")}
    assert results["nps@1"] == compute_nps(by_kind["nps"])
    assert results["csat@1"] == compute_csat(by_kind["csat"])
    assert results["csat_mean@1"] == compute_csat_mean(by_kind["csat"])
    assert results["ces@1"] == compute_ces(by_kind["ces"])
    assert results["ces_easy@1"] == compute_ces_easy(by_kind["ces"])
    assert all(r.value is None or math.isfinite(r.value) for r in results.values())


def test_an_answer_on_another_scale_is_not_in_the_sample() -> None:
    # A future 0-10 CSAT must not leak into csat@1, whose input is the 1-5 scale.
    result = BY_KEY["csat@1"].evaluate([Answer("csat", 5, "1-5"), Answer("csat", 9, "0-10")])
    assert result == MetricValue(100.0, 1)


def test_wilson_interval_of_a_share_matches_its_textbook_value() -> None:
    from services.satisfaction.metrics import wilson_interval

    low, high = wilson_interval(80.0, 10)  # 8 of 10: 49.0 – 94.3 (Wilson 1927, z = 1.96)
    assert (round(low, 1), round(high, 1)) == (49.0, 94.3)
    assert wilson_interval(50.0, 0) is None


def test_normal_interval_needs_two_responses_and_narrows_with_n() -> None:
    from services.satisfaction.metrics import CES_V1, Answer

    one = CES_V1.evaluate([Answer("ces", 5, "1-7")])
    assert one.interval is None
    few = CES_V1.evaluate([Answer("ces", s, "1-7") for s in (4, 5, 6)])
    many = CES_V1.evaluate([Answer("ces", s, "1-7") for s in (4, 5, 6) * 10])
    assert few.value == many.value == 5.0
    assert few.interval is not None and many.interval is not None
    assert few.interval[0] < many.interval[0] < 5.0 < many.interval[1] < few.interval[1]
    low, high = few.interval  # s = 1: 5 ± 1.96 × 1 / √3, inside the 1–7 scale
    assert high - 5.0 == pytest.approx(1.959963984540054 / 3**0.5)
    assert 5.0 - low == pytest.approx(1.959963984540054 / 3**0.5)


def test_an_interval_stays_within_the_values_its_metric_can_take() -> None:
    # Found by a review: an NPS of 33 from three answers had −97 to 164 on a −100…100 scale, a
    # CES of 5 from (3, 5, 7) went past 7, and a share of 0 had its lower bound 2.8e-15 above it.
    from services.satisfaction.metrics import CES_V1, NPS_V1, wilson_interval

    nps = NPS_V1.evaluate([Answer("nps", s, "0-10") for s in (10, 10, 0)])
    assert nps.value == pytest.approx(100 / 3) and nps.interval is not None
    assert nps.interval[0] > -100.0 and nps.interval[1] == 100.0
    ces = CES_V1.evaluate([Answer("ces", s, "1-7") for s in (3, 5, 7)])
    assert ces.interval is not None and ces.interval[1] == 7.0 and 1.0 < ces.interval[0] < 5.0
    assert wilson_interval(0.0, 5) is not None and wilson_interval(0.0, 5)[0] == 0.0
    assert wilson_interval(100.0, 5) is not None and wilson_interval(100.0, 5)[1] == 100.0
    assert [d.bounds for d in DEFINITIONS] == [
        (-100.0, 100.0), (0.0, 100.0), (1.0, 5.0), (1.0, 7.0), (0.0, 100.0)
    ]  # fmt: skip


@settings(max_examples=200)
@given(st.sampled_from(DEFINITIONS), st.lists(st.integers(0, 10), min_size=1, max_size=40))
def test_every_interval_holds_its_value_within_the_scale(
    definition: Definition, raw: list[int]
) -> None:
    first, _, last = definition.scale.partition("-")
    scores = [int(first) + s % (int(last) - int(first) + 1) for s in raw]
    result = definition.evaluate([Answer(definition.kind, s, definition.scale) for s in scores])
    assert result.value is not None
    if result.interval is not None:
        low, high = result.interval
        floor, ceiling = definition.bounds
        assert floor <= low <= result.value <= high <= ceiling

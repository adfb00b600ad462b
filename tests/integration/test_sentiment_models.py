"""The Spanish model as cem applies it gives what the package itself gives, and a few texts no
reader would label otherwise come out right in both languages. Loads the Spanish model (slow)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest

from services.satisfaction import sentiment

LABELLED = Path(__file__).resolve().parents[1] / "data" / "sentiment" / "labelled.csv"


def test_the_spanish_probability_equals_the_packages_own() -> None:
    from sentiment_analysis_spanish.sentiment_analysis import SentimentAnalysisSpanish

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        package = SentimentAnalysisSpanish()
    with LABELLED.open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    ours = sentiment._spanish_model()
    for text in texts:
        expected = float(package.sentiment(text))
        assert ours.positive_probability(text) == pytest.approx(expected, abs=1e-9), text


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("excelente atencion, muy amable la chica", "es", "positive"),
        ("pesimo servicio, estoy furioso", "es", "negative"),
        ("thank you so much, excellent service!", "en", "positive"),
        ("this is the worst service ever", "en", "negative"),
    ],
)
def test_unambiguous_texts(text: str, language: str, label: str) -> None:
    assert sentiment.score(text)[:2] == (language, label)


def test_warm_up_loads_the_platforms_models_once() -> None:
    sentiment.warm_up()
    sentiment.warm_up()
    assert sentiment._load_vader.cache_info().currsize == 1
    assert sentiment._load_detector_factory.cache_info().currsize == 1


def test_only_texts_in_a_language_whose_model_meets_the_goal_are_scored() -> None:
    assert sentiment.trusted_score("pesimo servicio, estoy furioso") is None
    english = sentiment.trusted_score("this is the worst service ever")
    assert english is not None and english[:2] == ("en", "negative")
    no_letters = sentiment.trusted_score("!!! 😡")
    assert no_letters is not None and no_letters.language == sentiment.UNDETERMINED


def test_letters_of_another_script_are_not_scored_as_a_text_without_letters() -> None:
    assert sentiment.detect_language("你好，我的订单在哪里") == sentiment.OTHER
    assert sentiment.trusted_score("你好，我的订单在哪里") is None

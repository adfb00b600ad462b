"""`cem bench sentiment --candidate`: a model not wired in, measured by the bench's own code, on
the texts the platform would give it. The candidates here are toys defined in this module."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.sentiment_candidate import evaluate_candidate, load_candidate, routed
from cem.cli import main
from services.satisfaction import sentiment

HERE = "tests.unit.test_sentiment_candidate"
ROWS = [
    {"text": "muchas gracias, el servicio fue excelente", "language": "es", "label": "positive"},
    {"text": "quiero saber el estado de mi pedido", "language": "es", "label": "neutral"},
    {"text": "el paquete llegó roto y nadie me responde", "language": "es", "label": "negative"},
    {"text": "¿a qué hora abren la tienda el sábado?", "language": "es", "label": "neutral"},
    {"text": "thank you so much, excellent service!", "language": "en", "label": "positive"},
]


def always_neutral(text: str) -> str:
    return "neutral"


def not_a_label(text: str) -> str:
    return "meh"


CALLED: list[str] = []


def recording(text: str) -> str:
    CALLED.append(text)
    return "neutral"


def test_a_candidate_is_measured_on_its_language_only() -> None:
    result = evaluate_candidate(ROWS, f"{HERE}:always_neutral", "es")
    assert result["n"] == 4
    assert result["accuracy"] == pytest.approx(2 / 4)
    assert result["confusion"] == {
        "negative": {"negative": 0, "neutral": 1, "positive": 0},
        "neutral": {"negative": 0, "neutral": 2, "positive": 0},
        "positive": {"negative": 0, "neutral": 1, "positive": 0},
    }
    assert result["meets_goal"] is False
    assert result["load_seconds"] >= 0 and result["load_peak_memory_added_mb"] >= 0
    assert f"{HERE}:always_neutral" in next(iter(result["models"]))


def test_loading_is_the_import_and_a_first_call_before_any_gold_text() -> None:
    """A model's first call (lazy weights, caches) is loading cost, not the first text's."""
    CALLED.clear()
    result = evaluate_candidate(ROWS, f"{HERE}:recording", "es")
    spanish = {row["text"] for row in ROWS if row["language"] == "es"}
    warm_up, *scored = CALLED
    assert warm_up not in spanish
    assert scored and set(scored) <= spanish and len(scored) <= result["n"]


def test_texts_detected_in_another_language_go_to_the_platforms_scorer() -> None:
    score = routed(always_neutral, f"{HERE}:always_neutral", "es")
    english = score("this is the worst service ever, I am furious")
    assert (english.language, english.label, english.model) == ("en", "negative", sentiment.VADER)
    spanish = score("el paquete llegó roto y nadie me responde")
    assert (spanish.language, spanish.label) == ("es", "neutral")
    assert spanish.model == f"{HERE}:always_neutral"


def test_a_candidate_must_answer_with_a_label() -> None:
    with pytest.raises(ValueError, match="meh"):
        routed(not_a_label, f"{HERE}:not_a_label", "es")("quiero saber el estado de mi pedido")


def test_a_candidate_is_named_module_colon_function() -> None:
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        load_candidate(HERE)
    assert load_candidate(f"{HERE}:always_neutral") is always_neutral


def test_cem_bench_sentiment_candidate_writes_its_results(tmp_path: Path) -> None:
    data, out = tmp_path / "labelled.csv", tmp_path / "candidate.json"
    with data.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "language", "label"])
        writer.writeheader()
        writer.writerows(ROWS)
    argv = ["bench", "sentiment", "--candidate", f"{HERE}:always_neutral"]
    status = main([*argv, "--data", str(data), "--out", str(out)])
    assert status == 1  # an always-neutral model misses the goal
    written = json.loads(out.read_text(encoding="utf-8"))
    assert (written["candidate"], written["language"], written["n"]) == (
        f"{HERE}:always_neutral",
        "es",
        4,
    )

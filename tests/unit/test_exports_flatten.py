"""How a JSON answer's nested fields become a download's columns (services/query_api/exports.py)."""

from __future__ import annotations

from services.query_api.exports import flatten, to_csv


def test_an_interval_is_its_two_bounds_not_pythons_repr() -> None:
    # A metric's 95% interval is a pair in the JSON; the CSV said "(0.0, 79.34…)", which no
    # spreadsheet splits (found by a review of the dashboard's export).
    row = flatten(
        {"metrics": {"csat@1": {"value": 50.0, "interval": (0.0, 79.5)}}, "tags": ["a", "b"]}
    )
    assert row == {
        "metrics.csat@1.value": 50.0,
        "metrics.csat@1.interval": "0.0 79.5",
        "tags": "a b",
    }
    text = to_csv([row], list(row)).decode()
    assert "(" not in text and "0.0 79.5" in text

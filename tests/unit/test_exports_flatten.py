"""How a JSON answer's nested fields become a download's columns (services/query_api/exports.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import openpyxl

from services.query_api.exports import columns_of, flatten, to_csv, to_xlsx


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


def test_a_csv_writes_booleans_as_the_json_does() -> None:
    # Python's `True` in a download that otherwise says what the JSON says (found by a review).
    text = to_csv([{"low_confidence": True, "open": False}], ["low_confidence", "open"]).decode()
    assert text.splitlines()[1] == "true,false"


def test_an_excel_download_keeps_each_values_type_and_runs_no_text() -> None:
    rows = [
        {
            "touchpoint": "tienda-sevilla",
            "nps": -42.5,
            "n": 31,
            "low_confidence": False,
            "at": datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=1))),
            "utc": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
            "verbatim": '=HYPERLINK("http://evil")',
            "link": "https://example.io/x",
            "digits": "0034617345678",
            "missing": None,
        }
    ]
    columns = [*rows[0], "absent"]
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(rows, columns))).active
    assert sheet is not None
    header, row = list(sheet.iter_rows(values_only=True))
    assert list(header) == columns
    assert list(row) == [
        "tienda-sevilla",
        -42.5,
        31,
        False,
        datetime(2026, 3, 1, 10, 30),  # its wall time; Excel has no zone: the format says it
        datetime(2026, 3, 1, 9, 30),
        '=HYPERLINK("http://evil")',  # text as it was: not a formula, not prefixed
        "https://example.io/x",
        "0034617345678",  # text stays text: no number, no lost leading zeros
        None,
        None,
    ]
    cells = {c.value: c.data_type for c in sheet[2] if c.value is not None}
    assert cells['=HYPERLINK("http://evil")'] == "s" and cells[-42.5] == "n"
    assert sheet["G2"].hyperlink is None and sheet["H2"].hyperlink is None
    assert sheet.freeze_panes == "A2"
    assert sheet["E2"].number_format == 'yyyy-mm-dd hh:mm:ss "+01:00"'  # the zone shown
    assert sheet["F2"].number_format == 'yyyy-mm-dd hh:mm:ss "UTC"'


def test_an_excel_download_of_nothing_still_names_its_columns() -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx([], ["touchpoint", "n"]))).active
    assert sheet is not None
    assert list(sheet.iter_rows(values_only=True)) == [("touchpoint", "n")]


def test_a_nested_field_is_its_flattened_columns_not_an_empty_one_beside_them() -> None:
    rows = [flatten({"alert_id": "a", "message_params": {"metric": "nps", "score": "6"}})]
    first = ["alert_id", "message_params", "note"]  # the model's fields, `note` never set
    assert columns_of(rows, first) == [
        "alert_id",
        "note",
        "message_params.metric",
        "message_params.score",
    ]
    assert columns_of([], first) == first  # no rows: the model's fields name the columns
    # None on some rows, nested on others (an alert's `drift`): the flattened columns only.
    mixed = [{"a": 1, "m": None}, flatten({"a": 2, "m": {"x": 1}})]
    assert columns_of(mixed, ["a", "m"]) == ["a", "m.x"]


def test_an_excel_cell_for_nan_or_infinity_is_empty_not_an_error() -> None:
    rows = [{"a": float("nan"), "b": float("inf"), "c": 1.5}]
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(rows, ["a", "b", "c"]))).active
    assert sheet is not None
    assert list(sheet.iter_rows(values_only=True))[1] == (None, None, 1.5)

"""Tables as downloads: `?format=csv|xlsx|parquet` on the dashboard's list endpoints.

The rows are the ones the JSON answer holds, flattened to columns; the numbers are the same
values (CSV writes them as Python prints them, booleans as JSON does; Excel and Parquet keep their
types). CSV cells that a spreadsheet would run as a formula (text starting with `=`, `+`, `-`,
`@`, tab or carriage return) are prefixed with `'` (OWASP's advice against CSV injection): event
text comes from customers. Numbers are never prefixed, so a negative NPS stays a number.

The Excel download is for people: a CSV opened in a Spanish Excel puts each whole row in one
column (its list separator is `;`), shows accents garbled without a byte-order mark, and reads
`42.5` as 425 or a date. An `.xlsx` has none of that: numbers are numbers, times are times (as
the JSON gives them: UTC, or a bucket's start in the answer's time zone, its offset written in
the cell's format), and text is always written as text, never as a formula, so no prefix is
needed there.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter
from fastapi import Query, Response

from services.projections.timeline import Language


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    parquet = "parquet"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.parquet: "application/vnd.apache.parquet",
}

Row = Mapping[str, Any]
# The `?format=` of a list route, and the 200 it documents: its JSON, or an Excel, CSV or Parquet
# download.
Format = Annotated[ExportFormat, Query(description="json, or a csv/xlsx/parquet download")]
# The `?lang=` of a list route that downloads: an Excel file's header row in words.
HeaderLanguage = Annotated[
    Language | None,
    Query(
        description="an xlsx download's header row in words of this language (en or es); "
        "without it, and in csv and parquet, the columns are named by their codes"
    ),
]
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media.split(";")[0]: {} for media in _MEDIA_TYPES.values()}}
}


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: text that could start a formula is neutralised."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):  # as the JSON answer writes it, not Python's `True`
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def to_csv(rows: Sequence[Row], columns: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8")


def to_xlsx(
    rows: Sequence[Row],
    columns: Sequence[str],
    sheet: str = "cem",
    titles: Sequence[str] | None = None,
) -> bytes:
    """The rows as one worksheet: a bold, frozen header row (`titles`, else the column codes);
    each cell typed as its value is (text always as text, so nothing a customer wrote runs as a
    formula or becomes a link). Every download is bounded far below Excel's 1,048,576 rows (the
    alerts' at 100,000)."""
    buffer = io.BytesIO()
    options: dict[str, Any] = {"strings_to_numbers": False, "strings_to_formulas": False}
    options |= {"strings_to_urls": False, "remove_timezone": True}
    # Each row written to a temporary file as it comes, not held as objects: 100,000 alerts
    # took +470 MB in memory, +12 MB so (a review). Longer text than Excel's 32,767 characters
    # a cell holds is cut by the writer; no field the API returns is that long.
    options |= {"constant_memory": True, "tmpdir": tempfile.gettempdir()}
    with xlsxwriter.Workbook(buffer, options) as book:
        page = book.add_worksheet(sheet)
        bold = book.add_format({"bold": True})
        formats: dict[str, Any] = {}

        def when(zone: str) -> Any:  # a time's format says its zone: "UTC", or "+01:00"
            if zone not in formats:
                formats[zone] = book.add_format({"num_format": f'yyyy-mm-dd hh:mm:ss "{zone}"'})
            return formats[zone]

        for j, title in enumerate(titles if titles is not None else columns):
            page.write_string(0, j, title, bold)
            page.set_column(j, j, min(max(len(title), 10), 40))  # the header readable
        page.freeze_panes(1, 0)
        for i, row in enumerate(rows, start=1):
            for j, column in enumerate(columns):
                _xlsx_cell(page, i, j, row.get(column), when)
        if columns:
            page.autofilter(0, 0, len(rows), len(columns) - 1)
    return buffer.getvalue()


def _zone_label(value: datetime) -> str:
    """How a time's cell names its zone: UTC (and a time without one), else its offset, as the
    JSON writes it (a Madrid bucket's start: `+01:00`)."""
    offset = value.utcoffset()
    if offset is None or not offset:
        return "UTC"
    return value.isoformat()[-6:]


def _xlsx_cell(page: Any, i: int, j: int, value: Any, when: Callable[[str], Any]) -> None:
    if value is None:
        return
    if isinstance(value, bool):  # before numbers: a bool is an int
        page.write_boolean(i, j, value)
    elif isinstance(value, int | float):
        if math.isfinite(value):  # Excel has no NaN or infinity: an empty cell, not a 500
            page.write_number(i, j, value)
    elif isinstance(value, datetime):  # Excel has no time zone: the wall time, zone beside it
        page.write_datetime(i, j, value, when(_zone_label(value)))
    else:
        page.write_string(i, j, str(value))


def _in_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def to_parquet(rows: Sequence[Row], columns: Sequence[str]) -> bytes:
    # Parquet's times are instants: every time in UTC (a column's zone would be its first row's).
    data = {column: [_in_utc(row.get(column)) for row in rows] for column in columns}
    table = pa.Table.from_pydict(data)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def download(
    rows: Sequence[Row],
    columns: Sequence[str],
    name: str,
    fmt: ExportFormat,
    lang: Language | None = None,
) -> Response:
    """The rows as a file to save (`Content-Disposition: attachment`), never cached; with
    `lang`, an Excel file's header row and the codes the pages word are in words of that
    language (`export_titles`)."""
    if fmt == ExportFormat.xlsx and lang is not None:
        from services.query_api.web.export_titles import column_titles, worded_row

        worded = [worded_row(row, lang) for row in rows]
        body = to_xlsx(worded, columns, titles=column_titles(list(columns), lang))
    else:
        body = _WRITERS[fmt](rows, columns)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}.{fmt.value}"',
        "Cache-Control": "no-store",
    }
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers=headers)


_WRITERS: dict[ExportFormat, Callable[[Sequence[Row], Sequence[str]], bytes]] = {
    ExportFormat.csv: to_csv,
    ExportFormat.xlsx: to_xlsx,
    ExportFormat.parquet: to_parquet,
}


def flatten(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as `parent.child` columns (a metric's `nps@1.value`); lists are joined."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):  # an interval too: `low high`, not Python's repr
            flat[name] = " ".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def columns_of(rows: Sequence[Row], first: Sequence[str] = ()) -> list[str]:
    """Every column any row has, in first-seen order (the model's field order); a field of
    `first` the rows hold flattened (`message_params.metric`) is not a column of its own as
    well, always empty (found by a review of the alerts sheet; `drift` is None on an at-risk
    alert and nested on a drift alert)."""
    seen: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        seen.update(dict.fromkeys(row))
    filled = {c for row in rows for c, v in row.items() if v is not None}
    held = {c for row in rows for c in row}
    return [c for c in seen if c in filled or not any(h.startswith(f"{c}.") for h in held)]


def download_items(
    items: Sequence[Any],
    columns: Sequence[str],
    name: str,
    fmt: ExportFormat,
    lang: Language | None = None,
) -> Response:
    """Pydantic items of a JSON answer as a download, nested fields flattened."""
    rows = [flatten(item.model_dump()) for item in items]
    return download(rows, columns_of(rows, columns), name, fmt, lang)


def touchpoint_columns() -> list[str]:
    """The columns of a satisfaction-by-touchpoint export, also when it has no rows."""
    from services.satisfaction.metrics import DEFINITIONS

    metrics = [
        f"metrics.{d.key}.{field}"
        for d in DEFINITIONS
        for field in ("value", "n", "low_confidence")
    ]
    kinds = [f"responses.{kind}" for kind in ("nps", "csat", "ces")]
    feeling = [
        f"sentiment.{field}" for field in ("n", "negative_share", "positive_share", "mean_score")
    ]
    return ["touchpoint", "channel", "bucket_start", *kinds, *metrics, *feeling]

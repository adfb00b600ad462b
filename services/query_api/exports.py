"""Tables as downloads: `?format=csv|parquet` on the dashboard's list endpoints.

The rows are the ones the JSON answer holds, flattened to columns; the numbers are the same
values (CSV writes them as Python prints them, Parquet keeps their types). CSV cells that a
spreadsheet would run as a formula (text starting with `=`, `+`, `-`, `@`, tab or carriage return)
are prefixed with `'` (OWASP's advice against CSV injection): event text comes from customers.
Numbers are never prefixed, so a negative NPS stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import Query, Response


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"
    parquet = "parquet"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MEDIA_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.parquet: "application/vnd.apache.parquet",
}

Row = Mapping[str, Any]
# The `?format=` of a list route, and the 200 it documents: its JSON, or a CSV or Parquet download.
Format = Annotated[ExportFormat, Query(description="json, or a csv/parquet download")]
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media.split(";")[0]: {} for media in _MEDIA_TYPES.values()}}
}


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: text that could start a formula is neutralised."""
    if isinstance(value, datetime):
        return value.isoformat()
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


def to_parquet(rows: Sequence[Row], columns: Sequence[str]) -> bytes:
    data = {column: [row.get(column) for row in rows] for column in columns}
    table = pa.Table.from_pydict(data)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def download(rows: Sequence[Row], columns: Sequence[str], name: str, fmt: ExportFormat) -> Response:
    """The rows as a file to save (`Content-Disposition: attachment`), never cached."""
    body = to_csv(rows, columns) if fmt == ExportFormat.csv else to_parquet(rows, columns)
    headers = {
        "Content-Disposition": f'attachment; filename="{name}.{fmt.value}"',
        "Cache-Control": "no-store",
    }
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers=headers)


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
    """Every column any row has, in first-seen order (the model's field order)."""
    seen: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def download_items(
    items: Sequence[Any], columns: Sequence[str], name: str, fmt: ExportFormat
) -> Response:
    """Pydantic items of a JSON answer as a download, nested fields flattened."""
    rows = [flatten(item.model_dump()) for item in items]
    return download(rows, columns_of(rows, columns), name, fmt)


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

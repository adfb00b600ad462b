"""The streamed zip of a customer export: produced while its sources are read, complete, and the
same rows in JSON and CSV, whatever the rows hold."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.query_api import subject_archive
from services.query_api.subject_archive import Section, SubjectArchive, leaves
from tests.subject_export import assert_csv_agrees

COLUMNS = ("id", "text", "n", "flag", "nested")


def _zip(chunks: Iterator[bytes]) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


def _export(*sections: Section) -> Iterator[bytes]:
    archive = SubjectArchive()
    for section in sections:
        yield from archive.write(section)
    yield from archive.finish({"customer_id": "c-1"})


def test_bytes_leave_before_the_last_page_is_read() -> None:
    read: list[int] = []

    def pages() -> Iterator[list[dict[str, Any]]]:
        for page in range(50):
            read.append(page)
            yield [{"id": f"{page}-{i}", "text": "x" * 2000 + str(i)} for i in range(20)]

    stream = _export(Section("events", ("id", "text"), pages()))
    first = next(chunk for chunk in stream if chunk)
    assert first.startswith(b"PK") and len(read) < 50
    archive = _zip(iter([first, *stream]))
    assert len(json.loads(archive.read("events.json"))) == 50 * 20
    assert json.loads(archive.read("manifest.json"))["files"]["events.csv"] == 1000


def test_a_csv_larger_than_the_spool_still_holds_every_row(monkeypatch: Any) -> None:
    monkeypatch.setattr(subject_archive, "SPOOL_BYTES", 1024)  # the CSV goes to disk
    rows = [{"id": str(i), "text": f"row {i}"} for i in range(2000)]
    archive = _zip(_export(Section("events", ("id", "text"), [rows[:999], rows[999:]])))
    table = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode(), newline="")))
    assert table == rows


def test_an_empty_section_is_an_empty_list_and_a_header() -> None:
    archive = _zip(_export(Section("alerts", ("id",), [[]])))
    assert json.loads(archive.read("alerts.json")) == []
    assert archive.read("alerts.csv").decode() == "id\r\n"
    assert json.loads(archive.read("manifest.json"))["files"] == {"alerts.json": 0, "alerts.csv": 0}


def test_a_single_object_is_one_field_value_row_per_leaf() -> None:
    profile = {"customer_id": "c-1", "orders": {"count": 2}, "channels": [{"channel": "web"}]}
    archive = _zip(_export(Section("profile", (), [[profile]], single=True)))
    assert json.loads(archive.read("profile.json")) == profile
    table = list(csv.reader(io.StringIO(archive.read("profile.csv").decode(), newline="")))
    assert table == [["field", "value"], ["customer_id", "c-1"], ["orders.count", "2"],
                     ["channels.0.channel", "web"]]  # fmt: skip
    assert dict(leaves({"empty": [], "none": None})) == {"empty": [], "none": None}


int64 = st.integers(-(2**63), 2**63 - 1)  # the warehouse's widest integers
json_values = st.recursive(
    st.none() | st.booleans() | int64 | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
row = st.fixed_dictionaries(
    {"id": st.text(), "text": st.text(), "n": int64 | st.none(), "flag": st.booleans(),
     "nested": json_values}
)  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(st.lists(row, max_size=8))
def test_json_and_csv_hold_the_same_rows(rows: list[dict[str, Any]]) -> None:
    archive = _zip(_export(Section("events", COLUMNS, [rows])))
    assert json.loads(archive.read("events.json")) == rows
    text = archive.read("events.csv").decode("utf-8")
    assert_csv_agrees(list(csv.DictReader(io.StringIO(text, newline=""))), rows, "events")

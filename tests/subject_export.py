"""Checks of a customer export (`GET /v1/customers/{id}/export`) against the APIs that show the
same data, shared by the in-process integration test and the end-to-end suite (both modes).

`read(path, **params)` answers the JSON of a GET made with a key that may read it (a manager's).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

Read = Callable[..., Any]
SECTIONS = (
    "events",
    "profile",
    "identifiers",
    "identity_history",
    "survey_answers",
    "text_sentiment",
    "alerts",
    "access_audit",
)
FILES = {f"{name}.{ext}" for name in SECTIONS for ext in ("json", "csv")} | {"manifest.json"}
FILENAME = re.compile(r'attachment; filename="customer-export-[0-9a-f]{16}-\d{8}T\d{6}Z\.zip"')
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def open_export(content: bytes) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """The JSON files by section name (and `manifest`), and the CSV files as rows of text."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == FILES
        as_json = {n[:-5]: json.loads(archive.read(n)) for n in FILES if n.endswith(".json")}
        as_csv = {
            n[:-4]: list(csv.DictReader(io.StringIO(archive.read(n).decode("utf-8"), newline="")))
            for n in FILES
            if n.endswith(".csv")
        }
    return as_json, as_csv


def expected_cell(value: Any) -> str:
    """What a JSON value must look like in the CSV (formula starts neutralised with `'`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(value)


def assert_cell(text: str, value: Any, where: str) -> None:
    if isinstance(value, dict | list):
        assert json.loads(text) == value, where
    else:
        assert text == expected_cell(value), where


def assert_csv_agrees(rows: list[dict[str, str]], items: list[dict[str, Any]], name: str) -> None:
    assert len(rows) == len(items), name
    for index, (row, item) in enumerate(zip(rows, items, strict=True)):
        assert set(row) == set(item), name
        for column, value in item.items():
            assert_cell(row[column], value, f"{name}[{index}].{column}")


def assert_profile_csv_agrees(rows: list[dict[str, str]], profile: dict[str, Any]) -> None:
    """`field,value` rows: every leaf of the profile once, at its dotted path."""
    seen = set()
    for row in rows:
        value: Any = profile
        for part in row["field"].split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert_cell(row["value"], value, f"profile.{row['field']}")
        seen.add(row["field"])
    assert {"customer_id", "events", "orders.count"} <= seen
    assert len(seen) == len(rows)


def timeline(read: Read, customer: str) -> list[dict[str, Any]]:
    entries, cursor = [], None
    while True:
        page = read(f"/v1/customers/{quote(customer, safe='')}/timeline", limit=500, cursor=cursor)
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


def check_export(content: bytes, read: Read, requested: str, tenant_id: str) -> dict[str, Any]:
    """Every file of the export holds what the APIs show for the customer; JSON and CSV agree.
    Returns the JSON files, for the caller's own checks."""
    files, tables = open_export(content)
    path = quote(requested, safe="")
    profile = read(f"/v1/customers/{path}")
    # The value is as of each read (value@1): the two reads differ in that instant only.
    exported = {**files["profile"], "value": dict(files["profile"]["value"])}
    assert exported["value"].pop("as_of") <= profile["value"].pop("as_of")
    assert exported == profile
    assert files["events"] == timeline(read, requested)
    identities = read(f"/v1/customers/{path}/identities")
    assert files["identifiers"] == identities["identities"], (files["identifiers"], identities)
    assert files["identity_history"] == read(f"/v1/customers/{path}/identity-history")["entries"]
    assert files["alerts"] == read("/v1/alerts", customer_id=requested, limit=1000)["alerts"]
    _check_answers(files, read)
    # The sentiment of texts the customer wrote (the texts themselves are the events'), and who
    # read the customer's data: the export's own read is recorded before the zip streams.
    members = set(read(f"/v1/customers/{path}")["members"])
    texts = {e["event_id"] for e in files["events"]}
    assert {r["event_id"] for r in files["text_sentiment"]} <= texts
    assert {r["customer_id"] for r in files["text_sentiment"]} <= members
    assert {r["customer_id"] for r in files["access_audit"]} <= members
    assert any(r["resource"] == "export" for r in files["access_audit"]), files["access_audit"]

    manifest = files["manifest"]
    assert (manifest["tenant_id"], manifest["requested_id"]) == (tenant_id, requested)
    assert (manifest["customer_id"], manifest["members"]) == (
        profile["customer_id"],
        profile["members"],
    )
    for name in SECTIONS:
        count = 1 if name == "profile" else len(files[name])
        assert manifest["files"][f"{name}.json"] == manifest["files"][f"{name}.csv"] == count
        if name != "profile":
            assert_csv_agrees(tables[name], files[name], name)
    assert_profile_csv_agrees(tables["profile"], files["profile"])
    return files


def _check_answers(files: dict[str, Any], read: Read) -> None:
    """The stored answers are the survey answers of the timeline, and the drill-down API shows
    the same score, kind and comment for each."""
    answered = {e["event_id"]: e for e in files["events"] if e["type"] == "survey.answered"}
    answers = {a["event_id"]: a for a in files["survey_answers"]}
    assert set(answers) == set(answered)
    for event_id, answer in answers.items():
        payload = answered[event_id]["payload"]
        assert (answer["metric"], answer["score"]) == (payload["kind"], payload["score"])
        assert answer["verbatim"] == payload.get("comment")
    if not answers:
        return
    oldest = min(a["answered_at"] for a in answers.values())
    drill = read("/v1/satisfaction/responses", since=oldest, limit=1000)["responses"]
    shown = {r["event_id"]: r for r in drill if r["event_id"] in answers}
    assert set(shown) == set(answers)
    for event_id, row in shown.items():
        same = ("customer_id", "answered_at", "metric", "scale", "score", "verbatim")
        assert {k: row[k] for k in same} == {k: answers[event_id][k] for k in same}

"""The exported JSON Schemas match the models, and describe what ingest accepts."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.export import (
    ENVELOPE,
    JSON_DIR,
    json_schemas,
    main,
    render,
    stale_files,
    write_json_schemas,
)
from schemas.families import FAMILIES, PLATFORM_TYPES

REGENERATE = "schemas/json is out of date with the models: run `python -m schemas.export`"


def test_files_in_the_repo_equal_what_the_models_produce() -> None:
    expected = {f"{name}.schema.json": render(s) for name, s in json_schemas().items()}
    present = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.schema.json")}
    assert sorted(present) == sorted(expected), REGENERATE
    for name, text in expected.items():
        assert present[name] == text, f"{name}: {REGENERATE}"


def test_one_schema_for_the_envelope_and_each_event_type_a_channel_system_may_send() -> None:
    schemas = json_schemas()
    assert list(schemas) == [ENVELOPE, *sorted(FAMILIES.keys() - PLATFORM_TYPES)]
    assert PLATFORM_TYPES and not PLATFORM_TYPES & set(schemas)
    for schema in schemas.values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is False


def test_type_schema_fixes_the_type_limits_the_channel_and_types_the_payload() -> None:
    schema = json_schemas()["survey.answered"]
    props = schema["properties"]
    assert props["type"]["const"] == "survey.answered"
    assert props["channel"]["enum"] == sorted(props["channel"]["enum"])
    payload = schema["$defs"]["SurveyAnswered"]
    assert payload["properties"]["kind"]["enum"] == ["nps", "csat", "ces"]
    assert "payload" in schema["required"]
    call = json_schemas()["call.ended"]["properties"]["channel"]
    assert call["const"] == "phone"


def test_payload_is_optional_only_where_the_family_has_no_required_field() -> None:
    schemas = json_schemas()
    assert "payload" not in schemas["call.transferred"]["required"]
    assert "payload" in schemas["page.viewed"]["required"]


def test_timestamps_document_epoch_numbers_too() -> None:
    occurred = json_schemas()[ENVELOPE]["properties"]["occurred_at"]
    kinds = [option["type"] for option in occurred["anyOf"]]
    assert kinds == ["string", "number"]
    assert "1e11" in occurred["anyOf"][1]["description"]


def test_server_owned_fields_are_not_in_any_schema() -> None:
    for schema in json_schemas().values():
        assert not {"tenant_id", "received_at", "derived_at"} & set(schema["properties"])


def test_callers_cannot_change_the_shared_schemas() -> None:
    json_schemas()[ENVELOPE]["title"] = "changed"
    assert json_schemas()[ENVELOPE]["title"] != "changed"


def test_write_removes_stale_files_and_check_reports_drift(tmp_path: Path) -> None:
    (tmp_path / "retired.type.schema.json").write_text("{}")
    written = write_json_schemas(tmp_path)
    assert {p.name for p in written} == {p.name for p in tmp_path.iterdir()}
    assert stale_files(tmp_path) == []
    assert main(["--check", str(tmp_path)]) == 0
    envelope = tmp_path / "envelope.schema.json"
    envelope.write_text(json.dumps({"title": "edited"}))
    assert stale_files(tmp_path) == ["envelope.schema.json"]
    assert main(["--check", str(tmp_path)]) == 1
    assert main([str(tmp_path)]) == 0
    assert stale_files(tmp_path) == []

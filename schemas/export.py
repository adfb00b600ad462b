"""JSON Schemas of what producers send, generated from the pydantic models.

`envelope` describes any event; `<type>` (e.g. `survey.answered`) describes an event of that type,
with its channel restricted and its payload typed. `python -m schemas.export` rewrites
`schemas/json/*.schema.json`; `--check` only reports whether they are current.

Personal data is marked as `schemas/personal.py` declares it, for producers and for the
crypto-shredding that seals it: `"x-personal": true` on every customer identifier and on each
type's personal payload fields, and on `attributes` the words that leave an attribute in clear
when every word of its key is one of them (`x-anonymous-key-words`; any other key is personal)
and the keys that are personal whatever their words (`x-personal-keys`), each a space-separated
list.
Validators ignore `x-` keywords.

What validators check beyond the schema (survey score bounds per kind, at least one customer
identifier, timestamps not absurd) is in the `description`s and enforced at ingest.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from schemas.envelope import EventIn, parse_timestamp
from schemas.families import FAMILIES, PLATFORM_TYPES
from schemas.personal import ANONYMOUS_WORDS, ATTRIBUTE_KEYS, payload_fields

ENVELOPE = "envelope"
JSON_DIR = Path(__file__).parent / "json"
SUFFIX = ".schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, plus what a before-validator accepts that the field type hides."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        inner = super().function_before_schema(schema)
        if schema["function"]["function"] is parse_timestamp:
            epoch = {
                "type": "number",
                "description": "epoch time: seconds below 1e11, milliseconds below 1e14",
            }
            return {"anyOf": [inner, epoch]}
        return inner


def json_schemas() -> dict[str, dict[str, Any]]:
    """Schema by name: `envelope` first, then one per event type, sorted."""
    return copy.deepcopy(_schemas())


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    schemas = {ENVELOPE: _mark_personal(_document(EventIn, "cem event (any type)"), None)}
    for event_type in sorted(FAMILIES.keys() - PLATFORM_TYPES):  # not a channel system's to send
        schema = _document(_event_model(event_type), f"cem event {event_type}")
        schemas[event_type] = _mark_personal(schema, event_type)
    return schemas


def _mark_personal(schema: dict[str, Any], event_type: str | None) -> dict[str, Any]:
    """The schema with its personal paths marked (`schemas.personal`)."""
    defs = schema["$defs"]
    for prop in defs["CustomerRef"]["properties"].values():
        prop["x-personal"] = True
    if event_type is None:
        return schema
    payload = defs[schema["properties"]["payload"]["$ref"].removeprefix("#/$defs/")]
    for name in payload_fields(event_type):
        payload["properties"][name]["x-personal"] = True
    attributes = payload["properties"]["attributes"]
    # Personal unless every word of the key is one of these (schemas/personal.py).
    attributes["x-anonymous-key-words"] = " ".join(sorted(ANONYMOUS_WORDS))
    attributes["x-personal-keys"] = " ".join(sorted(ATTRIBUTE_KEYS))
    return schema


def _document(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(schema_generator=_Generator, mode="validation")
    return {"$schema": DIALECT, **schema, "title": title}


def _event_model(event_type: str) -> type[BaseModel]:
    """EventIn with `type` fixed, `channel` limited to where the type may arrive, and the payload
    typed."""
    payload, channels = FAMILIES[event_type]
    required = any(f.is_required() for f in payload.model_fields.values())
    default: Any = ... if required else Field(default_factory=dict)
    literal = cast(Any, Literal)
    return create_model(
        _class_name(event_type),
        __base__=EventIn,
        __doc__=f"A {event_type} event as a channel system sends it.",
        type=(literal[event_type], ...),
        channel=(literal[tuple(sorted(c.value for c in channels))], ...),
        payload=(payload, default),
    )


def _class_name(event_type: str) -> str:
    return "".join(part.title() for part in event_type.replace("_", ".").split(".")) + "Event"


def render(schema: dict[str, Any]) -> str:
    """A schema file's exact text (stable, so regenerating changes nothing)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_json_schemas(directory: Path = JSON_DIR) -> list[Path]:
    """Write `<name>.schema.json` per schema and remove stale ones; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    schemas = json_schemas()
    written = []
    for name, schema in schemas.items():
        path = directory / f"{name}{SUFFIX}"
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    for stale in set(directory.glob(f"*{SUFFIX}")) - set(written):
        stale.unlink()
    return written


def stale_files(directory: Path = JSON_DIR) -> list[str]:
    """Names of files that are missing, different from the models, or no longer produced."""
    expected = {f"{name}{SUFFIX}": render(s) for name, s in json_schemas().items()}
    present = {p.name: p.read_text(encoding="utf-8") for p in directory.glob(f"*{SUFFIX}")}
    return sorted(n for n in expected.keys() | present.keys() if expected.get(n) != present.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=JSON_DIR)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are not current")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.directory)
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_json_schemas(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

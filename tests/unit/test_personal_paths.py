"""The personal paths of `schemas.personal` held to the published JSON Schemas (`schemas/json`):
every declared path exists there as text, and every text field of every schema is either
declared personal or listed as not personal with a reason. A new field in a family fails here
until someone decides which it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import personal
from schemas.families import FAMILIES, PLATFORM_TYPES

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"
ENVELOPE = json.loads((SCHEMAS / "envelope.schema.json").read_text())


def _payload_properties(event_type: str) -> dict[str, Any]:
    """The payload's properties as published; the platform's own types (left out of the
    published files) from their models."""
    if event_type in PLATFORM_TYPES:
        return dict(FAMILIES[event_type][0].model_json_schema()["properties"])
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    ref = schema["properties"]["payload"]["$ref"].removeprefix("#/$defs/")
    return dict(schema["$defs"][ref]["properties"])


def _is_text(prop: dict[str, Any]) -> bool:
    """A string field a person or a system may fill freely: no enum, pattern or format."""
    options = prop.get("anyOf", [prop])
    return any(
        o.get("type") == "string" and not ({"enum", "const", "pattern", "format"} & o.keys())
        for o in options
    )


TYPES = sorted(FAMILIES)
TEXT_FIELDS = {t: {n for n, p in _payload_properties(t).items() if _is_text(p)} for t in TYPES}


def test_every_published_type_has_a_schema_file() -> None:
    published = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert set(TYPES) - PLATFORM_TYPES <= published


@pytest.mark.parametrize("event_type", sorted(personal.PAYLOAD_FIELDS))
def test_every_declared_payload_field_is_text_of_its_type(event_type: str) -> None:
    assert event_type in FAMILIES
    declared = set(personal.PAYLOAD_FIELDS[event_type])
    assert declared <= TEXT_FIELDS[event_type], declared - TEXT_FIELDS[event_type]


@pytest.mark.parametrize("event_type", TYPES)
def test_every_text_field_is_declared_or_not_personal_with_a_reason(event_type: str) -> None:
    declared = set(personal.payload_fields(event_type))
    undecided = TEXT_FIELDS[event_type] - declared - set(personal.NOT_PERSONAL)
    assert undecided == set(), f"{event_type}: personal or not? {sorted(undecided)}"
    assert declared.isdisjoint(personal.NOT_PERSONAL), "a field cannot be both"


def test_every_not_personal_field_exists_and_has_a_reason() -> None:
    envelope_text = {n for n, p in ENVELOPE["properties"].items() if _is_text(p)}
    known = set().union(*TEXT_FIELDS.values(), envelope_text)
    assert set(personal.NOT_PERSONAL) <= known, set(personal.NOT_PERSONAL) - known
    assert all(reason.strip() for reason in personal.NOT_PERSONAL.values())


def test_the_envelopes_text_fields_are_decided() -> None:
    envelope_text = {n for n, p in ENVELOPE["properties"].items() if _is_text(p)}
    assert envelope_text - set(personal.NOT_PERSONAL) == set()


def test_the_customer_paths_are_every_identifier_of_the_envelope() -> None:
    identifiers = set(ENVELOPE["$defs"]["CustomerRef"]["properties"])
    declared = {p.removeprefix("customer.") for p in personal.CUSTOMER_PATHS}
    assert declared == identifiers


@pytest.mark.parametrize("event_type", TYPES)
def test_every_typed_payload_has_the_attributes_the_attribute_rule_reads(event_type: str) -> None:
    assert _payload_properties(event_type)["attributes"]["type"] == "object"


@pytest.mark.parametrize("event_type", sorted(set(TYPES) - PLATFORM_TYPES))
def test_the_published_schemas_mark_exactly_the_declared_paths(event_type: str) -> None:
    properties = _payload_properties(event_type)
    marked = {name for name, p in properties.items() if p.get("x-personal") is True}
    assert marked == set(personal.payload_fields(event_type))
    words = properties["attributes"]["x-anonymous-key-words"].split()
    assert set(words) == personal.ANONYMOUS_WORDS
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    customer = schema["$defs"]["CustomerRef"]["properties"].values()
    assert all(p["x-personal"] is True for p in customer)


@pytest.mark.parametrize(
    "key",
    [
        "context.ip",
        "context.userAgent",
        "context.device.id",
        "context.page.url",
        "context.page.search",
        "properties.first_name",
        "properties.firstName",
        "properties.Email",
        "properties.shipping_address",
        "nombre",
        "telefono_movil",
        # Found by a review: keys no list of personal words held stayed in clear.
        "domicilio",
        "dirección",
        "móvil",
        "whatsapp",
        "cp",
        "fecha_nacimiento",
        "properties.username",
        "properties.tax_id",
        "",
        # Objects kept as JSON text under one key, and values typed by the person.
        "properties.shipping",
        "properties.order",
        "properties.cart",
        "properties.payment",
        "properties.products",
        "context.campaign.term",
        "context.campaign.content",
        "properties.value",
    ],
)
def test_attributes_that_name_or_reach_a_person_are_personal(key: str) -> None:
    assert personal.is_personal_attribute(key)


@pytest.mark.parametrize(
    "key",
    [
        "product",
        "context.locale",
        "context.timezone",
        "properties.plan",
        "properties.revenue",
        "properties.currency",
        "context.library.version",
        "precio",
    ],
)
def test_anonymous_attributes_stay_in_clear(key: str) -> None:
    """`product` is what the value projection reads; every word of these names no one."""
    assert not personal.is_personal_attribute(key)


def test_a_custom_types_whole_payload_is_personal() -> None:
    assert personal.whole_payload("custom.segment.identify")
    assert not personal.whole_payload("order.placed")

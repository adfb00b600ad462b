"""Compiled validators: the event families' rules as pydantic-core schemas with no Python inside.

The envelope's and payloads' Python checks (no NUL, no control characters in ids, blank ids are
absent, RFC 3339 times, a survey's scale) are spelt here as the patterns, bounds and strict types
they amount to, compiled from the models' own annotations where a field has them. A compiled
validator is narrower than its model on purpose (strings as JSON gives them, times written in UTC,
identifiers sent filled or absent): whatever it refuses goes the full way (`schemas.validate`),
which finds and words every violation. A payload model with a rule that cannot be compiled here
has no compiled validator at all, so a new rule can make a family slower, never laxer.

`STORED` reads an event as the log stores it, checking types only: for what the platform wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, BeforeValidator, StringConstraints
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, PydanticUndefined, SchemaSerializer, SchemaValidator
from pydantic_core import core_schema as cs

from schemas.envelope import Channel, CustomerRef, Event, IdStr, SafeStr
from schemas.families import FAMILIES, SCALES, Attributes, SurveyAnswered

_SAFE = get_args(SafeStr)[1].func  # rejects NUL and lone surrogates
_ID = get_args(IdStr)[-1].func  # rejects control characters
_SAFE_CHAR = r"[^\x00]"
_ID_CHAR = r"[^\x00-\x1f\x7f-\x9f]"
# A character that no reading of "blank" (`str.strip`) removes: none of str.isspace's characters
# lies outside Unicode's White_Space and the controls (tests/unit/test_compiled_validation.py).
_FILLED_CHAR = r"[^\s\x00-\x1f\x7f-\x9f]"
_SLUG = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"
# RFC 3339 in UTC, as producers write it; other offsets, epoch numbers and the rest go the full way.
_UTC_TIME = r"^2\d{3}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)$"
_INT64 = (-(2**63), 2**64 - 1)  # what the log's encoder (orjson) handles, as json_safety says


def _text(char: str, min_length: int | None = None, max_length: int | None = None) -> CoreSchema:
    # A pattern makes pydantic-core read the string as UTF-8, which refuses lone surrogates.
    return cs.str_schema(
        pattern=f"^{char}*$", min_length=min_length, max_length=max_length, strict=True
    )


def _filled(char: str, max_length: int) -> CoreSchema:
    """A string that is not blank (a blank identifier is taken as absent: the full path's case)."""
    pattern = f"^{char}*{_FILLED_CHAR}{char}*$"
    return cs.str_schema(pattern=pattern, max_length=max_length, strict=True)


def _optional(schema: CoreSchema, default: Any = None) -> CoreSchema:
    return cs.with_default_schema(cs.nullable_schema(schema), default=default)


_TIMESTAMP = cs.chain_schema([cs.str_schema(pattern=_UTC_TIME, strict=True), cs.datetime_schema()])
_NAME = _text(_ID_CHAR, 1, 200)
_ATTRIBUTE = cs.union_schema(
    [
        cs.none_schema(),
        cs.bool_schema(strict=True),
        cs.int_schema(strict=True, ge=_INT64[0], le=_INT64[1]),
        cs.chain_schema(
            [cs.is_instance_schema(float), cs.float_schema(strict=True, allow_inf_nan=False)]
        ),
        _text(_SAFE_CHAR),
    ],
    mode="left_to_right",
)
_ATTRIBUTES = cs.dict_schema(_text(_SAFE_CHAR, max_length=100), _ATTRIBUTE, max_length=50)


# --- payload fields, compiled from the models' own annotations ---------------------------------
def _field_schema(hint: Any, metadata: list[Any]) -> CoreSchema | None:
    """The compiled equivalent of a field's type, or None when there is none (the family then
    always goes the full way)."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *inner = get_args(hint)
        return _field_schema(base, [*inner, *metadata])
    if origin in (Union, UnionType):
        args = [a for a in get_args(hint) if a is not NoneType]
        if len(args) == 1 and get_origin(args[0]) is list:
            # `list[X] | None = Field(max_length=…)`: the field's bounds are the list's.
            listed = _field_schema(args[0], metadata)
            return cs.nullable_schema(listed) if listed else None
        inner_schema = _field_schema(args[0], []) if len(args) == 1 else None
        return cs.nullable_schema(inner_schema) if inner_schema and not metadata else None
    if origin is list:
        return _list_field(get_args(hint)[0], metadata)
    if origin is Literal and not metadata:
        return cs.literal_schema(list(get_args(hint)))
    compile_scalar = _SCALARS.get(hint)
    return compile_scalar(metadata) if compile_scalar else None


def _list_field(item_hint: Any, metadata: list[Any]) -> CoreSchema | None:
    item = _field_schema(item_hint, [])
    if item is None or not all(isinstance(m, at.MaxLen | at.MinLen) for m in metadata):
        return None
    low = [m.min_length for m in metadata if isinstance(m, at.MinLen)]
    high = [m.max_length for m in metadata if isinstance(m, at.MaxLen)]
    return cs.list_schema(
        item, min_length=max(low, default=None), max_length=min(high, default=None)
    )


def _str_field(metadata: list[Any]) -> CoreSchema | None:
    checks = {m.func for m in metadata if isinstance(m, BeforeValidator)}
    limits = [m for m in metadata if isinstance(m, StringConstraints)]
    if not checks <= {_SAFE, _ID} or len(limits) + len(checks) != len(metadata) or len(limits) > 1:
        return None
    sc = limits[0] if limits else StringConstraints()
    if (sc.strip_whitespace, sc.to_upper, sc.to_lower, sc.strict, sc.ascii_only) != (None,) * 5:
        return None  # a transformation or mode the compiled string does not repeat
    if sc.pattern is not None:
        if checks:
            return None
        # A pattern alone (Currency): still no NUL or lone surrogate, as json_safety requires.
        own = cs.str_schema(pattern=sc.pattern, min_length=sc.min_length, max_length=sc.max_length)
        return cs.chain_schema([_text(_SAFE_CHAR), own])
    if _SAFE not in checks:
        return None  # a string field allows NUL only where a check of its own stops it
    return _text(_ID_CHAR if _ID in checks else _SAFE_CHAR, sc.min_length, sc.max_length)


def _bounds(metadata: list[Any]) -> dict[str, Any] | None:
    bounds: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, at.Ge):
            bounds["ge"] = m.ge
        elif isinstance(m, at.Le):
            bounds["le"] = m.le
        elif type(m).__name__ == "_PydanticGeneralMetadata":
            bounds.update(vars(m))  # max_digits, decimal_places
        elif type(m).__name__ != "WithJsonSchema":
            return None
    return bounds


def _float_field(metadata: list[Any]) -> CoreSchema | None:
    b = _bounds(metadata)
    if b is None or set(b) != {"ge", "le"}:
        return None  # an unbounded float could be an integer beyond 64 bits
    return cs.float_schema(strict=True, allow_inf_nan=False, **b)


def _int_field(metadata: list[Any]) -> CoreSchema | None:
    b = _bounds(metadata)
    if b is None or set(b) - {"ge", "le"}:
        return None
    return cs.int_schema(strict=True, **({"ge": _INT64[0], "le": _INT64[1]} | b))


def _decimal_field(metadata: list[Any]) -> CoreSchema | None:
    b = _bounds(metadata)
    # The very validator the model has (pydantic-core's), bounded so that no integer is too long.
    return cs.decimal_schema(**b) if b and {"ge", "le"} <= set(b) else None


_SCALARS: dict[Any, Callable[[list[Any]], CoreSchema | None]] = {
    str: _str_field,
    float: _float_field,
    int: _int_field,
    Decimal: _decimal_field,
    bool: lambda metadata: None if metadata else cs.bool_schema(strict=True),
}


def _model_field(info: FieldInfo) -> CoreSchema | None:
    if info.annotation == Attributes:
        schema: CoreSchema | None = _ATTRIBUTES
    else:
        schema = _field_schema(info.annotation, list(info.metadata))
    if schema is None or info.is_required():
        return schema
    # Defaults pass the field's schema, so that they take the form a dump gives them (0 -> 0.0).
    if info.default_factory is not None:
        factory: Any = info.default_factory
        return cs.with_default_schema(schema, default_factory=factory, validate_default=True)
    return cs.with_default_schema(schema, default=info.default, validate_default=True)


def _payload_schema(
    model: type[BaseModel], overrides: Mapping[str, CoreSchema]
) -> CoreSchema | None:
    """The model's fields as a dict, from compiled field schemas; None when the model has a
    validator of its own or a field without a compiled equivalent."""
    decorators = model.__pydantic_decorators__
    if not overrides and (decorators.field_validators or decorators.model_validators):
        return None
    fields: dict[str, cs.TypedDictField] = {}
    for name, info in model.model_fields.items():
        schema = overrides.get(name) or _model_field(info)
        if schema is None:
            return None
        fields[name] = cs.typed_dict_field(schema, required=info.is_required())
    return cs.typed_dict_schema(fields, extra_behavior="forbid")


def _survey_answered(model: type[BaseModel]) -> CoreSchema | None:
    """`survey.answered` by its kind: the score within the kind's scale, and the scale its own
    (the model's validators, compiled; `scale: null` goes the full way)."""
    choices: dict[Any, CoreSchema] = {}
    for kind, (low, high) in SCALES.items():
        scale = f"{low}-{high}"
        overrides = {
            "kind": cs.literal_schema([kind]),
            "score": cs.int_schema(strict=True, ge=low, le=high),
            "scale": cs.with_default_schema(cs.literal_schema([scale]), default=scale),
        }
        choice = _payload_schema(model, overrides)
        if choice is None:
            return None
        choices[kind] = choice
    return cs.tagged_union_schema(choices, discriminator="kind")


# --- the envelope ------------------------------------------------------------------------------
_SLUG_SCHEMA = cs.str_schema(pattern=_SLUG, strict=True)
_CHANNEL = cs.enum_schema(Channel, list(Channel), sub_type="str")


def _customer(
    name: CoreSchema, email: CoreSchema, phone: CoreSchema, key: CoreSchema
) -> CoreSchema:
    def optional(schema: CoreSchema) -> cs.TypedDictField:
        return cs.typed_dict_field(_optional(schema), required=False)

    external_ids = cs.with_default_schema(
        cs.dict_schema(key, name, max_length=20), default_factory=dict
    )
    return cs.typed_dict_schema(
        {
            "customer_id": optional(name),
            "email": optional(email),
            "phone": optional(phone),
            "anonymous_id": optional(name),
            "external_ids": cs.typed_dict_field(external_ids, required=False),
        },
        extra_behavior="forbid",
    )


# Identifiers sent blank are absent to the model: only filled ones are taken here. (The ids of
# external_ids are Names, never blank-is-absent: a blank one is the model's error to report.)
_CUSTOMER = _customer(
    _filled(_ID_CHAR, 200), _filled(_SAFE_CHAR, 320), _filled(_SAFE_CHAR, 40), _SLUG_SCHEMA
)


def _envelope(event_type: str, payload: CoreSchema) -> CoreSchema:
    """What a producer sends, as a dict of validated values (the customer and payload as dicts)."""

    def optional(schema: CoreSchema, default: Any = None) -> cs.TypedDictField:
        return cs.typed_dict_field(_optional(schema, default), required=False)

    return cs.typed_dict_schema(
        {
            "event_id": cs.typed_dict_field(cs.uuid_schema()),
            "source_id": cs.typed_dict_field(
                cs.with_default_schema(_SLUG_SCHEMA, default="http"), required=False
            ),
            "channel": cs.typed_dict_field(_CHANNEL),
            "type": cs.typed_dict_field(cs.literal_schema([event_type])),
            "touchpoint": optional(_SLUG_SCHEMA),
            "customer": cs.typed_dict_field(_CUSTOMER),
            "occurred_at": cs.typed_dict_field(_TIMESTAMP),
            "sent_at": optional(_TIMESTAMP),
            "correlation_id": optional(_NAME),
            "payload": cs.typed_dict_field(
                cs.with_default_schema(payload, default_factory=dict, validate_default=True),
                required=False,
            ),
            "schema_version": cs.typed_dict_field(
                cs.with_default_schema(cs.literal_schema([1]), default=1), required=False
            ),
        },
        extra_behavior="forbid",
    )


@dataclass(frozen=True)
class CompiledType:
    """The compiled validator of one event type, and the JSON form of its payload."""

    validator: SchemaValidator
    channels: frozenset[Channel]
    # The payload as its model's `model_dump(mode="json")` gives it; None when the validated dict
    # already is that (no Decimal to write as a string).
    payload: SchemaSerializer | None


_COMPILED: dict[str, CompiledType | None] = {}


def compiled_type(event_type: str) -> CompiledType | None:
    """The compiled validator of a registered type (built on first use); None when the type is
    not registered or its payload model has a rule the compiler does not know."""
    if event_type not in _COMPILED:
        _COMPILED[event_type] = _compile(event_type)
    return _COMPILED[event_type]


def _compile(event_type: str) -> CompiledType | None:
    found = FAMILIES.get(event_type)
    if found is None:
        return None
    model, channels = found
    special = _survey_answered if model is SurveyAnswered else None
    payload = special(model) if special else _payload_schema(model, {})
    if payload is None:
        return None
    serializer = SchemaSerializer(payload) if _holds(payload, "decimal") else None
    return CompiledType(SchemaValidator(_envelope(event_type, payload)), channels, serializer)


def _holds(schema: Any, kind: str) -> bool:
    """Whether a core schema has a schema of type `kind` anywhere inside it."""
    if isinstance(schema, dict):
        return schema.get("type") == kind or any(_holds(v, kind) for v in schema.values())
    return isinstance(schema, list) and any(_holds(v, kind) for v in schema)


# --- building models from validated values ------------------------------------------------------
M = TypeVar("M", bound=BaseModel)


def construct(model: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """What `model.model_construct` makes of values already validated, for a model with neither
    extra fields nor private attributes, without its per-field loop.

    pydantic-core cannot build these models from compiled fields of our own: it reuses a complete
    model's own validator, Python validators included.
    """
    instance = _new(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", fields_set)
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


_new = object.__new__  # BaseModel has no __new__ of its own
_set = object.__setattr__
CUSTOMER_FIELDS = frozenset(CustomerRef.model_fields)
EVENT_FIELDS = frozenset(Event.model_fields)


# --- decoding what the platform stored ---------------------------------------------------------
def _stored_field(schema: CoreSchema, default: Any = PydanticUndefined) -> cs.TypedDictField:
    if default is PydanticUndefined:
        return cs.typed_dict_field(schema)
    return cs.typed_dict_field(cs.with_default_schema(schema, default=default), required=False)


_TEXT = cs.str_schema()
_STORED_CUSTOMER = _customer(_TEXT, _TEXT, _TEXT, _TEXT)
STORED = SchemaValidator(
    cs.typed_dict_schema(
        {
            "event_id": _stored_field(cs.uuid_schema()),
            "tenant_id": _stored_field(_TEXT),
            "source_id": _stored_field(_TEXT),
            "channel": _stored_field(_CHANNEL),
            "type": _stored_field(_TEXT),
            "touchpoint": _stored_field(_TEXT),
            "customer": _stored_field(_STORED_CUSTOMER),
            "occurred_at": _stored_field(cs.datetime_schema()),
            "sent_at": _stored_field(cs.nullable_schema(cs.datetime_schema()), None),
            "received_at": _stored_field(cs.datetime_schema()),
            "derived_at": _stored_field(cs.datetime_schema()),
            "clock_corrected": _stored_field(cs.bool_schema(), False),
            "correlation_id": _stored_field(cs.nullable_schema(_TEXT), None),
            "payload": cs.typed_dict_field(
                cs.with_default_schema(cs.dict_schema(_TEXT), default_factory=dict),
                required=False,
            ),
            "schema_version": _stored_field(cs.literal_schema([1]), 1),
        },
        extra_behavior="forbid",
    )
)
"""An event as the log stores it, as a dict of typed values: types are checked, the envelope's
rules are not run again (only for what the platform itself validated and wrote)."""

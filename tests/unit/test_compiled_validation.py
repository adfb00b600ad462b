"""The compiled path of validation agrees with the full one (`schemas.compiled`).

`accept_compiled` may decline (None) anything, but what it accepts the full path accepts as the
same event (every field, the fields set, the encoded bytes) and the same fingerprint; and it takes
the typical event of every family, or the ingest pays the full price for it. `decode` (the log's
trusted reader) reads what `encode` wrote as the full validation of the same bytes does.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.compiled import compiled_type
from schemas.envelope import Event
from schemas.families import FAMILIES
from schemas.json_safety import json_violations
from schemas.validate import (
    InvalidEvent,
    accept,
    accept_checked,
    accept_compiled,
    decode,
    encode,
)
from services.ingest.batch import ItemResult, validate_item
from tests.unit.test_validation import VALID

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
TENANT = "acme"


def typical(event_type: str) -> dict[str, Any]:
    channel, payload = VALID[event_type]
    return {
        "event_id": "0b8e29b9-eba2-4e9f-ad75-8fa7fe3aaecf",
        "source_id": "cti",
        "channel": channel,
        "type": event_type,
        "customer": {"email": "ana@example.es", "phone": "+34 600 111 222"},
        "occurred_at": "2026-01-31T11:00:00.250Z",
        "correlation_id": "call-1",
        "payload": {**payload, "attributes": {"vip": True, "n": 3, "x": 1.5, "s": "ñ", "z": None}},
    }


def full(raw: Any) -> tuple[Event, str]:
    """The full path, as `accept` was before the compiled one."""
    structural = json_violations(raw) if isinstance(raw, dict) else []
    return accept_checked(raw, TENANT, NOW, structural)


def assert_agrees(raw: Any) -> bool:
    """Whether the compiled path took `raw`; fails if it took it differently from the full path."""
    sent = copy.deepcopy(raw)
    fast = accept_compiled(raw, TENANT, NOW)
    assert raw == sent, "the compiled path must not change its input"
    try:
        expected = full(raw)
    except InvalidEvent:
        assert fast is None, f"the compiled path took what the full path rejects: {raw!r}"
        return False
    if fast is None:
        return False
    (event, fingerprint), (want, want_fingerprint) = fast, expected
    assert fingerprint == want_fingerprint
    assert event == want and event.__dict__ == want.__dict__
    assert event.customer.__dict__ == want.customer.__dict__
    assert event.model_fields_set == want.model_fields_set
    assert event.customer.model_fields_set == want.customer.model_fields_set
    assert encode(event) == encode(want)
    assert [type(v) for v in event.__dict__.values()] == [type(v) for v in want.__dict__.values()]
    return True


def test_every_registered_family_has_a_compiled_validator() -> None:
    assert [t for t in FAMILIES if compiled_type(t) is None] == []


@pytest.mark.parametrize("event_type", sorted(FAMILIES))
def test_the_typical_event_of_every_family_takes_the_compiled_path(event_type: str) -> None:
    assert assert_agrees(typical(event_type))
    bare = typical(event_type)
    del bare["correlation_id"], bare["source_id"]
    bare["payload"] = dict(VALID[event_type][1])
    assert assert_agrees(bare)


@pytest.mark.parametrize(
    ("members", "taken"),
    [
        (None, True),
        ([], True),
        (["c_a", "c_b"], True),
        (["c_a"] * 100, True),
        (["c_a"] * 101, False),  # more than a group holds
        (["c\nx"], False),  # ids carry no control characters
        ([""], False),
        (["x" * 401], False),
        ("c_a", False),  # a list, not a string
        ([1], False),
    ],
)
def test_a_list_field_compiles_to_what_the_model_enforces(members: Any, taken: bool) -> None:
    raw = typical("customer.erased")
    raw["customer"], raw["payload"] = (
        {"customer_id": "cem:customer:c_a"},
        {
            "erasure_reason": "GDPR",
            "actor": "key-1",
            "members": members,
        },
    )
    assert assert_agrees(raw) is taken


def test_the_compiled_validator_runs_no_python() -> None:
    called: list[str] = []

    def spy(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            called.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    compiled = compiled_type("call.ended")
    assert compiled is not None
    sys.setprofile(spy)
    try:
        compiled.validator.validate_python(typical("call.ended"))
    finally:
        sys.setprofile(None)
    assert [c for c in called if "/schemas/" in c or "/pydantic/" in c] == []


# Each changes one thing of a typical event; every one must agree, taken or not.
CASES: list[tuple[str, Any]] = [
    ("customer.email", ""),
    ("customer.email", "   "),
    ("customer.email", " ana@example.es"),
    ("customer.email", "\x1c"),
    ("customer.email", "a\x00b"),
    ("customer.email", "a\ud800b"),
    ("customer.email", "tab\there"),
    ("customer.email", None),
    ("customer.email", 5),
    ("customer.email", "x" * 321),
    ("customer.customer_id", "cus\n1"),
    ("customer.customer_id", "\u00a0"),
    ("customer.customer_id", "c" * 201),
    ("customer.anonymous_id", "\u2003anon"),
    ("customer.external_ids", {"crm": "C-1"}),
    ("customer.external_ids", {"CRM": "C-1"}),
    ("customer.external_ids", {"crm": ""}),
    ("customer.external_ids", {"crm": " "}),
    ("customer.external_ids", {f"k{i}": "v" for i in range(21)}),
    ("customer.tenant_id", "acme"),
    ("customer", {}),
    ("customer", {"email": "", "phone": None}),
    ("customer", "ana@example.es"),
    ("occurred_at", "2026-01-31T11:00:00+00:00"),
    ("occurred_at", "2026-01-31T13:00:00+02:00"),
    ("occurred_at", "2026-01-31T11:00:00.123456789Z"),
    ("occurred_at", "2026-01-31 11:00:00Z"),
    ("occurred_at", "2026-01-31T11:00:00"),
    ("occurred_at", "2026-02-30T11:00:00Z"),
    ("occurred_at", "1999-12-31T23:59:59Z"),
    ("occurred_at", "2026-01-31T13:00:01Z"),
    ("occurred_at", "2026-01-31T12:59:59Z"),
    ("occurred_at", 1769857200),
    ("occurred_at", 1769857200000),
    ("occurred_at", True),
    ("sent_at", "2026-01-31T11:00:05Z"),
    ("sent_at", "2031-01-31T11:00:00Z"),
    ("sent_at", None),
    ("event_id", "0B8E29B9EBA24F9FAD758FA7FE3AAECF"),
    ("event_id", "urn:uuid:0b8e29b9-eba2-4e9f-ad75-8fa7fe3aaecf"),
    ("event_id", "not-a-uuid"),
    ("source_id", "Web"),
    ("source_id", None),
    ("touchpoint", "support_line"),
    ("touchpoint", None),
    ("touchpoint", "bad touchpoint"),
    ("correlation_id", ""),
    ("correlation_id", None),
    ("correlation_id", "a\tb"),
    ("channel", "sms"),
    ("channel", "WEB"),
    ("schema_version", 1),
    ("schema_version", 2),
    ("schema_version", True),
    ("tenant_id", "acme"),
    ("received_at", "2026-01-31T11:00:00Z"),
    ("surprise", 1),
    ("payload", None),
    ("payload", []),
    ("payload.attributes", {"big": 2**64}),
    ("payload.attributes", {"big": 2**64 - 1}),
    ("payload.attributes", {"small": -(2**63) - 1}),
    ("payload.attributes", {"nan": float("nan")}),
    ("payload.attributes", {"inf": float("inf")}),
    ("payload.attributes", {"k\x00": 1}),
    ("payload.attributes", {"k": "v\x00"}),
    ("payload.attributes", {"k": "\ud800"}),
    ("payload.attributes", {"k": [1, 2]}),
    ("payload.attributes", {"k": {"nested": 1}}),
    ("payload.attributes", {"x" * 101: 1}),
    ("payload.attributes", {str(i): i for i in range(51)}),
    ("payload.attributes", None),
    ("payload.surprise", 1),
]
PAYLOAD_CASES: list[tuple[str, str, Any]] = [
    ("call.ended", "talk_s", True),
    ("call.ended", "talk_s", "12.5"),
    ("call.ended", "talk_s", -1),
    ("call.ended", "talk_s", 7 * 24 * 3600 + 1),
    ("call.ended", "talk_s", 2**70),
    ("call.ended", "talk_s", float("nan")),
    ("call.ended", "resolved", "true"),
    ("call.ended", "resolved", None),
    ("call.ended", "abandoned", 1),
    ("call.ended", "direction", "sideways"),
    ("call.ended", "agent", "ada\nlovelace"),
    ("call.ended", "agent", ""),
    ("call.ended", "transcript", "line one\nline two\x7f"),
    ("call.ended", "transcript", "\x00"),
    ("order.placed", "amount", "97.57"),
    ("order.placed", "amount", "097.570"),
    ("order.placed", "amount", "1E+2"),
    ("order.placed", "amount", "1e2"),
    ("order.placed", "amount", "0.00001"),
    ("order.placed", "amount", "NaN"),
    ("order.placed", "amount", 46.48),
    ("order.placed", "amount", 100),
    ("order.placed", "amount", 10**12),
    ("order.placed", "amount", 10**12 + 1),
    ("order.placed", "amount", 0.1 + 0.2),
    ("order.placed", "amount", True),
    ("order.placed", "currency", "eur"),
    ("order.placed", "items", 2.0),
    ("order.placed", "items", "2"),
    ("order.placed", "items", 100_001),
    ("survey.answered", "score", 10),
    ("survey.answered", "score", 11),
    ("survey.answered", "score", 9.0),
    ("survey.answered", "scale", "0-10"),
    ("survey.answered", "scale", "1-5"),
    ("survey.answered", "scale", None),
    ("survey.answered", "kind", "csat"),
    ("survey.answered", "kind", "ces"),
    ("survey.answered", "kind", "other"),
    ("page.viewed", "url", ""),
    ("page.viewed", "url", "https://x.example/" + "a" * 4000),
    ("page.viewed", "title", None),
    ("message.received", "sender", "bot"),
    ("message.received", "text", "héllo 👋 \u200f"),
    ("alert.resolved", "note", ""),
]


def changed(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, leaf = path.split(".")
    target = raw
    for name in parents:
        target = target[name]
    target[leaf] = value
    return raw


@pytest.mark.parametrize(("path", "value"), CASES)
def test_one_change_to_a_typical_event_agrees(path: str, value: Any) -> None:
    assert_agrees(changed(typical("call.ended"), path, value))


@pytest.mark.parametrize(("event_type", "field", "value"), PAYLOAD_CASES)
def test_one_change_to_a_payload_agrees(event_type: str, field: str, value: Any) -> None:
    assert_agrees(changed(typical(event_type), f"payload.{field}", value))


def test_what_the_compiled_path_declines_is_still_accepted_or_worded_in_full() -> None:
    raw = changed(typical("call.ended"), "occurred_at", "2026-01-31T13:00:00+02:00")
    assert accept_compiled(raw, TENANT, NOW) is None
    assert accept(raw, TENANT, NOW) == full(raw)
    bad = changed(typical("call.ended"), "customer.email", "a\x00b")
    checked = validate_item(3, bad, TENANT, NOW, 64 * 1024)
    assert isinstance(checked, ItemResult)
    assert [(v.code, v.path) for v in checked.errors] == [("string_nul", "customer.email")]


def test_an_event_near_its_size_limit_is_measured_in_full() -> None:
    raw = changed(typical("page.viewed"), "payload.title", "t" * 900)
    size = len(orjson.dumps(raw))
    checked = validate_item(0, raw, TENANT, NOW, size + 10)
    assert not isinstance(checked, ItemResult)  # fits, through the full path's exact measure
    checked = validate_item(0, raw, TENANT, NOW, size - 1)
    assert isinstance(checked, ItemResult)
    assert [v.code for v in checked.errors] == ["event_too_large"]


def test_no_blank_character_escapes_the_filled_pattern() -> None:
    """`_FILLED_CHAR` relies on it: whatever `str.strip` removes is Unicode White_Space or a
    control character, so an identifier the compiled path takes is never blank to the model."""
    compiled = compiled_type("call.ended")
    assert compiled is not None
    for point in range(0x110000):
        char = chr(point)
        if char.isspace() and not 0xD800 <= point < 0xE000:
            raw = changed(typical("call.ended"), "customer", {"email": char})
            assert accept_compiled(raw, TENANT, NOW) is None, hex(point)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8)
    | st.sampled_from(["", " ", "ok", "2026-01-31T11:00:00Z", "97.5", "nps", "inbound", "web"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
PATHS = [path for path, _ in CASES] + [f"payload.{f}" for _, f, _ in PAYLOAD_CASES]


@settings(max_examples=400, deadline=None)
@given(
    event_type=st.sampled_from(sorted(FAMILIES)),
    changes=st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), max_size=3),
)
def test_any_changes_to_a_typical_event_agree(
    event_type: str, changes: list[tuple[str, Any]]
) -> None:
    raw = typical(event_type)
    for path, value in changes:
        with contextlib.suppress(KeyError, TypeError):  # a parent an earlier change replaced
            raw = changed(raw, path, value)
    assert_agrees(raw)


@pytest.mark.parametrize("event_type", sorted(FAMILIES))
def test_decode_reads_the_log_as_full_validation_does(event_type: str) -> None:
    raw = typical(event_type)
    raw["sent_at"] = "2026-01-31T11:00:05Z"
    event, _ = accept(raw, TENANT, NOW)
    data = encode(event)
    read, validated = decode(data), Event.model_validate(orjson.loads(data))
    assert read == validated and read.__dict__ == validated.__dict__
    assert read.customer.__dict__ == validated.customer.__dict__
    assert read.model_fields_set == validated.model_fields_set
    assert encode(read) == data


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"event_id": "x"}',
    ],
)
def test_decode_refuses_what_is_not_an_event(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode(data)


def test_decode_refuses_a_stored_event_with_a_field_too_many() -> None:
    event, _ = accept(typical("call.ended"), TENANT, NOW)
    data = orjson.dumps({**orjson.loads(encode(event)), "surprise": 1})
    with pytest.raises(ValueError):
        decode(data)

"""Values no event field may hold anywhere, even in free-form payloads.

NUL or lone surrogates in strings and keys, integers and floats the log cannot encode, and excessive
nesting: each would fail, or change, when stored or encoded downstream.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from schemas.violations import Violation

# Deeper JSON than any event needs; it also keeps every later encoder far from its recursion limit.
MAX_DEPTH = 32
# Per item, so that a body full of bad strings cannot make a response many times its size.
MAX_REPORTED = 50
# The log's JSON encoder (orjson) handles exactly these integers.
_INT_RANGE = (-(2**63), 2**64 - 1)


def json_violations(value: Any) -> list[Violation]:
    """Values no field may hold anywhere, even in free-form payloads: NUL or lone surrogates in
    strings and keys, integers and floats the log cannot encode, and excessive nesting."""
    if safe_json(value) is not None:
        return []
    found: list[Violation] = []
    _walk(value, (), found)
    return found


def safe_json(value: Any) -> bytes | None:
    """The value as compact JSON (orjson's bytes) when it is plain JSON holding none of the values
    `json_violations` reports; None when that is not certain, and only the walk can tell.

    Each check is exact or errs towards None: orjson refuses lone surrogates and integers
    outside the 64-bit range; a NUL can only appear in its output as the escape `\\u0000`; a
    value nested deeper than MAX_DEPTH needs more opening brackets than that (beyond which the
    depth is measured); and the output reads back as an equal value only when nothing was changed
    on the way (NaN and infinities become null, tuples lists, UUIDs strings).
    """
    try:
        encoded = orjson.dumps(value)
        if (
            b"\\u0000" in encoded
            or (encoded.count(b"{") + encoded.count(b"[") > MAX_DEPTH and _deeper_than(value))
            or orjson.loads(encoded) != value
        ):
            return None
    except Exception:  # whatever orjson refuses or cannot compare: the walk decides
        return None
    return encoded


def _deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether some value lies inside more than `limit` nested objects and arrays."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list) or not value:
        return False
    return limit == 0 or any(_deeper_than(item, limit - 1) for item in value)


def _walk(value: Any, path: tuple[str, ...], found: list[Violation]) -> None:
    if len(found) >= MAX_REPORTED:
        return
    if len(path) > MAX_DEPTH:
        found.append(
            Violation("nested_too_deeply", f"nested deeper than {MAX_DEPTH} levels", _dotted(path))
        )
    elif isinstance(value, dict):
        _walk_object(value, path, found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, (*path, str(i)), found)
    else:
        problem = _scalar_problem(value)
        if problem:
            found.append(Violation(problem[0], problem[1], _dotted(path)))


def _walk_object(value: dict[str, Any], path: tuple[str, ...], found: list[Violation]) -> None:
    for key, item in value.items():
        problem = _string_problem(key)
        if problem:
            found.append(Violation(problem[0], f"key {problem[1]}", _dotted((*path, key))))
        _walk(item, (*path, key), found)


def _scalar_problem(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return "number_out_of_range", "integer outside the 64-bit range"
    if isinstance(value, float) and not math.isfinite(value):
        return "number_out_of_range", "number too large to represent"
    return None


def _string_problem(text: str) -> tuple[str, str] | None:
    # Same rule as the envelope's SafeStr: neither can be stored byte-identically in every engine.
    if "\x00" in text:
        return "string_nul", "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "string_surrogate", "must be valid Unicode (no lone surrogates)"
    return None


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) or "$"

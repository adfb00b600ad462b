"""The simple identity rule of the foundation: which customer an event belongs to.

Explicit customer_id wins; otherwise the strongest identifier present, in the order external id, email,
phone, anonymous id. The event-sourced identity service (services/identity) replaces this behind the
same function signature.
"""

from __future__ import annotations

import re
from typing import Any

from schemas.envelope import CustomerRef


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    digits = re.sub(r"[^0-9]", "", phone)
    return ("+" if phone.strip().startswith("+") else "") + digits


def customer_key(ref: CustomerRef) -> str:
    """The customer id an event is filed under. Deterministic: the same identifiers, the same id."""
    if ref.customer_id:
        return ref.customer_id
    if ref.external_ids:
        namespace = min(ref.external_ids)
        return f"ext:{namespace}:{ref.external_ids[namespace]}"
    if ref.email:
        return f"email:{normalise_email(ref.email)}"
    if ref.phone:
        return f"phone:{normalise_phone(ref.phone)}"
    assert ref.anonymous_id, "CustomerRef guarantees at least one identifier"
    return f"anon:{ref.anonymous_id}"


# How a key names an identifier: the API's `<kind>:` spelling (timeline entries list
# `anonymous_id:…`, `external:shop:1`) and the short prefixes `customer_key` writes, by kind.
_KEY_PREFIXES = (
    ("email:", "email"),
    ("phone:", "phone"),
    ("anonymous_id:", "anonymous_id"),
    ("anon:", "anonymous_id"),
    ("customer_id:", "customer_id"),
)
_EXTERNAL_PREFIXES = ("ext:", "external:")


def split_key(key: str) -> tuple[str, str]:
    """The (kind, raw value) of the identifier a key someone typed names: `email:ana@x.io`,
    `anonymous_id:dev-1`, `external:shop:1`, or the short spellings of `customer_key` (`anon:dev-1`,
    `ext:shop:1`); anything else, an opaque id included, is a `customer_id`. The one parser of
    identifier keys: identity normalises the value with its rules, lookups with their own."""
    for prefix, kind in _KEY_PREFIXES:
        if key.startswith(prefix) and key[len(prefix) :]:
            return kind, key[len(prefix) :]
    for prefix in _EXTERNAL_PREFIXES:
        namespace, sep, value = key[len(prefix) :].partition(":")
        if key.startswith(prefix) and sep and namespace and value:
            return f"external:{namespace}", value
    return "customer_id", key


def customer_member(key: str) -> dict[str, Any]:
    """The `customer` member of an event holding only the identifier a key names (`split_key`):
    `anon:dev-1` -> `{"anonymous_id": "dev-1"}`, `ext:shop:1` -> `{"external_ids": {"shop":
    "1"}}`, an id with a `:` of its own -> `{"customer_id": …}`. Erasing a customer known only by
    its key names its sealing subject from it, as the sealing publisher named its events'."""
    kind, value = split_key(key)
    namespace = kind.removeprefix("external:")
    return {"external_ids": {namespace: value}} if namespace != kind else {kind: value}

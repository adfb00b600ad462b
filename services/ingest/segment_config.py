"""Settings of the Segment-compatible tracking API, and the per-tenant `track` mappings.

A tenant maps Segment `track` event names to our typed events in one JSON file
(`CEM_SEGMENT_MAPPINGS_FILE`); every other `track` becomes `custom.<slug of the name>`:

    {"acme": {"Order Completed": {"type": "order.placed", "touchpoint": "checkout",
                                  "payload": {"order_id": "properties.order_id",
                                              "amount": "properties.revenue",
                                              "currency": "properties.currency"}}},
     "*":    {"Order Refunded": {"type": "order.returned", "payload": {...}}}}

`payload` names, for each field of the typed payload, the dotted path of the value in the
Segment message (a message that gives no usable value for a field is kept as the unmapped
`custom.<slug>`, with a note: segment_prepare). The `"*"` entry applies to every tenant that does
not map the same name itself.
The file is validated when first used: an unknown event type or a malformed entry stops the
service with a message naming it, rather than rejecting events later.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.envelope import Channel, EventType, Slug
from schemas.families import payload_model

ALL_TENANTS = "*"
# Segment's published limits: a call's body, and a batch's body.
SEGMENT_CALL_BYTES = 32 * 1024
SEGMENT_BATCH_BYTES = 500 * 1024


class TrackMapping(BaseModel):
    """How one Segment `track` event name becomes one of our typed events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType
    channel: Channel | None = None
    touchpoint: Slug | None = None
    # payload field -> dotted path in the Segment message, e.g. "properties.revenue"
    payload: dict[str, str] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if payload_model(value) is None:
            raise ValueError(f"{value!r} is not an event type (GET /v1/schemas lists them)")
        return value


class SegmentMappings(BaseModel):
    """Every tenant's mappings, by tenant id (or `*`) and then by Segment event name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[str, dict[str, TrackMapping]] = Field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> dict[str, TrackMapping]:
        return {**self.tenants.get(ALL_TENANTS, {}), **self.tenants.get(tenant_id, {})}


class InvalidMappings(ValueError):
    """The mappings file cannot be read or does not validate; the message says where."""


def load_mappings(path: Path | None) -> SegmentMappings:
    """The mappings in `path` (none when not configured)."""
    if path is None:
        return SegmentMappings()
    try:
        return SegmentMappings(tenants=json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        problem = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(map(str, problem["loc"][1:])) if problem else ""
        reason = problem["msg"] if problem else str(exc)
        detail = f"{where}: {reason}" if where else reason
        raise InvalidMappings(f"CEM_SEGMENT_MAPPINGS_FILE {path}: {detail}") from None


class SegmentSettings(BaseSettings):
    """Env: CEM_SEGMENT_MAPPINGS_FILE, CEM_SEGMENT_MAX_CALL_BYTES, CEM_SEGMENT_MAX_BATCH_BYTES."""

    model_config = SettingsConfigDict(env_prefix="CEM_SEGMENT_", extra="ignore")

    mappings_file: Path | None = None
    max_call_bytes: int = Field(default=SEGMENT_CALL_BYTES, ge=1024)
    max_batch_bytes: int = Field(default=SEGMENT_BATCH_BYTES, ge=1024)

    @cached_property
    def mappings(self) -> SegmentMappings:
        return load_mappings(self.mappings_file)


def segment_settings_of(app: FastAPI) -> SegmentSettings:
    """The app's `state.segment_settings`, read from CEM_SEGMENT_* on first use when the
    composition root did not set it."""
    found: SegmentSettings | None = getattr(app.state, "segment_settings", None)
    if found is None:
        found = SegmentSettings()
        found.mappings  # noqa: B018 - a bad file fails here, on the first call, with its message
        app.state.segment_settings = found
    return found

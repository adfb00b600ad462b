"""From a verified delivery to records to publish and, when something does not map, a dead letter.

Pure: the router (and `cem dead-letters replay`) publish `Intake.outgoing` and keep the dead
letter; this module only maps and validates, exactly like `POST /v1/events` validates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kernel.channels import ChannelConfig, NewDeadLetter
from kernel.ports import Outgoing, PublishStatus
from services.ingest.batch import prepare, safe_violation
from services.ingest.channels.base import Provider, Unmappable, WebhookRequest


@dataclass(frozen=True)
class Intake:
    """The records a delivery maps to, and every violated path of what did not map."""

    outgoing: list[Outgoing] = field(default_factory=list)
    violations: list[dict[str, str]] = field(default_factory=list)
    reason: str = ""

    @property
    def complete(self) -> bool:
        return not self.violations


def map_delivery(
    provider: Provider,
    request: WebhookRequest,
    channel: ChannelConfig,
    max_event_bytes: int,
    bucket_key: bytes,
) -> Intake:
    """Map and validate; a delivery that raises anywhere in its mapping is unmappable, not a 500."""
    unmapped: list[dict[str, str]] = []
    try:
        raw = provider.to_events(request, channel.settings)
    except Unmappable as exc:
        raw, unmapped = exc.mapped, [safe_violation(v) for v in exc.violations]
    except Exception as exc:  # noqa: BLE001 - any failure to map: kept and replayable, not a 500
        # A payload shaped unlike the provider's documentation (a number out of range, nesting a
        # parser cannot follow): kept as a dead letter rather than answered 500 for ever.
        problem = {"code": "mapping_failed", "message": f"{type(exc).__name__}: {exc}", "path": "$"}
        return Intake([], [problem], "mapping_failed")
    prepared = prepare(
        raw, channel.tenant_id, request.received_at, max_event_bytes, bucket_key=bucket_key
    )
    invalid = [
        {**safe_violation(v), "path": f"events.{r.index}.{v.path}"}
        for r in prepared.rejected
        for v in r.errors
    ]
    reason = "unmappable" if unmapped else "invalid_event" if invalid else ""
    return Intake(prepared.outgoing, unmapped + invalid, reason)


def dead_letter_of(
    provider: Provider, request: WebhookRequest, channel: ChannelConfig, intake: Intake
) -> NewDeadLetter:
    return NewDeadLetter(
        tenant_id=channel.tenant_id,
        provider=provider.name,
        channel_id=channel.channel_id,
        received_at=request.received_at,
        url=request.url,
        headers=request.headers,
        body=request.body,
        reason=intake.reason,
        violations=intake.violations,
    )


def counts(statuses: Sequence[PublishStatus]) -> dict[str, int]:
    """Accepted and duplicate events of a delivery. A conflict is a provider retry whose mapped
    time moved (a provider that sends no timestamp): the original is kept, so it counts as one."""
    accepted = sum(1 for s in statuses if s is PublishStatus.accepted)
    return {"accepted": accepted, "duplicates": len(statuses) - accepted}

"""`cem dead-letters replay`: re-run kept deliveries after a mapping (or settings) fix.

Webhook dead letters are mapped again with the channel's current settings and the provider
module's current code, validated with their original arrival time, and published through the
idempotent publisher: what was already stored the first time counts as a duplicate. The
signature is not checked again: it was verified on arrival, and the provider's secret may have
been rotated since. (The consumers' dead letters are re-run by `cem.dead_letter_replay`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kernel.channels import ChannelStore, WebhookDeadLetter
from kernel.ports import Publisher, PublishStatus
from services.ingest.channels.base import WebhookRequest
from services.ingest.channels.intake import Intake, map_delivery
from services.ingest.channels.registry import provider as provider_named


@dataclass
class ReplayReport:
    """How many dead letters were re-stored, were already stored, or still fail."""

    restored: int = 0
    duplicates: int = 0
    still_failing: int = 0

    def add(self, other: ReplayReport) -> None:
        self.restored += other.restored
        self.duplicates += other.duplicates
        self.still_failing += other.still_failing

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.restored} re-stored, {self.duplicates} duplicates, "
            f"{self.still_failing} still failing"
        )


def _remap(
    store: ChannelStore, letter: WebhookDeadLetter, max_event_bytes: int, bucket_key: bytes
) -> Intake:
    adapter, config = provider_named(letter.provider), store.get(letter.channel_id)
    if adapter is None or config is None:
        missing = "provider" if adapter is None else "channel"
        problem = {"code": f"no_{missing}", "message": f"the {missing} is gone", "path": missing}
        return Intake([], [problem], f"no_{missing}")
    request = WebhookRequest(letter.url, letter.headers, letter.body, letter.received_at)
    return map_delivery(adapter, request, config, max_event_bytes, bucket_key)


def _tally(statuses: Sequence[PublishStatus], complete: bool) -> ReplayReport:
    if not complete:
        return ReplayReport(still_failing=1)
    if any(s is PublishStatus.accepted for s in statuses):
        return ReplayReport(restored=1)
    return ReplayReport(duplicates=1)


def replay_webhooks(
    store: ChannelStore,
    publisher: Publisher,
    *,
    bucket_key: bytes,
    provider: str | None = None,
    tenant_id: str | None = None,
    since: datetime | None = None,
    max_event_bytes: int = 64 * 1024,
    limit: int | None = None,
) -> ReplayReport:
    """Re-run the pending webhook dead letters that match every filter given (the oldest
    `limit` of them, when given); their records are keyed with the deployment's `bucket_key`,
    as the webhook route keys them."""
    report = ReplayReport()
    letters = store.dead_letters(provider=provider, tenant_id=tenant_id, since=since, limit=limit)
    for letter in letters:
        intake = _remap(store, letter, max_event_bytes, bucket_key)
        statuses = publisher.publish(intake.outgoing) if intake.outgoing else []
        outcome = _tally(statuses, intake.complete)
        store.settle_dead_letter(
            letter.dead_letter_id,
            replayed=intake.complete,
            reason=intake.reason,
            violations=intake.violations,
        )
        report.add(outcome)
    return report

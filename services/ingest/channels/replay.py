"""`cem dead-letters replay`: re-run kept deliveries after a mapping (or settings) fix.

Webhook dead letters are mapped again with the channel's current settings and the provider
module's current code, validated with their original arrival time, and published through the
idempotent publisher: what was already stored the first time counts as a duplicate. The
signature is not checked again: it was verified on arrival, and the provider's secret may have
been rotated since. (The consumers' dead letters are re-run by `cem.dead_letter_replay`.)

A letter that arrived before an erasure is the erased person's delivery: were it published now,
its events would be sealed under the key a returning subject got since (or under a key of an
identifier identity never saw) and filed under a new customer, readable. So, with a publisher
that seals (`kernel.sealing.ChecksErasures`), each letter that maps is checked first: when a key
of any subject its events name (the one they are sealed under, and each identifier's own) was
destroyed at or after the letter's `received_at`, or at an unknown time (a tombstone kept before
times were), nothing is published, and the letter is settled `erased` with its body cleared
(`ChannelStore.erase_dead_letter`), never to be replayed. A letter received after the
destruction (the subject came back) replays as any other. Without sealing there is no check:
the log and the warehouse hold every event in clear, which an erasure does not make unreadable
either (docs/erasure.md). A letter that still maps to nothing names no subject, so it keeps its
body until retention ends it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kernel.channels import ChannelStore, WebhookDeadLetter
from kernel.ports import Publisher, PublishStatus
from kernel.sealing import ChecksErasures, ErasureCheck
from services.ingest.channels.base import WebhookRequest
from services.ingest.channels.intake import Intake, map_delivery
from services.ingest.channels.registry import provider as provider_named


@dataclass
class ReplayReport:
    """How many dead letters were re-stored, were already stored, still fail, now map to
    nothing to store (a test order, a status the provider's module acknowledges and keeps no
    event of), or were not published because a subject they name was erased after they arrived
    (their bodies cleared); and, when a limit or the time allowed stopped the replay before the
    last letter, the arrival time of the first one left (`next_since`: replay again from it)."""

    restored: int = 0
    duplicates: int = 0
    still_failing: int = 0
    erased: int = 0
    unrecorded: int = 0
    next_since: datetime | None = None

    def add(self, other: ReplayReport) -> None:
        self.restored += other.restored
        self.duplicates += other.duplicates
        self.still_failing += other.still_failing
        self.erased += other.erased
        self.unrecorded += other.unrecorded

    def line(self, what: str, *, erasures: bool = True) -> str:
        """One line of the report; `erasures` False for letters that are never checked against
        erasures (the consumers': each goes back with the bytes it had, sealed or not)."""
        said = (
            f"{what}: {self.restored} re-stored, {self.duplicates} duplicates, "
            f"{self.still_failing} still failing"
        )
        if not erasures:
            return said
        nothing = f", {self.unrecorded} with nothing to store" if self.unrecorded else ""
        return f"{said}{nothing}, {self.erased} erased"


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
    if not statuses:  # mapped whole, to no event: nothing was stored, nor had been
        return ReplayReport(unrecorded=1)
    if any(s is PublishStatus.accepted for s in statuses):
        return ReplayReport(restored=1)
    return ReplayReport(duplicates=1)


def _erased_since_arrival(
    check: ErasureCheck | None, intake: Intake, letter: WebhookDeadLetter
) -> bool:
    if check is None or not intake.outgoing:
        return False
    return check.erased_since([e.record.value for e in intake.outgoing], letter.received_at)


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
    seconds: float | None = None,
) -> ReplayReport:
    """Re-run the pending webhook dead letters that match every filter given (the oldest
    `limit` of them, when given; none started after `seconds`, when given, the first always
    is); their records are keyed with the deployment's `bucket_key`, as the webhook route keys
    them. A letter whose subject was erased after it arrived is settled `erased` instead (with
    a sealing publisher: see the module's docstring). When letters were left, `next_since` is
    the first one's arrival: letters still failing stay pending and are listed first again, so
    a caller going on from it does not re-run them (`since` is inclusive: one that arrived in
    the same microsecond as it may be run twice, which stores nothing twice)."""
    report = ReplayReport()
    check = publisher.erasure_check() if isinstance(publisher, ChecksErasures) else None
    listed = store.dead_letters(
        provider=provider,
        tenant_id=tenant_id,
        since=since,
        limit=None if limit is None else limit + 1,  # one more: whether any is left
    )
    letters = listed if limit is None else listed[:limit]
    left = listed[len(letters) :]
    stop = None if seconds is None else time.monotonic() + seconds
    for n, letter in enumerate(letters):
        if stop is not None and n and time.monotonic() >= stop:
            left = letters[n:]
            break
        intake = _remap(store, letter, max_event_bytes, bucket_key)
        if _erased_since_arrival(check, intake, letter):
            store.erase_dead_letter(letter.dead_letter_id)
            report.add(ReplayReport(erased=1))
            continue
        statuses = publisher.publish(intake.outgoing) if intake.outgoing else []
        outcome = _tally(statuses, intake.complete)
        store.settle_dead_letter(
            letter.dead_letter_id,
            replayed=intake.complete,
            reason=intake.reason,
            violations=intake.violations,
        )
        report.add(outcome)
    report.next_since = left[0].received_at if left else None
    return report

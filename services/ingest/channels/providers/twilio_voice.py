"""Twilio Voice status callbacks (form-encoded) → `call.offered` / `call.answered` / `call.ended`.

Twilio posts one callback per status the tenant subscribed to (`StatusCallbackEvent`): `ringing`
offers the call, `in-progress` answers it, `completed` ends it (talk time from
`CallDuration`), and `busy`, `no-answer`, `canceled`, `failed` end it abandoned. `initiated`
carries nothing the others do not and maps to no event. Queue and agent are not Twilio concepts:
they come from parameters the tenant appends to its callback URL (`?queue=billing&agent=ana`)
or the channel's settings; `QueueTime` (seconds in a `<Queue>`) gives the wait, `hold_s` the hold.
A retry has the same `CallSid` and status, hence the same event id. A leg a `<Dial>` makes
(`Direction` `outbound-dial`) to an agent maps to no event: its `To` is the agent (a `client:` or
`sip:` address, or a number in the channel's `agent_numbers` setting, comma-separated), not a
customer, and the customer's call is its parent (`ParentCallSid`), whose own callbacks carry its
talk time. A `<Dial>` leg to anyone else is a call to a customer (an agent's softphone placing
it: the parent leg is the agent's `client:`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from schemas.violations import Violation
from services.ingest.channels import twilio
from services.ingest.channels.base import (
    Ack,
    WebhookRequest,
    event_id,
    form_body,
    raise_if,
    required,
    violation,
)
from services.ingest.channels.registry import register

ABANDONED = frozenset({"busy", "no-answer", "canceled", "failed"})
TYPES = {"ringing": "call.offered", "in-progress": "call.answered"}
# Statuses Twilio documents that no call event records; any other is a dead letter, not dropped.
SILENT = frozenset({"initiated", "queued"})


def _seconds(value: Any, path: str, problems: list[Violation]) -> float:
    try:
        seconds = float(value or 0)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):  # `nan` and `inf` parse as floats: no duration either
        problems.append(violation(path, f"{path} is not a number of seconds", "bad_number"))
        return 0.0
    return max(0.0, seconds)


def _occurred_at(fields: Mapping[str, str], problems: list[Violation]) -> str | None:
    stamp = required(fields, "Timestamp", problems)
    if stamp is None:
        return None
    try:
        parsed = parsedate_to_datetime(stamp)  # RFC 2822, as Twilio sends it
    except (TypeError, ValueError):
        parsed = None
    # The parser reads a year below 100 as 19xx/20xx (`0001` became 2001), and
    # `-0000` as no zone at all: neither is a time Twilio sends.
    year = _YEAR.search(stamp)
    written = int(year.group(1)) if year and len(year.group(1)) == 4 else None
    if parsed is None or parsed.tzinfo is None or parsed.year != written:
        problems.append(
            violation("Timestamp", "Timestamp is not an RFC 2822 date", "bad_timestamp")
        )
        return None
    return parsed.isoformat()


_YEAR = re.compile(r"\b\d{1,2}\s+[A-Za-z]{3}\s+(\d+)\b")  # the year after the day and month


def _payload(
    kind: str, status: str, fields: Mapping[str, str], extra: Mapping[str, str],
    problems: list[Violation],
) -> dict[str, Any]:  # fmt: skip
    queue, agent = extra.get("queue"), extra.get("agent")
    wait = _seconds(fields.get("QueueTime") or extra.get("wait_s"), "QueueTime", problems)
    hold = _seconds(extra.get("hold_s"), "hold_s", problems)
    attributes = {"provider": "twilio", "call_sid": fields.get("CallSid"), "status": status}
    if kind == "call.offered":
        return {"queue": queue or "default", "attributes": attributes}
    if kind == "call.answered":
        return {"queue": queue, "agent": agent or "unassigned", "queue_wait_s": wait,
                "attributes": attributes}  # fmt: skip
    duration = _seconds(fields.get("CallDuration"), "CallDuration", problems)
    return {
        "queue": queue, "agent": agent, "queue_wait_s": wait, "hold_s": hold,
        "talk_s": max(0.0, duration - wait - hold), "abandoned": status in ABANDONED,
        "direction": "inbound" if fields.get("Direction", "inbound") == "inbound" else "outbound",
        "attributes": attributes,
    }  # fmt: skip


def _to_an_agent(fields: Mapping[str, str], extra: Mapping[str, str]) -> bool:
    to = str(fields.get("To", ""))
    agents = {n.strip() for n in extra.get("agent_numbers", "").split(",") if n.strip()}
    return to.startswith(("client:", "sip:")) or to in agents


class TwilioVoice:
    name: ClassVar[str] = "twilio-voice"
    secret_help: ClassVar[str] = "the Twilio account's auth token"
    signature_header: ClassVar[str] = "X-Twilio-Signature"
    signs_url: ClassVar[bool] = True  # the URL called is signed too (base.refusal says so)
    timestamp_header: ClassVar[str | None] = None

    def verify(self, request: WebhookRequest, secret: str) -> bool:
        return twilio.verify(request, secret)

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        fields, problems = form_body(request), list[Violation]()
        extra = {**{k: str(v) for k, v in settings.items()}, **twilio.url_params(request)}
        sid = required(fields, "CallSid", problems)
        status = required(fields, "CallStatus", problems)
        kind = TYPES.get(status) or ("call.ended" if status in ABANDONED | {"completed"} else None)
        occurred_at = _occurred_at(fields, problems)
        number = twilio.customer_number(fields)
        if not number:
            problems.append(violation("From", "no customer number (From / To)", "missing"))
        if kind is None and status is not None and status not in SILENT:
            known = ", ".join(sorted({*TYPES, *ABANDONED, "completed", *SILENT}))
            message = f"CallStatus {status!r} is not one Twilio documents ({known})"
            problems.append(violation("CallStatus", message, "unmapped_status"))
        raise_if(problems)
        if kind is None:  # `initiated`, `queued`: nothing a call event records
            return []
        if fields.get("Direction") == "outbound-dial" and _to_an_agent(fields, extra):
            return []  # a leg of the customer's call, put through to an agent (see above)
        payload = _payload(kind, status, fields, extra, problems)
        raise_if(problems)
        return [{
            "event_id": event_id(self.name, f"{sid}:{kind}"), "source_id": self.name,
            "channel": "phone", "type": kind, "touchpoint": extra.get("touchpoint", "phone"),
            "customer": {"phone": number}, "occurred_at": occurred_at,
            "correlation_id": fields.get("ParentCallSid") or sid, "payload": payload,
        }]  # fmt: skip

    def ack(self) -> Ack:
        return twilio.EMPTY_TWIML


register(TwilioVoice())

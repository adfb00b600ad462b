"""Typeform webhooks (`form_response`) → one `survey.answered` per question mapped to a metric.

Typeform signs the raw body: `Typeform-Signature: sha256=` + base64 HMAC-SHA256 with the webhook's
secret. Which answers are CSAT, NPS or CES is the tenant's choice, per channel:

    {"questions": {"<field ref>": "nps" | "csat" | "ces"}, "comment": "<field ref>",
     "touchpoint": "<default touchpoint>"}

Hidden fields carry the context the survey link was sent with: `touchpoint`, `correlation_id` and
the customer (`customer_id`, `email`, `phone`); an answer of type `email` names the customer too.
Where an answer counts is METRICS.md's attribution: the interaction of its `correlation_id` (a
post-call survey's link carries the call's id, Twilio's `CallSid`), else the customer's latest
touchpoint before it (the invitation's email opened, as often as not); the hidden `touchpoint` is
the answer's own, counted only when no interaction is found (docs/channels.md).
A response with no mapped question is unmappable (a dead letter to replay once it is mapped).
The response `token` (one per submission) with the question ref is the deduplication key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from schemas.violations import Violation
from services.ingest.channels.base import (
    Ack,
    ChannelSettings,
    WebhookRequest,
    event_id,
    hmac_b64,
    json_body,
    parse_iso,
    raise_if,
    required,
    same_digest,
    violation,
)
from services.ingest.channels.registry import register

PREFIX = "sha256="
CUSTOMER_FIELDS = ("customer_id", "email", "phone")


def _answer_value(answer: Mapping[str, Any]) -> Any:
    """The value of an answer, under the key its type names (`number`, `text`, `email`, …)."""
    return answer.get(str(answer.get("type")))


def _answers_by_ref(response: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    answers = response.get("answers") or []
    return {
        str(a.get("field", {}).get("ref")): a
        for a in answers
        if isinstance(a, Mapping) and isinstance(a.get("field"), Mapping)
    }


def _customer(response: Mapping[str, Any], answers: dict[str, Mapping[str, Any]]) -> dict[str, str]:
    hidden = response.get("hidden") or {}
    found = {k: str(hidden[k]) for k in CUSTOMER_FIELDS if hidden.get(k)}
    email = next((_answer_value(a) for a in answers.values() if a.get("type") == "email"), None)
    if email and "email" not in found:
        found["email"] = str(email)
    return found


def _scores(
    answers: dict[str, Mapping[str, Any]], questions: Mapping[str, str], problems: list[Violation]
) -> list[tuple[str, str, Any]]:
    """(ref, kind, score) for every mapped question answered."""
    scores = [(ref, kind, _answer_value(answers[ref])) for ref, kind in questions.items()
              if ref in answers]  # fmt: skip
    if not scores:
        message = f"no answer to a question mapped to csat/nps/ces (mapped: {sorted(questions)})"
        problems.append(violation("form_response.answers", message, "unmapped_question"))
    return scores


class TypeformSettings(ChannelSettings):
    """A Typeform channel's settings: which questions score which metric, and the comment's."""

    questions: dict[str, Literal["csat", "nps", "ces"]] = Field(
        default_factory=dict, description="field ref → the metric its answer scores"
    )
    comment: str | None = Field(default=None, description="the field ref of the free-text answer")


class Typeform:
    name: ClassVar[str] = "typeform"
    secret_help: ClassVar[str] = "the secret set on the Typeform webhook"
    signature_header: ClassVar[str] = "Typeform-Signature"
    timestamp_header: ClassVar[str | None] = None
    settings_model: ClassVar[type[BaseModel]] = TypeformSettings

    def verify(self, request: WebhookRequest, secret: str) -> bool:
        given = request.headers.get("typeform-signature", "")
        if not given.startswith(PREFIX):
            return False
        return same_digest(hmac_b64(secret, request.body), given.removeprefix(PREFIX))

    def to_events(
        self, request: WebhookRequest, settings: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        body, problems = json_body(request), list[Violation]()
        response = body.get("form_response") if isinstance(body, Mapping) else None
        if not isinstance(response, Mapping):
            raise_if([violation("form_response", "not a form_response delivery", "missing")])
        assert isinstance(response, Mapping)
        token = required(response, "token", problems)
        submitted = required(response, "submitted_at", problems)
        occurred_at = (
            parse_iso(submitted, "form_response.submitted_at", problems) if submitted else None
        )
        answers = _answers_by_ref(response)
        customer = _customer(response, answers)
        if not customer:
            problems.append(violation("form_response.hidden", "no customer_id, email or phone "
                                      "in the hidden fields or answers", "missing"))  # fmt: skip
        scores = _scores(answers, settings.get("questions") or {}, problems)
        raise_if(problems)
        hidden = response.get("hidden") or {}
        comment = answers.get(str(settings.get("comment")))
        return [{
            "event_id": event_id(self.name, f"{token}:{ref}"), "source_id": self.name,
            "channel": "survey", "type": "survey.answered",
            "touchpoint": hidden.get("touchpoint") or settings.get("touchpoint", "survey"),
            "customer": customer, "occurred_at": occurred_at,
            "correlation_id": hidden.get("correlation_id"),
            "payload": {"survey_id": response.get("form_id"), "kind": kind, "score": score,
                        "comment": _answer_value(comment) if comment else None,
                        "attributes": {"provider": "typeform", "question_ref": ref}},
        } for ref, kind, score in scores]  # fmt: skip

    def ack(self) -> Ack:
        return Ack(200, b"ok")


register(Typeform())

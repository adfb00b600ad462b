"""`GET /v1/customers/{id}/export`: everything held about one customer, as a zip (GDPR access).

The customer is addressed as on the other customer routes (its id, an id merged into it, or an
identifier key; `customers.members_of`), and its data is that of every member: the whole unified
timeline with payloads, the profile, its identifiers and their history from the identity store,
its survey answers as stored and its alerts with their lifecycle. Each is a JSON and a CSV file
(`subject_archive`), plus `manifest.json` with the counts of every file and, for a customer
erased by `POST /v1/customers/{id}/erase`, `erased: true` and the erasure's record.

Admins only: the export holds every personal field at once. The tenant comes from the credential,
so another tenant's customer is a 404 like an unknown one (S01). The timeline, answers and alerts
are read a page at a time while the zip streams, so memory stays bounded for any history; what
can fail before the first byte (auth, 404, the profile and identity reads) fails with a status.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from kernel.access_audit import record_access
from kernel.auth import AUTHENTICATED, CAN_EXPORT_SUBJECT, UNAUTHENTICATED, require
from kernel.ports import AccessAudit, AccessEntry, AccessQuery, Principal, Warehouse
from services.identity.erasure import removed
from services.identity.errors import CustomerNotFound
from services.identity.resolver import IdentityResolver
from services.projections.profile import Profile
from services.projections.timeline import MAX_PAGE, TimelineEntry, decode_cursor, from_micros
from services.projections.timeline_page_sql import read_flagged_page
from services.query_api.routers.alerts import AlertOut, alert_out
from services.query_api.routers.customers import CustomerId, members_of, profile_of
from services.query_api.routers.responses import answer_fields
from services.query_api.routers.satisfaction import now
from services.query_api.subject_archive import JsonRow, Section, SubjectArchive
from services.satisfaction.lifecycle_sql import read_states
from services.satisfaction.sql import NO_END, AlertQuery, read_alerts
from services.satisfaction.subject_sql import ANSWERS, SENTIMENT, customer_pages

router = APIRouter(tags=["customers"], responses=AUTHENTICATED)

Exporter = Annotated[Principal, Depends(require(CAN_EXPORT_SUBJECT))]
PAGE = MAX_PAGE  # rows read per query while the zip streams
FORMAT_VERSION = 1
IDENTITY_COLUMNS = (
    "kind", "value", "held_by", "source", "rule", "evidence_event_id", "actor", "linked_at",
    "holders", "status", "seen_at",
)  # fmt: skip
HISTORY_COLUMNS = ("at", "customer_id", "version", "action", "details")


class ZipResponse(StreamingResponse):
    media_type = "application/zip"


class SurveyAnswerOut(BaseModel):
    """A survey answer as stored, with its own touchpoint and channel."""

    event_id: str
    customer_id: str = Field(description="the member of the customer it was filed under")
    answered_at: datetime
    survey_id: str | None
    metric: str = Field(description="survey kind: nps, csat or ces")
    scale: str
    score: int
    verbatim: str | None
    touchpoint: str
    channel: str
    correlation_id: str | None


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a zip: events, profile, identifiers, identity_history, survey_answers and "
        "alerts, each as .json and .csv, and manifest.json with the count of every file",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    **UNAUTHENTICATED,
    403: {"description": "not an admin (the export holds every personal field of the customer)"},
    404: {"description": "no such customer for the caller's tenant"},
    409: {"description": "an identifier key that several customers hold: name one by its id"},
    422: {"description": "an invalid customer id, with the violated path"},
    503: {"description": "the warehouse or identity store does not answer; retry later"},
}


def _answer_out(row: dict[str, Any]) -> SurveyAnswerOut:
    return SurveyAnswerOut(**answer_fields(row), survey_id=row["survey_id"] or None)


def _event_pages(warehouse: Warehouse, tenant_id: str, members: list[str]) -> Iterator[list[Any]]:
    """The unified timeline, newest first, exactly as `GET .../timeline` pages it."""
    cursor = None
    while True:
        page = read_flagged_page(warehouse, tenant_id, members, None, cursor, PAGE)
        if page is None:
            return
        yield [entry.model_dump(mode="json") for entry in page.entries]
        if page.next_cursor is None:
            return
        cursor = decode_cursor(page.next_cursor)


def _answer_pages(warehouse: Warehouse, tenant_id: str, members: list[str]) -> Iterator[list[Any]]:
    for rows in customer_pages(warehouse, ANSWERS, tenant_id, members, PAGE):
        yield [_answer_out(row).model_dump(mode="json") for row in rows]


def _alert_pages(warehouse: Warehouse, tenant_id: str, members: list[str]) -> Iterator[list[Any]]:
    """Every alert of the members, newest first, with its lifecycle, as `GET /v1/alerts` has it."""
    before = (NO_END, "")
    while True:
        query = AlertQuery(tenant_id, customers=tuple(members), limit=PAGE, before=before)
        rows = read_alerts(warehouse, query)
        states = read_states(warehouse, tenant_id, [r["alert_id"] for r in rows])
        yield [alert_out(r, states.get(r["alert_id"])).model_dump(mode="json") for r in rows]
        if len(rows) < PAGE:
            return
        before = (int(rows[-1]["raised_at"]), rows[-1]["alert_id"])


SENTIMENT_COLUMNS = tuple(SENTIMENT.columns.split(", "))
ACCESS_COLUMNS = (
    "at", "actor_kind", "actor_id", "actor_email", "role", "customer_id", "requested_id",
    "resource", "request_id",
)  # fmt: skip


def _sentiment_pages(
    warehouse: Warehouse, tenant_id: str, members: list[str]
) -> Iterator[list[Any]]:
    """The sentiment of every text the members wrote (the label and score; the texts are in
    `events`), newest first."""
    for rows in customer_pages(warehouse, SENTIMENT, tenant_id, members, PAGE):
        yield to_jsonable_python(
            [row | {"written_at": from_micros(int(row["written_at"]))} for row in rows]
        )


def _access_pages(
    audit: AccessAudit | None, tenant_id: str, members: list[str]
) -> Iterator[list[Any]]:
    """Who read the members' data and when (the access audit), newest first: data about the
    person too. The export's own read is recorded before the zip streams, so it is listed."""
    if audit is None:
        return
    for member in members:
        before: tuple[Any, str] | None = None
        while True:
            query = AccessQuery(tenant_id, customer_id=member, before=before, limit=PAGE)
            entries = audit.entries(query)
            yield [_access_row(e) for e in entries]
            if len(entries) < PAGE:
                break
            before = (entries[-1].at, entries[-1].entry_id)


def _access_row(entry: AccessEntry) -> dict[str, Any]:
    row: dict[str, Any] = to_jsonable_python({n: getattr(entry, n) for n in ACCESS_COLUMNS})
    return row


def _identity_records(
    request: Request, tenant_id: str, customer_id: str
) -> tuple[list[JsonRow], list[JsonRow]] | None:
    """Identifiers and identity history as the identity API answers them; None without an
    identity service, empty when identity never registered the customer (a key events carried)."""
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    if identity is None:
        return None
    try:
        found = identity.identities(tenant_id, customer_id)
        history = identity.history(tenant_id, customer_id)
    except CustomerNotFound:
        return [], []
    # Serialised as the identity API's answers are (pydantic: times end in Z).
    return to_jsonable_python(list(found.identities)), to_jsonable_python(history)


def _erasure(request: Request, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
    """What the manifest says of an erasure of the customer (`POST …/erase`): who, why, when it
    was asked (its event) and how much went; None when it was never erased (or no identity)."""
    identity: IdentityResolver | None = getattr(request.app.state, "identity", None)
    if identity is None:
        return None
    try:
        found = identity.erasure_of(tenant_id, customer_id)
    except CustomerNotFound:
        return None
    if found is None:
        return None
    return {
        "event_id": found["erasure_event_id"],
        "reason": found["reason"],
        "actor": found["actor"],
        "identity": found["counts"],
        # None until the keys are gone; the rows' counts as each part recorded them (the
        # `erased-rows` group deletes them after the keys, and adds its counts then).
        "removed": removed(found),
    }


def _filename(at: datetime) -> str:
    # Nothing derived from the customer in a header: ids are often an email or a phone (a hash of
    # one is reversed by trying every number), and headers end up in proxy logs. A random token.
    return f"customer-export-{secrets.token_hex(8)}-{at:%Y%m%dT%H%M%SZ}.zip"


def _manifest(
    tenant_id: str, requested_id: str, members: list[str], identity_service: bool, at: datetime
) -> dict[str, Any]:
    """`manifest.json` without its file counts (`SubjectArchive.finish` adds them)."""
    return {
        "format_version": FORMAT_VERSION,
        "tenant_id": tenant_id,
        "customer_id": members[0],
        "requested_id": requested_id,
        "members": members,
        "identity_service": identity_service,
        "generated_at": at.isoformat().replace("+00:00", "Z"),
    }


def _stream(sections: Sequence[Section], manifest: dict[str, Any]) -> Iterator[bytes]:
    archive = SubjectArchive()
    for section in sections:
        yield from (chunk for chunk in archive.write(section) if chunk)
    yield from archive.finish(manifest)


def _sections(
    warehouse: Warehouse,
    tenant_id: str,
    members: list[str],
    profile: Profile,
    identity: tuple[list[JsonRow], list[JsonRow]],
    audit: AccessAudit | None = None,
) -> list[Section]:
    """What the zip holds, in order; the paged ones are read only as the zip streams."""
    events = _event_pages(warehouse, tenant_id, members)
    answers = _answer_pages(warehouse, tenant_id, members)
    sentiment = _sentiment_pages(warehouse, tenant_id, members)
    alerts = _alert_pages(warehouse, tenant_id, members)
    reads = _access_pages(audit, tenant_id, members)
    return [
        Section("events", list(TimelineEntry.model_fields), events),
        Section("profile", (), [[profile.model_dump(mode="json")]], single=True),
        Section("identifiers", IDENTITY_COLUMNS, [identity[0]]),
        Section("identity_history", HISTORY_COLUMNS, [identity[1]]),
        Section("survey_answers", list(SurveyAnswerOut.model_fields), answers),
        Section("text_sentiment", SENTIMENT_COLUMNS, sentiment),
        Section("alerts", list(AlertOut.model_fields), alerts),
        Section("access_audit", ACCESS_COLUMNS, reads),
    ]


@router.get(
    "/v1/customers/{customer_id:path}/export", response_class=ZipResponse, responses=_RESPONSES
)
def export_customer(request: Request, principal: Exporter, customer_id: CustomerId) -> ZipResponse:
    """Everything held about the customer and every customer merged into it, as a zip."""
    tenant_id, warehouse = principal.tenant_id, request.app.state.warehouse
    members = members_of(request, tenant_id, customer_id)
    at = now(request)
    # The value and churn risk are derived data about the person: the export holds them too.
    profile = profile_of(warehouse, tenant_id, members, at)
    identity = _identity_records(request, tenant_id, members[0])
    audit = getattr(request.app.state, "access_audit", None)
    sections = _sections(warehouse, tenant_id, members, profile, identity or ([], []), audit)
    manifest = _manifest(tenant_id, customer_id, members, identity is not None, at)
    # An erased customer's export says so: what is left is the anonymous rest (docs/erasure.md).
    erasure = _erasure(request, tenant_id, members[0])
    manifest |= {"erased": erasure is not None, "erasure": erasure}
    # Recorded before the first byte leaves: an export the audit cannot record is refused (503).
    record_access(request, principal, members[0], "export", customer_id)
    headers = {
        "Content-Disposition": f'attachment; filename="{_filename(at)}"',
        "Cache-Control": "no-store",
    }
    return ZipResponse(_stream(sections, manifest), headers=headers)

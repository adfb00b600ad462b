"""Closing the loop on alerts: `POST /v1/alerts/{alert_id}/assign|acknowledge|resolve`.

Managers and admins only. Each action is published as an event on the log through the same
publisher as ingest (idempotent, acknowledged before the answer), so it survives `cem replay`. An
at-risk alert's action is filed under exactly the customer the alert was filed under (without
asking identity again, so a merge, split or unlink since cannot send it elsewhere) and shows on
that customer's timeline;
a drift alert's names the alert's touchpoint and the tenant-level subject, so no timeline shows it
(services/satisfaction/lifecycle.py). The status `GET /v1/alerts` shows is the projection of those
events, so it follows within the processing delay.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from kernel.api_errors import ApiError
from kernel.auth import AUTHENTICATED, UNAUTHENTICATED, require
from kernel.ports import Principal
from kernel.processing import to_micros
from kernel.request_body import json_body, openapi_body
from schemas.families import Note
from services.query_api.platform_events import record_event
from services.query_api.routers.satisfaction import now
from services.satisfaction.lifecycle import (
    Action,
    Command,
    InvalidTransition,
    Status,
    Subject,
    next_status,
)
from services.satisfaction.lifecycle_sql import AlertState, read_states, subject_of

router = APIRouter(tags=["alerts"], responses=AUTHENTICATED)

CAN_ACT_ON_ALERTS = frozenset({"manager", "admin"})
Manager = Annotated[Principal, Depends(require(CAN_ACT_ON_ALERTS))]
AlertId = Annotated[str, Path(min_length=1, max_length=200)]
# An action is a note at most: the key is checked first, then at most this much body is read.
MAX_BODY_BYTES = 16 * 1024
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON"},
    **UNAUTHENTICATED,
    403: {"description": "not a manager or admin, or no CSRF token with a session cookie"},
    413: {"description": f"body over {MAX_BODY_BYTES} bytes"},
    422: {"description": "invalid body or alert id, with every violated path"},
    404: {
        "description": "no such alert for the caller's tenant (a drift alert: none of the "
        "days closed in the last 31 days)"
    },
    409: {"description": "the action is not allowed from the alert's current status"},
    503: {"description": "the event log cannot acknowledge now; retry later"},
}


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(min_length=1, max_length=200, examples=["ana@example.com"])
    note: Note | None = None


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note | None = None


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = Field(
        description="what was done; shown on the alert, and on its customer's timeline if any"
    )


class AlertActionResult(BaseModel):
    alert_id: str
    status: Status = Field(description="the status this action leads to")
    event_id: str = Field(description="the event recorded on the log")


def _current(request: Request, tenant_id: str, alert_id: str) -> tuple[Subject, AlertState]:
    warehouse = request.app.state.warehouse
    subject = subject_of(warehouse, tenant_id, alert_id, to_micros(now(request)))
    if subject is None:
        raise ApiError(404, "not_found", "no such alert")
    state = read_states(warehouse, tenant_id, [alert_id]).get(alert_id, AlertState())
    return subject, state


def _act(
    request: Request,
    principal: Principal,
    alert_id: str,
    action: Action,
    note: str | None,
    assignee: str | None = None,
) -> AlertActionResult:
    subject, state = _current(request, principal.tenant_id, alert_id)
    try:
        status = next_status(state.status, action)
    except InvalidTransition as exc:
        raise ApiError(409, "invalid_transition", str(exc)) from None
    command = Command(action, alert_id, subject, principal.key_id, note, assignee)
    at = now(request)
    event = record_event(request, command.to_raw_event(at), principal.tenant_id, at, "alert action")
    return AlertActionResult(alert_id=alert_id, status=status, event_id=str(event.event_id))


@router.post(
    "/v1/alerts/{alert_id}/assign",
    response_model=AlertActionResult,
    responses=_RESPONSES,
    openapi_extra=openapi_body(AssignBody),
)
def assign_alert(
    request: Request,
    principal: Manager,
    alert_id: AlertId,
    body: Annotated[AssignBody, Depends(json_body(AssignBody, MAX_BODY_BYTES))],
) -> AlertActionResult:
    """Give the alert to someone (again, to reassign it)."""
    return _act(request, principal, alert_id, Action.assign, body.note, body.assignee)


@router.post(
    "/v1/alerts/{alert_id}/acknowledge", response_model=AlertActionResult, responses=_RESPONSES
)
def acknowledge_alert(
    request: Request,
    principal: Manager,
    alert_id: AlertId,
    body: Annotated[
        AcknowledgeBody | None, Depends(json_body(AcknowledgeBody, MAX_BODY_BYTES, optional=True))
    ],
) -> AlertActionResult:
    """Say that someone is on it."""
    note = body.note if body is not None else None
    return _act(request, principal, alert_id, Action.acknowledge, note)


@router.post(
    "/v1/alerts/{alert_id}/resolve",
    response_model=AlertActionResult,
    responses=_RESPONSES,
    openapi_extra=openapi_body(ResolveBody),
)
def resolve_alert(
    request: Request,
    principal: Manager,
    alert_id: AlertId,
    body: Annotated[ResolveBody, Depends(json_body(ResolveBody, MAX_BODY_BYTES))],
) -> AlertActionResult:
    """Close the alert with a note saying what was done."""
    return _act(request, principal, alert_id, Action.resolve, body.note)

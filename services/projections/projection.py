"""The `projections` consumer: timeline, profile facts and identifier lookup from every event."""

from __future__ import annotations

from cem.processing import Rows
from schemas.envelope import Event
from services.projections import sql
from services.projections.lookup import to_identifier_rows
from services.projections.profile import to_profile_facts
from services.projections.timeline import to_timeline_rows


class ProjectionsProjection:
    """Implements `cem.processing.Projection`; pure, so a runner can replay it at will (F13)."""

    name = "projections"

    def ddl(self, version: tuple[int, ...]) -> list[str]:
        return sql.ddl(version)

    def rows(self, event: Event, customer_id: str | None = None) -> Rows:
        return {
            sql.TIMELINE: to_timeline_rows(event, customer_id),
            sql.PROFILE_FACTS: to_profile_facts(event, customer_id),
            sql.IDENTIFIERS: to_identifier_rows(event, customer_id),
        }

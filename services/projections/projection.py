"""The `projections` consumer: timeline, contact events, profile facts and identifier lookup from
every event."""

from __future__ import annotations

import logging

from kernel.customer_key import customer_key
from kernel.ports import Warehouse
from kernel.processing import Rows
from schemas.envelope import Event
from schemas.families import is_tenant_level
from services.identity.rules import IdentityRules
from services.projections import arrivals, contact_events, sql
from services.projections.lookup import to_identifier_rows
from services.projections.profile import to_profile_facts
from services.projections.timeline import to_timeline_rows

log = logging.getLogger(__name__)


class ProjectionsProjection:
    """Implements `kernel.processing.Projection`; pure, so a runner can replay it at will (F13)."""

    name = "projections"

    def __init__(self, rules: IdentityRules | None = None) -> None:
        # Identity's rules, as the deployment configures them (`load_rules`): the identifiers a
        # row lists are those identity reads with them (identifiers.py). Default: the product's.
        self.rules = rules or IdentityRules()

    def ddl(self, version: tuple[int, ...]) -> list[str]:
        return sql.ddl(version) + arrivals.ddl(version)

    def migrate(self, warehouse: Warehouse) -> None:
        """Make the tables this release adds beside an earlier release's (after `ddl`), filled
        from them, each once: the by-event arrivals from `stream_arrivals` (`arrivals.migrate`)
        and the contact events from the timeline (`contact_events.backfill`)."""
        arrivals.migrate(warehouse)
        if copied := contact_events.backfill(warehouse):
            log.info("contact events copied from %d timeline rows of an earlier release", copied)

    def rows(self, event: Event, customer_id: str | None = None) -> Rows:
        if is_tenant_level(event):  # about a touchpoint (a drift alert's action): no person's
            return {}  # timeline, profile or identifier; satisfaction projects its status
        home = customer_id or customer_key(event.customer)
        rules = self.rules.for_tenant(event.tenant_id)
        timeline = to_timeline_rows(event, home, rules)
        # Arrivals last: runners insert tables in this order, so an arrival a live stream sees
        # always finds its timeline row (services/projections/arrivals.py).
        return {
            sql.TIMELINE: timeline,
            contact_events.CONTACT_EVENTS: contact_events.to_contact_event_rows(timeline),
            sql.PROFILE_FACTS: to_profile_facts(event, home, rules),
            sql.IDENTIFIERS: to_identifier_rows(event, home, rules),
            **arrivals.to_arrival_rows(event, home),
        }

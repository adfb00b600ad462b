"""The `satisfaction` consumer's projection: events → responses, interactions and alerts rows."""

from __future__ import annotations

from kernel.ports import Warehouse
from kernel.processing import Rows
from schemas.envelope import Event
from services.satisfaction import attribution_sql, lifecycle_sql, sentiment_sql, sql
from services.satisfaction.alerts import to_alert_rows, to_sentiment_alerts
from services.satisfaction.attribution_sql import to_touchpoint_rows
from services.satisfaction.lifecycle import is_alert_action, to_action_row
from services.satisfaction.responses import (
    is_interaction,
    is_survey_answer,
    to_interaction_row,
    to_response_row,
)
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE, to_sentiment_rows
from services.service_metrics import sql as service_sql
from services.service_metrics.facts import to_service_rows


class SatisfactionProjection:
    """Implements `kernel.processing.Projection`. Pure: the runner does the reading and writing."""

    name = "satisfaction"

    def ddl(self, version: tuple[int, ...]) -> list[str]:
        return (
            sql.ddl(version)
            + lifecycle_sql.ddl(version)
            + attribution_sql.ddl(version)
            + service_sql.ddl(version)
            + sentiment_sql.ddl(version)
        )

    def migrate(self, warehouse: Warehouse) -> None:
        """Nothing to bring up to date: its tables are as first released."""

    def rows(self, event: Event, customer_id: str | None = None) -> Rows:
        # The service metrics' facts ride on this consumer rather than a consumer of their own:
        # the event is already read, decoded and filed here, so they cost one dict per contact
        # event instead of another read, decode and filing of the whole log.
        rows = (
            self._satisfaction_rows(event, customer_id)
            | to_touchpoint_rows(event, customer_id)
            | to_service_rows(event, customer_id)
        )
        return self._with_sentiment(rows, event, customer_id)

    @staticmethod
    def _with_sentiment(rows: Rows, event: Event, customer_id: str | None) -> Rows:
        # A survey comment can raise a sentiment alert beside its answer's own: both are kept.
        texts = to_sentiment_rows(event, customer_id).get(TEXT_SENTIMENT_TABLE, [])
        if not texts:
            return rows
        alerts = [alert for text in texts for alert in to_sentiment_alerts(text)]
        merged = {**rows, TEXT_SENTIMENT_TABLE: texts}
        if alerts:
            merged[sql.ALERTS_TABLE] = [*rows.get(sql.ALERTS_TABLE, []), *alerts]
        return merged

    def _satisfaction_rows(self, event: Event, customer_id: str | None) -> Rows:
        if is_survey_answer(event):
            return self._answer_rows(event, customer_id)
        if is_alert_action(event):
            return {lifecycle_sql.ACTIONS_TABLE: [to_action_row(event)]}
        if is_interaction(event):
            return {sql.INTERACTIONS_TABLE: [to_interaction_row(event)]}
        return {}

    @staticmethod
    def _answer_rows(event: Event, customer_id: str | None) -> Rows:
        response = to_response_row(event, customer_id)
        rows: Rows = {sql.RESPONSES_TABLE: [response]}
        alerts = to_alert_rows(response)
        if alerts:
            rows[sql.ALERTS_TABLE] = alerts
        return rows

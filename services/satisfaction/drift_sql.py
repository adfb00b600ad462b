"""drift@1 read from the attributed answers (ClickHouse SQL that also runs on server 18.16).

Evaluated when read, over closed UTC days only, from the stored answers attributed as the cells
attribute them (`attribution_sql`): the same log gives the same alerts, with the same ids, live,
after a replay, or read again later (an answer that arrives late for a closed day changes that
day's alert, as it changes that day's cell). One aggregate query gives the daily samples of every
touchpoint and metric; a second reads the answers of every day that raised an alert (one query
for all of them), which the alerts link to. Only fixed fragments are formatted into SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernel.ports import Warehouse
from services.satisfaction.alert_texts import DRIFT, AlertText
from services.satisfaction.attribution_sql import ATTRIBUTED_RESPONSES, attributed_responses
from services.satisfaction.drift import (
    BASELINE_DAYS,
    DAY_S,
    DRIFT_METRICS,
    DriftAlert,
    Sample,
    detect,
)
from services.satisfaction.sql import AlertQuery, read_alerts

# Answers an alert links to at most (the worst first would need a rank; oldest first is stable).
MAX_LINKED_ANSWERS = 100

_MATCHES = " OR ".join(f"(kind = '{m.kind}' AND scale = '{m.scale}')" for m in DRIFT_METRICS)
_CONTRIBUTION = """multiIf(
    kind = 'csat', if(score >= 4, 100., 0.),
    kind = 'nps', multiIf(score >= 9, 100., score <= 6, -100., 0.),
    toFloat64(score))"""
_DAY = f"intDiv(intDiv(answered_at, 1000000), {DAY_S}) * {DAY_S}"

DAILY_SAMPLES_SQL = f"""
    SELECT touchpoint, kind, scale, day, count() AS n, sum(contribution) AS total,
        sum(contribution * contribution) AS squares
    FROM (
        SELECT touchpoint, kind, scale, {_CONTRIBUTION} AS contribution,
            {_DAY} AS day
        FROM ({ATTRIBUTED_RESPONSES})
        WHERE {_MATCHES}
    )
    GROUP BY touchpoint, kind, scale, day
    ORDER BY day, touchpoint, kind"""


def answers_sql(days: int) -> str:
    """The answers of the drift metrics answered on any of `days` UTC days (parameters `day_0`,
    `day_1`, ... within [since, until)), oldest first."""
    in_days = ", ".join(f"{{day_{i}:Int64}}" for i in range(days))
    return f"""
    SELECT event_id, touchpoint, kind, scale, score, {_DAY} AS day
    FROM ({attributed_responses(f" AND {_DAY} IN ({in_days})")})
    WHERE {_MATCHES}
    ORDER BY answered_at, event_id"""


# An alert's `score` is the period's value, on the metric's own scale (the answers' for CES).
_SCALES = {"csat": "percent", "nps": "-100-100"}
_KEYS = {(m.kind, m.scale): m.key for m in DRIFT_METRICS}


def read_daily_samples(
    warehouse: Warehouse, tenant_id: str, since: int, until: int
) -> dict[tuple[str, str, int], Sample]:
    """Samples by (attributed touchpoint, metric key, UTC day) of answers in [since, until)."""
    rows = warehouse.select(
        DAILY_SAMPLES_SQL, {"tenant_id": tenant_id, "since": since, "until": until}
    )
    return {
        (r["touchpoint"], _KEYS[(r["kind"], r["scale"])], int(r["day"])): Sample(
            int(r["n"]), float(r["total"]), float(r["squares"])
        )
        for r in rows
    }


@dataclass(frozen=True)
class LinkedAlert:
    alert: DriftAlert
    answers: list[str]  # event ids of the period's answers that pull the metric down
    answers_total: int  # how many there are (the list stops at MAX_LINKED_ANSWERS)


def _linked(
    warehouse: Warehouse, tenant_id: str, alerts: Sequence[DriftAlert]
) -> list[LinkedAlert]:
    """Each alert with the answers of its day that pull its metric down: one query for all."""
    days = sorted({a.period_start for a in alerts})
    if not days:
        return []
    params: dict[str, Any] = {f"day_{i}": d for i, d in enumerate(days)}
    since, until = days[0] * 1_000_000, (days[-1] + DAY_S) * 1_000_000
    rows = warehouse.select(
        answers_sql(len(days)), {"tenant_id": tenant_id, "since": since, "until": until, **params}
    )
    by_cell: dict[tuple[int, str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for r in rows:
        by_cell[(int(r["day"]), r["touchpoint"], r["kind"], r["scale"])].append(
            (int(r["score"]), r["event_id"])
        )
    return [
        _link(a, by_cell[(a.period_start, a.touchpoint, a.metric.kind, a.metric.scale)])
        for a in alerts
    ]


def _link(alert: DriftAlert, answers: Sequence[tuple[int, str]]) -> LinkedAlert:
    ids = [event_id for score, event_id in answers if alert.metric.drives(score)]
    return LinkedAlert(alert, ids[:MAX_LINKED_ANSWERS], len(ids))


def closed_days(since: int, until: int) -> list[int]:
    """Start (epoch s) of every UTC day that lies wholly in [since, until) (epoch micros)."""
    first = -(-since // 1_000_000 // DAY_S) * DAY_S
    last = until // 1_000_000 // DAY_S * DAY_S  # the day `until` falls in is not closed
    return list(range(first, last, DAY_S))


def read_drift_alerts(
    warehouse: Warehouse, tenant_id: str, days: Sequence[int]
) -> list[LinkedAlert]:
    """drift@1 alerts of the given days (epoch s of UTC day starts), oldest first."""
    return _linked(warehouse, tenant_id, _detected(warehouse, tenant_id, days))


def _detected(warehouse: Warehouse, tenant_id: str, days: Sequence[int]) -> list[DriftAlert]:
    if not days:
        return []
    since = (min(days) - BASELINE_DAYS * DAY_S) * 1_000_000
    until = (max(days) + DAY_S) * 1_000_000
    return detect(tenant_id, read_daily_samples(warehouse, tenant_id, since, until), days)


def drift_text(a: DriftAlert) -> AlertText:
    """What a drift alert says (services/satisfaction/alert_texts.py)."""
    found = a.found
    return AlertText(DRIFT, {
        "metric": a.metric.key, "touchpoint": a.touchpoint, "drop": f"{found.drop:.1f}",
        "unit": a.metric.kind, "low": f"{found.interval[0]:.1f}",
        "high": f"{found.interval[1]:.1f}", "baseline_days": str(BASELINE_DAYS),
        "baseline": f"{a.baseline.mean:.1f}", "n": str(a.period.n),
        "baseline_n": str(a.baseline.n), "p": f"{found.p_value:.2g}",
    })  # fmt: skip


def alert_row(tenant_id: str, linked: LinkedAlert) -> dict[str, Any]:
    """A drift alert as `GET /v1/alerts` lists it."""
    a, found = linked.alert, linked.alert.found
    value = round(a.period.mean)
    base = a.baseline.mean
    text = drift_text(linked.alert)
    return {
        "tenant_id": tenant_id,
        "alert_id": a.alert_id,
        "customer_id": "",
        "rule": f"drift.{a.metric.kind}",
        "severity": a.severity,
        "metric": a.metric.kind,
        "score": value,
        "scale": _SCALES.get(a.metric.kind, a.metric.scale),
        "touchpoint": a.touchpoint,
        "channel": "",
        "agent": "",
        "queue": "",
        "correlation_id": "",
        "event_id": linked.answers[0] if linked.answers else "",
        "raised_at": (a.period_start + DAY_S) * 1_000_000,
        "message": text.english(),
        "message_code": text.code,
        "message_params": text.params,
        "drift": {
            "period_start": a.period_start,
            "period_end": a.period_start + DAY_S,
            "baseline_start": a.period_start - BASELINE_DAYS * DAY_S,
            "definition_key": a.metric.key,
            "test": a.metric.test,
            "period_value": a.period.mean,
            "period_n": a.period.n,
            "baseline_value": base,
            "baseline_n": a.baseline.n,
            "drop": found.drop,
            "drop_interval": found.interval,
            "unit": a.metric.unit,
            "p_value": found.p_value,
            "answers": linked.answers,
            "answers_total": linked.answers_total,
        },
    }


# `GET /v1/alerts` evaluates the days that closed in the last `LOOKBACK_DAYS` before its `until`
# (or now): each read costs two queries over 28 + 31 days of answers, whatever the range asked.
LOOKBACK_DAYS = 31


def days_raised_in(since: int, until: int, as_of: int) -> list[int]:
    """Start (epoch s) of the UTC days whose alerts are raised in [since, until) (epoch micros): a
    day's alert is raised when it closes, at its end, and only once closed by `as_of`."""
    end = min(until - 1, as_of) // 1_000_000  # the latest moment a day may have closed at
    start = max(since // 1_000_000, end - LOOKBACK_DAYS * DAY_S + 1)
    first_end = -(-start // DAY_S) * DAY_S
    return [e - DAY_S for e in range(first_end, end + 1, DAY_S)]


def drift_alert_rows(
    warehouse: Warehouse,
    tenant_id: str,
    window: tuple[int, int, int],
    touchpoints: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Drift alerts raised in [since, until) as of a moment (`window`, epoch micros), as
    `GET /v1/alerts` lists them, newest first; `touchpoints` any of, empty for all."""
    since, until, as_of = window
    found = read_drift_alerts(warehouse, tenant_id, days_raised_in(since, until, as_of))
    rows = [alert_row(tenant_id, a) for a in found]
    wanted = [r for r in rows if not touchpoints or r["touchpoint"] in touchpoints]
    return sorted(wanted, key=lambda r: (r["raised_at"], r["alert_id"]), reverse=True)


def drift_of(warehouse: Warehouse, query: AlertQuery, as_of: int) -> list[dict[str, Any]]:
    """The drift alerts of `query`'s range as of a moment (epoch micros), from any position: the
    same for every page of one listing; none for a query of some customers' or some channels'
    alerts (a drift alert is a touchpoint's, on any channel)."""
    if query.customers is not None or query.channels:
        return []
    window = (query.since, query.until, as_of)
    return drift_alert_rows(warehouse, query.tenant_id, window, query.touchpoints)


def read_alerts_with_drift(
    warehouse: Warehouse,
    query: AlertQuery,
    as_of: int,
    drift: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The stored alerts `query` asks for with the drift alerts of its range as of a moment (epoch
    micros), newest first, at most `query.limit`; `drift`: `drift_of` the same query and moment,
    when a listing of several pages has it already."""
    stored = read_alerts(warehouse, query)
    if query.customers is not None or query.channels:
        return stored
    if drift is None:
        drift = drift_of(warehouse, query, as_of)
    after = [r for r in drift if (r["raised_at"], r["alert_id"]) < query.before]
    newest_first = sorted(
        stored + after, key=lambda r: (int(r["raised_at"]), r["alert_id"]), reverse=True
    )
    return newest_first[: query.limit]


def find_drift_alert(
    warehouse: Warehouse, tenant_id: str, alert_id: str, as_of: int
) -> DriftAlert | None:
    """The drift alert of that id among those `GET /v1/alerts` evaluates as of `as_of` (epoch
    micros: the days closed in the last `LOOKBACK_DAYS`), or None. One aggregate query: the id is
    a hash, so the days are evaluated and the id looked for among their alerts."""
    found = _detected(warehouse, tenant_id, days_raised_in(0, as_of + 1, as_of))
    return next((a for a in found if a.alert_id == alert_id), None)

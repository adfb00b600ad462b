"""Service metrics as named, versioned definitions (METRICS.md v1).

A definition never changes once published: a new formula is a new version beside the old one. The
warehouse computes them (`sql.py`); tests hold the SQL equal to an independent pandas computation.
"""

from __future__ import annotations

from dataclasses import dataclass

# Service level counts a contact as answered in time when its queue wait is at most this.
DEFAULT_SERVICE_LEVEL_S = 20.0


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    version: int
    unit: str
    description: str

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


SERVICE_DEFINITIONS = (
    ServiceDefinition(
        "frt_p50", 1, "seconds",
        "median of first response times: a conversation's first inbound customer message "
        "(chat, SMS, social, email reply) to the first human agent reply; bot replies do not "
        "stop the clock; the value at rank floor(0.5·n) of the sorted times; n = answered "
        "conversations",
    ),
    ServiceDefinition(
        "frt_p90", 1, "seconds",
        "90th percentile of first response times, the value at rank floor(0.9·n) of the sorted "
        "times",
    ),
    ServiceDefinition("frt_mean", 1, "seconds", "mean first response time"),
    ServiceDefinition(
        "frt_business_p50", 1, "seconds",
        "median of first response times in business hours: the seconds between the same two "
        "messages as frt_p50@1 during which the tenant's calendar is open (its opening hours "
        "per weekday in its time zone, holidays closed); the value at rank floor(0.5·n); "
        "n = answered conversations",
    ),
    ServiceDefinition(
        "frt_business_p90", 1, "seconds",
        "90th percentile of first response times in business hours, the value at rank "
        "floor(0.9·n)",
    ),
    ServiceDefinition(
        "frt_business_mean", 1, "seconds", "mean first response time in business hours"
    ),
    ServiceDefinition(
        "aht", 1, "seconds",
        "(talk + hold + wrap-up) / handled calls; handled = ended and not abandoned",
    ),
    ServiceDefinition(
        "asa", 1, "seconds", "mean queue wait of answered inbound calls (average speed of answer)"
    ),
    ServiceDefinition(
        "service_level", 1, "percent",
        "100 × inbound calls answered within T seconds (default 20) / inbound calls offered; "
        "abandoned calls count as failures",
    ),
    ServiceDefinition(
        "abandonment", 1, "percent", "100 × abandoned inbound calls / inbound calls offered"
    ),
    ServiceDefinition(
        "transfer", 1, "percent",
        "100 × handled calls whose conversation has a call.transferred / handled calls",
    ),
    ServiceDefinition(
        "response_rate", 1, "percent",
        "100 × surveys sent that have an answer with the same survey_id / surveys sent",
    ),
)  # fmt: skip

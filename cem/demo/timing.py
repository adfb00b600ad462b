"""Time in the demo: epoch milliseconds, their RFC 3339 stamps, and how far apart steps are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return (moment - EPOCH) // timedelta(milliseconds=1)


class IsoStamper:
    """Epoch milliseconds to RFC 3339 with Z. Caches the date, which consecutive events share."""

    def __init__(self) -> None:
        self.day, self.date = -1, ""

    def __call__(self, ms: int) -> str:
        day, ms = divmod(ms, DAY)
        if day != self.day:
            self.day, self.date = day, f"{EPOCH + timedelta(days=day):%Y-%m-%d}"
        second, milli = divmod(ms, 1000)
        minute, second = divmod(second, 60)
        hour, minute = divmod(minute, 60)
        return f"{self.date}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


@dataclass(frozen=True)
class Timing:
    """How far apart the steps of a journey are. Live traffic compresses days into minutes."""

    survey_send: tuple[int, int]
    survey_answer: tuple[int, int]
    case_resolve: tuple[int, int]
    reply: tuple[int, int]  # the company answering a social post, an email, an SMS
    long_horizon: bool  # deliveries, returns, repeat contacts days later
    suppress_days: int  # at most one survey per customer per this many days (0: no limit)
    survey_rate: float  # share of eligible interactions that get a survey


HISTORY = Timing(
    survey_send=(2 * MINUTE, 3 * HOUR), survey_answer=(5 * MINUTE, 2 * DAY),
    case_resolve=(2 * HOUR, 4 * DAY), reply=(20 * MINUTE, 8 * HOUR),
    long_horizon=True, suppress_days=7, survey_rate=0.7,
)  # fmt: skip
LIVE = Timing(
    survey_send=(5 * SECOND, MINUTE), survey_answer=(10 * SECOND, 3 * MINUTE),
    case_resolve=(MINUTE, 10 * MINUTE), reply=(30 * SECOND, 5 * MINUTE),
    long_horizon=False, suppress_days=0, survey_rate=0.5,
)  # fmt: skip

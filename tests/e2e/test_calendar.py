"""A tenant's calendar on a running platform (embedded and distributed): an admin sets it through
the API, and satisfaction, service and FCR figures fall into the days of its time zone; `?tz=`
draws one request in another zone. The tenant's calendar is put back as it was afterwards."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pytest

from tests.e2e.deployments import TENANT_B, Api, Deployment, new_tag
from tests.events import event, iso

PROCESSED_WITHIN_S = 60.0
CALENDAR = "/v1/settings/calendar"


def _put(api: Api, key: str, body: dict[str, Any]) -> Any:
    response = api.http.put(CALENDAR, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def madrid(deployment: Deployment, api: Api) -> Iterator[str]:
    admin = deployment.key(TENANT_B, "admin")
    before = api.get(CALENDAR, admin).json()
    _put(api, admin, {"time_zone": "Europe/Madrid", "hours": {"mon": [["09:00", "18:00"]]}})
    yield admin
    _put(api, admin, {k: before[k] for k in ("time_zone", "hours", "holidays")})


def test_figures_fall_into_the_days_of_the_tenants_time_zone(
    deployment: Deployment, api: Api, madrid: str
) -> None:
    manager = deployment.key(TENANT_B, "manager")
    seen = api.get(CALENDAR, manager).json()
    assert seen["time_zone"] == "Europe/Madrid" and seen["hours"]["mon"] == [["09:00", "18:00"]]
    assert api.http.put(CALENDAR, json={}, headers={"Authorization": f"Bearer {manager}"}).status_code == 403  # fmt: skip

    tag = new_tag()
    # Three days ago at 23:30 UTC is already the next day in Madrid (UTC+1 in winter, +2 in
    # summer): in Madrid's days it counts with the answer of the next morning.
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    late = midnight - timedelta(days=3) + timedelta(hours=23, minutes=30)
    morning = late + timedelta(hours=10)
    who, survey = {"customer_id": f"cust-{tag}"}, f"survey-{tag}"
    answers = [
        event("survey.answered", "survey", who, at, {"kind": "csat", "score": score},
              touchpoint=survey)
        for at, score in ((late, 5), (morning, 1))
    ]  # fmt: skip
    api.post_ok(deployment.key(TENANT_B, "ingest"), answers)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    window = {"since": iso(late - timedelta(days=1)), "until": iso(morning + timedelta(days=1))}
    path = "/v1/satisfaction/touchpoints"
    local = api.get(path, manager, touchpoint=survey, bucket="day", **window).json()
    assert local["time_zone"] == "Europe/Madrid"
    (day,) = local["buckets"]  # both answers on one Madrid day
    assert day["responses"]["csat"] == 2
    start = datetime.fromisoformat(day["bucket_start"])
    assert start.astimezone(UTC).hour in (22, 23)  # Madrid's midnight, in UTC
    # Written as Madrid writes it: midnight, with Madrid's offset (+01:00 or +02:00).
    assert day["bucket_start"][10:19] == "T00:00:00" and day["bucket_start"][-6:] in (
        "+01:00",
        "+02:00",
    )
    # The Excel download shows the same midnight, its offset in the cell's format.
    sheet = api.get(path, manager, touchpoint=survey, bucket="day", format="xlsx", **window)
    assert sheet.status_code == 200, sheet.text
    cells = openpyxl.load_workbook(io.BytesIO(sheet.content)).active
    assert cells is not None
    header = [c.value for c in cells[1]]
    cell = cells.cell(row=2, column=header.index("bucket_start") + 1)
    assert (cell.value.hour, cell.value.minute) == (0, 0)
    assert cell.number_format.endswith(f'"{day["bucket_start"][-6:]}"')
    utc = api.get(path, manager, touchpoint=survey, bucket="day", tz="UTC", **window).json()
    assert utc["time_zone"] == "UTC"
    assert [b["responses"]["csat"] for b in utc["buckets"]] == [1, 1]  # two UTC days
    refused = api.get(path, manager, touchpoint=survey, tz="Europe/Nowhere", **window)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_time_zone"
    service = api.get("/v1/service/touchpoints", manager, bucket="day", **window).json()
    assert service["time_zone"] == "Europe/Madrid"
    fcr = api.get("/v1/service/fcr", madrid, bucket="day", **window).json()
    assert fcr["time_zone"] == "Europe/Madrid"

"""The CX dashboard's tables over HTTP on every deployment kind: the drill-down answers are exactly
those a satisfaction cell counts, and the Excel, CSV and Parquet downloads hold the JSON's numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pyarrow.parquet as pq

from services.query_api.web.export_titles import column_title
from tests.e2e.deployments import TENANT_A, Api, Deployment, new_tag, survey
from tests.events import event, iso

METRICS = ["nps", "csat", "ces", "nps@1", "csat@1", "csat_mean@1", "ces@1", "ces_easy@1"]


def yesterday_at(hour: int) -> datetime:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=1) + timedelta(hours=hour)


def post_answers(api: Api, deployment: Deployment, tag: str) -> dict[str, Any]:
    """A call rated by a correlated CSAT 2, and four answers about a web touchpoint."""
    ingest = deployment.key(TENANT_A, "ingest")
    customer = {"customer_id": f"dash-{tag}"}
    call = event("call.ended", "phone", customer, yesterday_at(9), {"agent": "ana", "talk_s": 60},
                 touchpoint=f"line-{tag}", correlation_id=f"c-{tag}")  # fmt: skip
    rated = survey(customer, "csat", 2, yesterday_at(10), f"after-{tag}", f"c-{tag}")
    # Answers without a correlation id go to their customer's latest touchpoint before them
    # (METRICS.md): from a customer with no other touchpoint, they keep their own.
    visitor = {"customer_id": f"dash-web-{tag}"}
    web = [
        survey(visitor, "nps", 9, yesterday_at(11), f"web-{tag}"),
        survey(visitor, "nps", 3, yesterday_at(12), f"web-{tag}"),
        survey(visitor, "ces", 6, yesterday_at(13), f"web-{tag}"),
    ]
    formula = survey(visitor, "csat", 5, yesterday_at(14), f"web-{tag}")
    formula["payload"]["comment"] = '=HYPERLINK("http://evil")'
    api.post_ok(ingest, [call, rated, *web, formula])
    deployment.wait_processed()
    return {"call": call, "rated": rated, "web": [*web, formula], "formula": formula}


def window() -> dict[str, str]:
    return {"since": iso(yesterday_at(0)), "until": iso(yesterday_at(24))}


def cells(api: Api, key: str, touchpoint: str) -> list[dict[str, Any]]:
    response = api.get("/v1/satisfaction/touchpoints", key, touchpoint=touchpoint, **window())
    assert response.status_code == 200, response.text
    return list(response.json()["buckets"])


def drill(api: Api, key: str, cell: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    start = datetime.fromisoformat(cell["bucket_start"])
    response = api.get(
        "/v1/satisfaction/responses", key, touchpoint=cell["touchpoint"],
        channel=cell["channel"], metric=metric, since=iso(start),
        until=iso(start + timedelta(days=1)), limit=1000,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return list(response.json()["responses"])


def counted(cell: dict[str, Any], metric: str) -> int:
    return int(cell["responses"][metric] if "@" not in metric else cell["metrics"][metric]["n"])


def test_drill_down_rows_are_exactly_the_answers_a_cell_counts(
    api: Api, deployment: Deployment
) -> None:
    tag, manager = new_tag(), deployment.key(TENANT_A, "manager")
    posted = post_answers(api, deployment, tag)
    for touchpoint in (f"line-{tag}", f"web-{tag}"):
        [cell] = cells(api, manager, touchpoint)
        for metric in METRICS:
            assert len(drill(api, manager, cell, metric)) == counted(cell, metric), metric

    [rated] = drill(api, manager, cells(api, manager, f"line-{tag}")[0], "csat")
    assert rated["event_id"] == posted["rated"]["event_id"]
    assert rated["rated_event_id"] == posted["call"]["event_id"]
    assert (rated["channel"], rated["score"], rated["customer_id"]) == ("phone", 2, f"dash-{tag}")
    web = drill(api, manager, cells(api, manager, f"web-{tag}")[0], "")
    assert [r["event_id"] for r in web] == [e["event_id"] for e in reversed(posted["web"])]
    assert web[0]["verbatim"] == posted["formula"]["payload"]["comment"]
    assert web[0]["rated_event_id"] is None


def test_drill_down_pages_with_a_cursor(api: Api, deployment: Deployment) -> None:
    tag, manager = new_tag(), deployment.key(TENANT_A, "manager")
    post_answers(api, deployment, tag)
    seen, cursor = [], None
    while True:
        params = {"touchpoint": f"web-{tag}", "limit": 1, "cursor": cursor, **window()}
        page = api.get("/v1/satisfaction/responses", manager, **params).json()
        seen += [r["event_id"] for r in page["responses"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    bad = api.get("/v1/satisfaction/responses", manager, cursor="nope!", metric="csat")
    assert bad.status_code == 422
    unknown = api.get("/v1/satisfaction/responses", manager, metric="happiness")
    assert unknown.json()["error"]["details"][0]["path"] == "query.metric"
    # A date alone is midnight UTC here too, as on every other read (it was a 422 here alone,
    # "since must include a UTC offset": found by a review).
    dates = api.get("/v1/satisfaction/responses", manager, since="2026-12-01", until="2026-12-02")
    assert dates.status_code == 200, dates.text


def download(api: Api, key: str, path: str, fmt: str, **params: Any) -> bytes:
    response = api.get(path, key, format=fmt, **params)
    assert response.status_code == 200, response.text
    assert f'.{fmt}"' in response.headers["content-disposition"]
    assert response.headers["content-disposition"].startswith("attachment")
    return response.content


def excel(body: bytes) -> list[dict[str, Any]]:
    """The rows of an Excel download's one sheet, by its header (openpyxl: not the writer)."""
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_exports_hold_the_numbers_of_the_json(api: Api, deployment: Deployment) -> None:
    tag, manager = new_tag(), deployment.key(TENANT_A, "manager")
    posted = post_answers(api, deployment, tag)
    path, touchpoint = "/v1/satisfaction/touchpoints", f"web-{tag}"
    [cell] = cells(api, manager, touchpoint)
    [row] = csv.DictReader(io.StringIO(download(api, manager, path, "csv", touchpoint=touchpoint,
                                                **window()).decode()))  # fmt: skip
    for key, value in cell["metrics"].items():
        assert float(row[f"metrics.{key}.value"]) == value["value"]
        assert int(row[f"metrics.{key}.n"]) == value["n"]
    parquet = download(api, manager, path, "parquet", touchpoint=touchpoint, **window())
    [prow] = pq.read_table(io.BytesIO(parquet)).to_pylist()
    assert prow["metrics.nps@1.value"] == cell["metrics"]["nps@1"]["value"]  # -> 0.0
    assert prow["responses.nps"] == cell["responses"]["nps"]
    sheet = excel(download(api, manager, path, "xlsx", touchpoint=touchpoint, **window()))
    [xrow] = [r for r in sheet if r["touchpoint"] == touchpoint]
    for key, value in cell["metrics"].items():
        assert xrow[f"metrics.{key}.value"] == value["value"]  # a number, not text
        assert xrow[f"metrics.{key}.n"] == value["n"]
    assert xrow["responses.nps"] == cell["responses"]["nps"]

    rows = list(csv.DictReader(io.StringIO(download(
        api, manager, "/v1/satisfaction/responses", "csv", touchpoint=touchpoint, **window()
    ).decode())))  # fmt: skip
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in reversed(posted["web"])]
    assert rows[0]["verbatim"] == "'" + posted["formula"]["payload"]["comment"]  # no formula

    alerts = api.get("/v1/alerts", manager, customer_id=f"dash-{tag}").json()["alerts"]
    exported = list(csv.DictReader(io.StringIO(download(
        api, manager, "/v1/alerts", "csv", customer_id=f"dash-{tag}").decode())))  # fmt: skip
    assert [r["alert_id"] for r in exported] == [a["alert_id"] for a in alerts]
    assert [int(r["score"]) for r in exported] == [a["score"] for a in alerts]
    assert [r["status"] for r in exported] == [a["status"] for a in alerts]
    sheet = excel(download(api, manager, "/v1/alerts", "xlsx", customer_id=f"dash-{tag}"))
    assert [(r["alert_id"], r["score"]) for r in sheet] == [
        (a["alert_id"], a["score"]) for a in alerts
    ]
    # In words for people (`lang`): every column of the rows as flattened, the message's
    # fill-ins too, none left as a code (a review found them so).
    worded = excel(download(api, manager, "/v1/alerts", "xlsx", customer_id=f"dash-{tag}",
                            lang="es"))  # fmt: skip
    assert [(r["Id de la alerta"], r["Puntuación"]) for r in worded] == [
        (a["alert_id"], a["score"]) for a in alerts
    ]
    # ... and what the alert says, its status and its channel, as the Spanish pages say them.
    said, status = column_title("message", "es"), column_title("status", "es")
    assert [(r[said].split(" ")[0], r[status]) for r in worded] == [
        ("Respuesta", "abierta") for _ in alerts
    ], worded
    cells_es = excel(download(api, manager, path, "xlsx", touchpoint=touchpoint, lang="es",
                              **window()))  # fmt: skip
    for header in (list(worded[0]), list(cells_es[0])):
        assert not [h for h in header if "_" in h or "@" in h or "." in h], header

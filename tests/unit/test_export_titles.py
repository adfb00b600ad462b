"""An Excel download's header row in words (`services/query_api/web/export_titles.py`): every
column of every download the dashboard and the admins use has a title in each language, none
repeats, and a column it does not know keeps its code."""

from __future__ import annotations

import io

import openpyxl
import pytest

from services.query_api.exports import ExportFormat, download, touchpoint_columns
from services.query_api.routers import audit, fcr, responses, service
from services.query_api.routers.alerts import AlertOut, DriftOut
from services.query_api.web.export_titles import column_title, column_titles, worded_row
from services.satisfaction.alert_texts import AlertText, score_text, sentiment_text
from services.satisfaction.lifecycle import Status

EXPORTS = {
    "satisfaction": touchpoint_columns(),
    "service": service.service_columns(),
    "fcr": fcr._columns(),
    "responses": list(responses.COLUMNS),
    "audit": list(audit.COLUMNS),
    # An alert's fields as a download flattens them: a drift's figures and what its message or
    # an at-risk one is filled with (alert_texts.py, drift_sql.py).
    "alerts": [f for f in AlertOut.model_fields if f not in {"drift", "message_params"}]
    + [f"drift.{f}" for f in DriftOut.model_fields]
    + [
        f"message_params.{p}"
        for p in (
            *score_text("csat", 1, "1-5", 2).params,
            *sentiment_text("message", -0.9, "es", "m", -0.6).params,
            "touchpoint",
            "drop",
            "unit",
            "low",
            "high",
            "baseline_days",
            "baseline",
            "n",
            "baseline_n",
            "p",
        )  # fmt: skip
    ],
    # The satisfaction download's sentiment split by the language each text was detected in.
    "sentiment by language": [
        f"sentiment.by_language.{code}.{field}"
        for code in ("en", "es", "und")
        for field in ("n", "negative_share", "positive_share", "mean_score")
    ],
}


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_every_column_of_a_download_has_words_and_none_repeats(export: str, lang: str) -> None:
    columns = list(dict.fromkeys(EXPORTS[export]))  # the alerts' message parts overlap
    titles = column_titles(columns, lang)  # type: ignore[arg-type]
    untitled = [c for c, t in zip(columns, titles, strict=True) if t == c]
    assert untitled == [], untitled
    assert len(set(titles)) == len(titles), titles
    assert not [t for t in titles if "@" in t or "_" in t], titles


def test_a_metrics_columns_say_what_of_it_they_hold() -> None:
    assert column_title("metrics.csat@1.value", "en") == "CSAT %"
    assert column_title("metrics.csat@1.n", "es") == "CSAT %: n"
    assert (
        column_title("metrics.fcr@1.interval", "en") == "First contact resolution %: 95% interval"
    )
    assert (
        column_title("metrics.aht@1.low_confidence", "es")
        == "Tiempo de gestión: confianza baja (n < 30)"
    )
    assert column_title("responses.nps", "es") == "Respuestas NPS"
    assert column_title("sentiment.negative_share", "en") == "Sentiment: share negative"
    assert column_title("sentiment.by_language.es.n", "es") == "Sentimiento (español): textos"
    assert column_title("sentiment.by_language.pt.n", "en") == "Sentiment (PT): texts"
    assert column_title("drift.p_value", "es") == "Desviación: valor p"
    assert column_title("message_params.at_most", "en") == "Message, threshold"


def test_a_column_it_does_not_know_keeps_its_code() -> None:
    for column in ("metrics.wow@2.value", "drift.wow", "message_params.wow", "x_y"):
        assert column_title(column, "es") == column


def test_two_columns_of_one_title_keep_their_codes_beside_it() -> None:
    assert column_titles(["metrics.csat@1.value", "metrics.csat@2.value"], "en") == [
        "CSAT % (metrics.csat@1.value)",
        "CSAT % (metrics.csat@2.value)",
    ]


def test_the_excel_header_is_in_words_and_the_csv_keeps_its_codes() -> None:
    rows = [{"touchpoint": "web", "metrics.nps@1.value": 12.5}]
    columns = ["touchpoint", "metrics.nps@1.value"]
    sheet = download(rows, columns, "x", ExportFormat.xlsx, "es")
    book = openpyxl.load_workbook(io.BytesIO(sheet.body), read_only=True).active
    assert book is not None
    assert list(book.iter_rows(values_only=True)) == [("Punto de contacto", "NPS"), ("web", 12.5)]
    plain = download(rows, columns, "x", ExportFormat.xlsx)
    book = openpyxl.load_workbook(io.BytesIO(plain.body), read_only=True).active
    assert book is not None
    assert next(book.iter_rows(values_only=True)) == tuple(columns)
    assert download(rows, columns, "x", ExportFormat.csv, "es").body.startswith(
        b"touchpoint,metrics.nps@1.value"
    )


def alert_row(text: AlertText, **more: object) -> dict[str, object]:
    """An alert as its download flattens it."""
    return {"message": text.english(), "message_code": text.code, "status": Status.assigned,
            "severity": "high", "channel": "phone", **{f"message_params.{k}": v for k, v in text.params.items()},
            **more}  # fmt: skip


def test_the_spanish_sheet_words_a_channel_status_severity_and_alert_as_the_pages_do() -> None:
    row = alert_row(sentiment_text("survey_comment", -0.85, "es", "pysentimiento", -0.6))
    worded = worded_row(row, "es")
    assert worded["message"] == (
        "comentario de encuesta con puntuación -0,85 (es, pysentimiento), igual o inferior a -0,6: "
        "cliente en riesgo"
    )
    assert (worded["status"], worded["channel"]) == ("asignada", "teléfono")
    assert worded["severity"] == "alta"
    assert worded["message_params.score"] == "-0.85"  # the parameters stay the API's
    # In English the text is the API's own message, word for word.
    english = worded_row(row, "en")
    assert english["message"] == row["message"]
    assert (english["status"], english["channel"]) == ("assigned", "phone")
    assert english["severity"] == "high"


def test_codes_without_words_stay_as_they_are() -> None:
    row = {"message": "said by an older release", "message_code": None, "status": "snoozed",
           "channel": "carrier_pigeon", "touchpoint": "web", "severity": "critical"}  # fmt: skip
    assert worded_row(row, "es") == row
    row = alert_row(score_text("csat", 1, "1-5", 2), message_code="at_risk.unknown")
    assert worded_row(row, "es")["message"] == row["message"]


def test_the_excel_rows_are_worded_and_the_csv_rows_are_not() -> None:
    row = alert_row(score_text("csat", 1, "1-5", 2))
    columns = ["channel", "status", "message"]
    sheet = download([row], columns, "x", ExportFormat.xlsx, "es")
    book = openpyxl.load_workbook(io.BytesIO(sheet.body), read_only=True).active
    assert book is not None
    values = list(book.iter_rows(values_only=True))[1]
    assert values[:2] == ("teléfono", "asignada")
    assert str(values[2]).startswith("Respuesta CSAT de 1 en la escala 1-5")
    csv = download([row], columns, "x", ExportFormat.csv, "es").body.decode()
    assert "phone,assigned,CSAT answer 1 on the 1-5 scale" in csv

"""What an alert says, as a code and parameters a page renders in its reader's language
(services/satisfaction/alert_texts.py): the English text is the API's `message` as before, the
Spanish one says the same, and a stored alert's code is rebuilt only when it reproduces its
message."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.query_api.routers.alerts import alert_out
from services.query_api.web.i18n import MESSAGES, alert_text_key
from services.satisfaction.alert_texts import DRIFT, ENGLISH, ENGLISH_WORDS, SENTIMENT
from services.satisfaction.alerts import AT_RISK_RULES, text_of, to_alert_row, to_sentiment_alerts
from services.satisfaction.drift import daily_samples, detect
from services.satisfaction.drift_sql import LinkedAlert, alert_row
from tests.unit.test_drift import DAY0, csat_drop_answers

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def page_text(language: str, code: str, params: dict[str, str]) -> str:
    """What the page shows (common.js `alertText`): the language's text, its words for `where`
    and `unit`, and numbers with its decimal mark (a comma in Spanish)."""
    table = MESSAGES[language]

    def value(found: re.Match[str]) -> str:
        name, given = found[1], params[found[1]]
        if name in ("where", "unit"):
            return table.get(f"alert_{name}_{given}", given)
        numeric = re.fullmatch(r"[+-]?\d+(\.\d+)?(e[+-]?\d+)?", given) and name != "touchpoint"
        return given.replace(".", ",") if numeric and language == "es" else given

    return PLACEHOLDER.sub(value, table[alert_text_key(code)])


def answer(kind: str, scale: str, score: int) -> dict[str, Any]:
    return {"tenant_id": "t1", "event_id": "e1", "customer_id": "c1", "kind": kind,
            "scale": scale, "score": score, "touchpoint": "desk", "channel": "phone",
            "correlation_id": "", "answered_at": 1}  # fmt: skip


def sentiment_row(field: str = "comment", type_: str = "survey.answered") -> dict[str, Any]:
    text = {"tenant_id": "t1", "event_id": "e1", "customer_id": "c1", "type": type_,
            "field": field, "touchpoint": "desk", "channel": "web", "correlation_id": "",
            "written_at": 1, "language": "en", "label": "negative", "score": -0.8512,
            "model": "vaderSentiment", "model_version": "v"}  # fmt: skip
    [row] = to_sentiment_alerts(text)
    return row


def drift_row() -> dict[str, Any]:
    [alert] = detect("t1", daily_samples(csat_drop_answers("desk")), [DAY0])
    return alert_row("t1", LinkedAlert(alert, ["e1"], 1))


def api_alert(row: dict[str, Any]) -> dict[str, Any]:
    filled = {"agent": "", "queue": "", **row}
    return alert_out(filled).model_dump()


def test_an_at_risk_answers_message_is_unchanged_and_said_by_code() -> None:
    row = to_alert_row(AT_RISK_RULES[0], answer("csat", "1-5", 1))
    said = api_alert(row)
    assert said["message"] == "CSAT answer 1 on the 1-5 scale is at or below 2: customer at risk"
    assert (said["message_code"], said["message_params"]) == (
        "at_risk.score",
        {"metric": "CSAT", "score": "1", "scale": "1-5", "at_most": "2"},
    )
    assert page_text("en", said["message_code"], said["message_params"]) == said["message"]
    assert page_text("es", said["message_code"], said["message_params"]) == (
        "Respuesta CSAT de 1 en la escala 1-5, igual o inferior a 2: cliente en riesgo"
    )


@pytest.mark.parametrize(
    ("field", "type_", "english", "spanish"),
    [
        ("comment", "survey.answered", "survey comment", "comentario de encuesta"),
        ("text", "message.received", "message", "mensaje"),
        ("text", "email.replied", "email reply", "respuesta por correo"),
    ],
)
def test_a_negative_texts_message_is_unchanged_and_said_by_code(
    field: str, type_: str, english: str, spanish: str
) -> None:
    said = api_alert(sentiment_row(field, type_))
    assert said["message"] == (
        f"{english} scored -0.85 (en, vaderSentiment), at or below -0.5: customer at risk"
    )
    assert said["message_code"] == SENTIMENT
    assert page_text("en", SENTIMENT, said["message_params"]) == said["message"]
    assert page_text("es", SENTIMENT, said["message_params"]) == (
        f"{spanish} con puntuación -0,85 (en, vaderSentiment), igual o inferior a -0,5: "
        "cliente en riesgo"
    )


def test_a_drift_alerts_message_is_said_by_code_in_both_languages() -> None:
    said = api_alert(drift_row())
    assert said["message"].startswith("csat@1 on desk fell 40.0 percentage points (95% CI ")
    assert said["message_code"] == DRIFT
    assert page_text("en", DRIFT, said["message_params"]) == said["message"]
    spanish = page_text("es", DRIFT, said["message_params"])
    assert spanish.startswith("csat@1 en desk bajó 40,0 puntos porcentuales (IC 95 %: ")
    assert "percentage" not in spanish and "{" not in spanish
    p = said["message_params"]["p"]
    assert "e-" in p and spanish.endswith(f"p unilateral = {p.replace('.', ',')}")


def test_a_stored_alert_worded_otherwise_keeps_its_message_without_a_code() -> None:
    row = to_alert_row(AT_RISK_RULES[1], answer("nps", "0-10", 2))
    assert text_of(row) is not None
    older = {**row, "message": "NPS 2: customer at risk"}
    said = api_alert(older)
    assert (said["message"], said["message_code"], said["message_params"]) == (
        older["message"],
        None,
        {},
    )
    assert text_of({**sentiment_row(), "message": "negative text"}) is None


def test_every_alert_text_and_word_is_said_in_both_languages_with_the_same_parameters() -> None:
    for code, english in ENGLISH.items():
        key = alert_text_key(code)
        assert MESSAGES["en"][key] == english
        assert set(PLACEHOLDER.findall(MESSAGES["es"][key])) == set(PLACEHOLDER.findall(english))
    for param, words in ENGLISH_WORDS.items():
        for code, word in words.items():
            assert MESSAGES["en"][f"alert_{param}_{code}"] == word
            assert MESSAGES["es"][f"alert_{param}_{code}"] != word

"""An Excel download in words (`?lang=en|es`), for the people who open it: a manager saw
`metrics.csat@1.low_confidence` where the dashboard says "CSAT %" (a browser review), and
`phone` or an English alert in a Spanish sheet.

The header row, and the values the pages word (a channel, an alert's status and text); every
other value is the API's, and CSV and Parquet keep the codes (scripts read those). A column is
titled from its parts: a metric's name as the dashboard writes it, then what of it the column
holds (its answers, whether they are too few, its interval); a column this table does not know
keeps its code, so a new field is never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.projections.timeline import CHANNEL_NAMES, Language
from services.query_api.web.i18n import MESSAGES, alert_text_key

# Words an export needs that the pages do not (each language has every key).
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "of_answers": "{metric}: n",
        "of_low_confidence": "{metric}: low confidence (n < 30)",
        "of_interval": "{metric}: 95% interval",
        "answers_of": "{kind} answers",
        "texts_of": "Sentiment: {field}",
        "bucket_start": "Period start",
        "agent": "Agent",
        "event_id": "Event id",
        "customer_id": "Customer id",
        "scale": "Scale",
        "rated_event_id": "Rated event id",
        "correlation_id": "Correlation id",
        "alert_id": "Alert id",
        "rule": "Rule",
        "severity": "Severity",
        "severity_high": "high",
        "severity_medium": "medium",
        "raised_at": "Raised",
        "message": "Message",
        "message_code": "Message code",
        "entry_id": "Entry id",
        "at": "When",
        "actor_kind": "Actor kind",
        "actor_id": "Actor id",
        "actor_email": "Actor email",
        "role": "Role",
        "requested_id": "Id asked for",
        "resource": "What was read",
        "request_id": "Request id",
        "calls": "Calls",
        "conversations": "Conversations",
        "unanswered": "Without an agent reply yet",
        "surveys_sent": "Surveys sent",
        "contacts": "Contacts",
        "repeat_contacts": "Repeat contacts",
        "resolved_first_contacts": "Contacts FCR counts",
        "fcr_final": "Resolved at first contact, final",
        "fcr_provisional": "Resolved at first contact so far (window open)",
        "repeated": "Came back or reopened",
        "n": "texts",
        "negative_share": "share negative",
        "positive_share": "share positive",
        "mean_score": "mean score",
        "csat_mean": "CSAT mean",
        "ces_easy": "CES % easy",
        "frt_mean": "First response mean",
        "frt_business_mean": "First response mean, business hours",
        "fcr": "First contact resolution %",
        "repeat_contact_rate": "Repeat contacts %",
    },
    "es": {
        "of_answers": "{metric}: n",
        "of_low_confidence": "{metric}: confianza baja (n < 30)",
        "of_interval": "{metric}: intervalo del 95 %",
        "answers_of": "Respuestas {kind}",
        "texts_of": "Sentimiento: {field}",
        "bucket_start": "Inicio del periodo",
        "agent": "Agente",
        "event_id": "Id del evento",
        "customer_id": "Id del cliente",
        "scale": "Escala",
        "rated_event_id": "Id del evento valorado",
        "correlation_id": "Id de correlación",
        "alert_id": "Id de la alerta",
        "rule": "Regla",
        "severity": "Gravedad",
        "severity_high": "alta",
        "severity_medium": "media",
        "raised_at": "Generada",
        "message": "Mensaje",
        "message_code": "Código del mensaje",
        "entry_id": "Id de la entrada",
        "at": "Cuándo",
        "actor_kind": "Tipo de actor",
        "actor_id": "Id del actor",
        "actor_email": "Correo del actor",
        "role": "Rol",
        "requested_id": "Id pedido",
        "resource": "Qué se leyó",
        "request_id": "Id de la petición",
        "calls": "Llamadas",
        "conversations": "Conversaciones",
        "unanswered": "Sin respuesta de un agente aún",
        "surveys_sent": "Encuestas enviadas",
        "contacts": "Contactos",
        "repeat_contacts": "Contactos repetidos",
        "resolved_first_contacts": "Contactos que cuenta la FCR",
        "fcr_final": "Resueltos al primer contacto, definitivo",
        "fcr_provisional": "Resueltos al primer contacto hasta ahora (plazo abierto)",
        "repeated": "Volvieron o se reabrieron",
        "n": "textos",
        "negative_share": "proporción negativa",
        "positive_share": "proporción positiva",
        "mean_score": "puntuación media",
        "csat_mean": "CSAT media",
        "ces_easy": "CES % fácil",
        "frt_mean": "Primera respuesta media",
        "frt_business_mean": "Primera respuesta media, horario laboral",
        "fcr": "Resolución al primer contacto %",
        "repeat_contact_rate": "Contactos repetidos %",
    },
}

# The parts of nested columns: an alert's drift figures (`drift.<field>`), the values its message
# is filled with (`message_params.<name>`), and the languages sentiment is split by
# (`sentiment.by_language.<code>.<field>`).
_PARTS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "drift": {
            "definition": "definition", "definition_key": "metric", "test": "test",
            "period_start": "period start", "period_end": "period end",
            "baseline_start": "baseline start", "period_value": "period value",
            "period_n": "period n", "baseline_value": "baseline value", "baseline_n": "baseline n",
            "drop": "drop", "drop_interval": "drop, 95% interval", "unit": "unit",
            "p_value": "p-value", "answers": "answers", "answers_total": "answers in the period",
        },
        "message_params": {
            "metric": "metric", "score": "score", "scale": "scale", "at_most": "threshold",
            "where": "where", "language": "language", "model": "model", "drop": "drop",
            "unit": "unit", "touchpoint": "touchpoint", "channel": "channel",
            "low": "interval low", "high": "interval high", "baseline_days": "baseline days",
            "baseline": "baseline", "n": "n", "baseline_n": "baseline n", "p": "p-value",
        },
        "by_language": {"en": "English", "es": "Spanish", "und": "undetermined"},
        "drift_of": {"title": "Drift: {field}"},
        "message_of": {"title": "Message, {field}"},
        "sentiment_in": {"title": "Sentiment ({language}): {field}"},
    },
    "es": {
        "drift": {
            "definition": "definición", "definition_key": "métrica", "test": "prueba",
            "period_start": "inicio del periodo", "period_end": "fin del periodo",
            "baseline_start": "inicio de la referencia", "period_value": "valor del periodo",
            "period_n": "n del periodo", "baseline_value": "valor de referencia",
            "baseline_n": "n de referencia", "drop": "caída",
            "drop_interval": "caída, intervalo del 95 %", "unit": "unidad", "p_value": "valor p",
            "answers": "respuestas", "answers_total": "respuestas del periodo",
        },
        "message_params": {
            "metric": "métrica", "score": "puntuación", "scale": "escala", "at_most": "umbral",
            "where": "dónde", "language": "idioma", "model": "modelo", "drop": "caída",
            "unit": "unidad", "touchpoint": "punto de contacto", "channel": "canal",
            "low": "intervalo, mínimo", "high": "intervalo, máximo",
            "baseline_days": "días de referencia", "baseline": "referencia", "n": "n",
            "baseline_n": "n de referencia", "p": "valor p",
        },
        "by_language": {"en": "inglés", "es": "español", "und": "sin determinar"},
        "drift_of": {"title": "Desviación: {field}"},
        "message_of": {"title": "Mensaje, {field}"},
        "sentiment_in": {"title": "Sentimiento ({language}): {field}"},
    },
}  # fmt: skip

# What a metric column holds besides its value (`metrics.<key>@<version>.<field>`).
_OF_METRIC = {"n": "of_answers", "low_confidence": "of_low_confidence", "interval": "of_interval"}


def _word(code: str, lang: Language) -> str | None:
    """An export's own word for the code, else the pages' (a table header's), else None."""
    return _WORDS[lang].get(code) or MESSAGES[lang].get(code)


def column_title(column: str, lang: Language) -> str:
    """The column's header in words of `lang`; its code when it has none."""
    words = _WORDS[lang]
    parts = column.split(".")
    if parts[0] == "metrics" and len(parts) == 3:
        name = _word(parts[1].split("@")[0], lang)
        if name is None:
            return column
        field = parts[2]
        if field == "value":
            return name
        return words[_OF_METRIC[field]].format(metric=name) if field in _OF_METRIC else column
    if parts[0] == "responses" and len(parts) == 2:
        return words["answers_of"].format(kind=parts[1].upper())
    if parts[0] == "sentiment" and len(parts) == 2 and parts[1] in words:
        return words["texts_of"].format(field=words[parts[1]])
    named = _PARTS[lang]
    if parts[:2] == ["sentiment", "by_language"] and len(parts) == 4 and parts[3] in words:
        language = named["by_language"].get(parts[2], parts[2].upper())
        return named["sentiment_in"]["title"].format(language=language, field=words[parts[3]])
    if parts[0] in ("drift", "message_params") and len(parts) == 2 and parts[1] in named[parts[0]]:
        title = named["drift_of" if parts[0] == "drift" else "message_of"]["title"]
        return title.format(field=named[parts[0]][parts[1]])
    if parts[0] == "counts" and len(parts) == 2:
        return _word(parts[1], lang) or column
    if len(parts) == 1:
        return _word(column, lang) or column
    return column


def column_titles(columns: list[str], lang: Language) -> list[str]:
    """Every column's title; two columns never share one (a title that would repeat another
    keeps its code beside it), so a reader can tell them apart."""
    titles = [column_title(c, lang) for c in columns]
    repeated = {t for t in titles if titles.count(t) > 1}
    return [f"{t} ({c})" if t in repeated else t for t, c in zip(titles, columns, strict=True)]


# A number as the API writes it in an alert's parameters ("-0.85", "1.7e-11").
_NUMBER = re.compile(r"^([+-]?\d+)(?:\.(\d+))?(e[+-]?\d+)?$")


def _local_number(text: str, lang: Language) -> str:
    """`text` with this language's decimal mark when it is a number ("-0,85"); else as it is
    (common.js `localNumber`)."""
    found = _NUMBER.match(text)
    if lang == "en" or found is None or found.group(2) is None:
        return text
    return f"{found.group(1)},{found.group(2)}{found.group(3) or ''}"


def alert_text(row: Mapping[str, Any], lang: Language) -> str | None:
    """What a flattened alert row says in `lang` (its `message_code` and `message_params.*`
    filled into the pages' text, as common.js `alertText` does); None without a known code."""
    code = row.get("message_code")
    template = MESSAGES[lang].get(alert_text_key(code)) if isinstance(code, str) else None
    if template is None:
        return None

    def fill(found: re.Match[str]) -> str:
        name = found.group(1)
        value = row.get(f"message_params.{name}")
        if value is None:
            return found.group(0)
        if name in ("where", "unit"):
            return MESSAGES[lang].get(f"alert_{name}_{value}", str(value))
        return str(value) if name == "touchpoint" else _local_number(str(value), lang)

    return re.sub(r"\{([a-z_]+)\}", fill, template)


def worded_row(row: Mapping[str, Any], lang: Language) -> dict[str, Any]:
    """An Excel row's codes in words of `lang`, as the pages show them: a channel's name, an
    alert's status, its severity and what it says. Every other value, and a code without words,
    as it is (a Spanish sheet said `high` under "Gravedad", a review)."""
    worded = dict(row)
    channel = row.get("channel")
    if isinstance(channel, str):
        worded["channel"] = CHANNEL_NAMES[lang].get(channel, channel)
    status = row.get("status")
    if isinstance(status, str):
        worded["status"] = MESSAGES[lang].get(f"status_{status}", status)
    severity = row.get("severity")
    if isinstance(severity, str):
        worded["severity"] = _WORDS[lang].get(f"severity_{severity}", severity)
    if "message" in row and (text := alert_text(row, lang)) is not None:
        worded["message"] = text
    return worded

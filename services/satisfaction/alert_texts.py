"""What an alert says, in a form a page can say in its reader's language.

An alert's `message` is English text, kept as it always was for API clients. Beside it the API
gives `message_code` and `message_params`: a stable code naming one of the templates below and the
values that fill it. Every value is a display string formatted exactly as `message` shows it (a
page may localise a number's decimal separator), and a word (where the text was written, a
metric's unit) is given by its code, which a page names in its language. The English template
filled with the English words is `message`, so the two never disagree (`AlertText.english`).

Pure: a text is a function of the alert's row; a stored alert's text is rebuilt from its row at
read time, and given only when it reproduces the stored `message` exactly (an alert stored by a
release that worded it otherwise keeps its message and gets no code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.satisfaction.drift import DRIFT_METRICS

SCORE, SENTIMENT, DRIFT = "at_risk.score", "at_risk.sentiment", "drift.drop"
ENGLISH: dict[str, str] = {
    SCORE: "{metric} answer {score} on the {scale} scale is at or below {at_most}: "
    "customer at risk",
    SENTIMENT: "{where} scored {score} ({language}, {model}), at or below {at_most}: "
    "customer at risk",
    DRIFT: "{metric} on {touchpoint} fell {drop} {unit} (95% CI {low} to {high}) below its "
    "{baseline_days}-day baseline of {baseline}, n = {n} vs {baseline_n}, one-sided p = {p}",
}
# Parameters that name a word by its code, and each code's English word.
ENGLISH_WORDS: dict[str, dict[str, str]] = {
    "where": {
        "message": "message",
        "survey_comment": "survey comment",
        "email_reply": "email reply",
    },
    "unit": {metric.kind: metric.unit for metric in DRIFT_METRICS},
}
_LABELS = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}
_SENTIMENT_WORDING = re.compile(
    r"^(?P<where>.+) scored (?P<score>[+-]\d+\.\d+) \((?P<language>[^,]*), (?P<model>[^)]*)\), "
    r"at or below (?P<at_most>\S+): customer at risk$"
)


@dataclass(frozen=True)
class AlertText:
    code: str
    params: dict[str, str]

    def english(self) -> str:
        words = {k: ENGLISH_WORDS.get(k, {}).get(v, v) for k, v in self.params.items()}
        return ENGLISH[self.code].format(**words)


def score_text(kind: str, score: int, scale: str, at_most: int) -> AlertText:
    """An at-risk alert of one poor answer (`at_risk.csat|nps|ces`)."""
    label = _LABELS.get(kind, kind.upper())
    params = {"metric": label, "score": str(score), "scale": scale, "at_most": str(at_most)}
    return AlertText(SCORE, params)


def sentiment_text(
    where: str, score: float, language: str, model: str, at_most: float
) -> AlertText:
    """An at-risk alert of a strongly negative text; `where` is a code of `ENGLISH_WORDS`."""
    params = {"where": where, "score": f"{score:+.2f}", "language": language, "model": model,
              "at_most": str(at_most)}  # fmt: skip
    return AlertText(SENTIMENT, params)


def where_code(field: str, event_type: str) -> str:
    """Where a customer's text was written, as a code: a message, a survey comment, an email
    reply (another field is named by itself)."""
    if event_type == "email.replied":
        return "email_reply"
    return {"text": "message", "comment": "survey_comment"}.get(field, field)


def stored_text(row: dict[str, Any], thresholds: dict[str, int]) -> AlertText | None:
    """The text of a stored at-risk alert (`thresholds`: the `at_most` of each score rule), when
    it reproduces the row's `message`; None otherwise."""
    text = _rebuilt(row, thresholds)
    return text if text is not None and text.english() == row["message"] else None


def _rebuilt(row: dict[str, Any], thresholds: dict[str, int]) -> AlertText | None:
    if row["rule"] in thresholds:
        return score_text(row["metric"], int(row["score"]), row["scale"], thresholds[row["rule"]])
    found = _SENTIMENT_WORDING.match(row["message"]) if row["metric"] == "sentiment" else None
    if found is None:
        return None
    words = {english: code for code, english in ENGLISH_WORDS["where"].items()}
    params = found.groupdict()
    return AlertText(SENTIMENT, {**params, "where": words.get(params["where"], params["where"])})

"""Every string of the pages in both languages, and the language a browser gets."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest
from eventsourcing.domain import Aggregate

from kernel.accounts import USER_ROLES
from kernel.api_errors import STORE_CODES
from schemas.envelope import Channel
from services.identity import audit
from services.identity.audit import ACTIONS
from services.identity.domain import Customer
from services.identity.models import IdentityStatus
from services.identity.policy import LINK_RULES
from services.identity.router import _ERRORS
from services.identity.rules import FAMILIES
from services.projections.value import RULES, ChurnRisk
from services.query_api.web import HERE
from services.query_api.web.i18n import MESSAGES, from_accept_language


def test_every_string_exists_in_english_and_spanish() -> None:
    assert MESSAGES["en"].keys() == MESSAGES["es"].keys()
    assert all(text.strip() for table in MESSAGES.values() for text in table.values())


def used_keys(path: Path) -> set[str]:
    text = path.read_text()
    if path.suffix == ".html":
        return set(re.findall(r"\bt\.([a-z0-9_]+)", text))
    return set(re.findall(r'\bt\("([a-z0-9_]+)"\)', text))


@pytest.mark.parametrize(
    "path",
    sorted([*HERE.glob("templates/*.html"), *HERE.glob("static/*.js")]),
    ids=lambda p: p.name,
)
def test_every_string_a_page_uses_is_translated(path: Path) -> None:
    # Keys named like a dict's methods would resolve to the method in Jinja (`t.clear`).
    assert not used_keys(path) & set(dir(dict))
    assert used_keys(path) <= MESSAGES["en"].keys()


@pytest.mark.parametrize(
    "header, language",
    [
        ("es-ES,es;q=0.9,en;q=0.8", "es"),
        ("en-GB,en;q=0.9,es;q=0.8", "en"),
        ("fr-FR, es;q=0.5, en;q=0.4", "es"),
        ("de", "en"),
        ("", "en"),
        ("es;q=bogus, en;q=0.1", "en"),
    ],
)
def test_language_from_accept_language(header: str, language: str) -> None:
    assert from_accept_language(header) == language


def test_no_inline_script_or_style_in_the_templates() -> None:
    # The content-security policy allows neither: an inline one would silently not run.
    for template in HERE.glob("templates/*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))", text), template
        assert not re.search(r"style=|<style|\son[a-z]+=", text), template


def test_every_churn_factor_and_band_has_a_name_in_both_languages() -> None:
    # The console builds these keys from the API's values (`factor_${f.factor}`, `band_${band}`):
    # a factor added to value@1 without its name would show its raw key to the agent.
    keys = {f"factor_{name}" for name in RULES}
    keys |= {f"band_{band}" for band in get_args(ChurnRisk.model_fields["band"].annotation)}
    assert keys <= MESSAGES["en"].keys()


def leaf_events(aggregate: type) -> set[type]:
    """The events an aggregate records: those its class declares (the library adds a generic
    `Created`, which a customer never records: `Registered` creates it)."""
    nested = {v for k, v in vars(aggregate).items() if isinstance(v, type) and k != "Created"}
    events = {e for e in nested if issubclass(e, Aggregate.Event)}
    return {e for e in events if not any(o is not e and issubclass(o, e) for o in events)}


def test_every_identity_state_word_the_console_shows_has_a_name_in_both_languages() -> None:
    # The identity panel names a status, a history action and a linking rule by the API's codes
    # (`named("identity_status", …)` in console.js): one without a name would show its raw code.
    console = (HERE / "static" / "console.js").read_text()
    prefixes = {"identity_status", "identity_action", "identity_rule"}
    assert all(f'named("{prefix}"' in console for prefix in prefixes)
    # Every event a customer's history can hold has its action listed.
    assert {audit._snake(e.__name__) for e in leaf_events(Customer)} == set(ACTIONS)
    keys = {f"identity_status_{status}" for status in get_args(IdentityStatus)}
    keys |= {f"identity_action_{action}" for action in ACTIONS}
    keys |= {f"identity_rule_{rule}" for rule in LINK_RULES}
    for language in ("en", "es"):
        assert keys <= MESSAGES[language].keys(), language
    assert MESSAGES["es"]["identity_action_customers_merged"] != "customers_merged"


def test_every_channel_has_a_name_in_both_languages() -> None:
    # The console, the dashboard and the timeline's Spanish summaries name channels from these.
    keys = {f"channel_{c.value}" for c in Channel}
    assert keys <= MESSAGES["en"].keys()
    assert MESSAGES["es"]["channel_phone"] == "teléfono"
    assert MESSAGES["en"]["channel_mobile_app"] == "mobile app"


def test_every_metric_an_answer_or_alert_names_has_a_name_in_both_languages() -> None:
    # The drill-down and the alerts queue showed the API's `csat` and `6 (nps)` (a review):
    # common.js metricName names each survey kind, and sentiment, by `metric_name_<kind>`.
    from services.satisfaction.alerts import AT_RISK_RULES
    from services.satisfaction.metrics import DEFINITIONS

    kinds = {r.kind for r in AT_RISK_RULES} | {d.kind for d in DEFINITIONS} | {"sentiment"}
    for language in ("en", "es"):
        assert {f"metric_name_{kind}" for kind in kinds} <= MESSAGES[language].keys()
    assert MESSAGES["es"]["metric_name_sentiment"] == "sentimiento"
    assert MESSAGES["es"]["metric_name_nps"] == "NPS"


def test_every_role_a_person_has_is_named_in_both_languages() -> None:
    # The header says who is signed in and as what (`t["role_" ~ user.role]` in base.html).
    for language in ("en", "es"):
        assert {f"role_{role}" for role in USER_ROLES} <= MESSAGES[language].keys()
    assert MESSAGES["es"]["role_manager"] == "responsable"
    assert 't["role_" ~ user.role]' in (HERE / "templates" / "base.html").read_text()


def test_every_identifier_kind_has_a_name_in_both_languages() -> None:
    # The console names a kind by `kind_<family>` (common.js kindName): one without a name would
    # show the API's `anonymous_id` to a Spanish agent.
    for language in ("en", "es"):
        assert {f"kind_{family}" for family in FAMILIES} <= MESSAGES[language].keys()
    assert MESSAGES["es"]["kind_email"] == "correo"
    assert "messages[`kind_${family}`]" in (HERE / "static" / "common.js").read_text()
    # A rule names the person's name beside kinds (`typo_of:email with name`): named too.
    assert MESSAGES["es"]["kind_name"] == "nombre" and MESSAGES["en"]["kind_name"] == "name"


# Where an error a page can meet gets its code: the routes the console and the dashboard read,
# the shared handlers, authentication and the read-only mode.
ERROR_SOURCES = [
    *Path("services/query_api").rglob("*.py"),
    Path("services/identity/router.py"),
    Path("kernel/api_errors.py"),
    Path("kernel/auth.py"),
    Path("cem/read_only.py"),
]
RAISED = re.compile(r'(?:ApiError\(\s*\d{3},|_respond\(\s*\d{3},|error_body\()\s*"([a-z_]+)"')


def error_codes() -> set[str]:
    root = HERE.parents[2]
    codes = {code for path in ERROR_SOURCES for code in RAISED.findall((root / path).read_text())}
    codes |= {code for _, code in _ERRORS.values()} | {"identity_error"}
    codes |= {"unauthorized", "forbidden", "not_found", "method_not_allowed", "http_error"}
    codes |= {"invalid_parameter", "range_too_large"}  # `_invalid`'s codes in the query routes
    codes |= set(STORE_CODES)  # the stores' own codes (`LogUnavailable.code`)
    return codes - {"malformed_form"}  # the sign-in form's, which answers with a page


def test_every_api_error_a_page_can_show_is_worded_in_both_languages() -> None:
    codes = error_codes()
    assert {"not_found", "merge_refused", "warehouse_unavailable", "read_only"} <= codes
    for language in ("en", "es"):
        assert {f"api_error_{code}" for code in codes} <= MESSAGES[language].keys(), language
        for status in ("4xx", "5xx"):
            assert "{status}" in MESSAGES[language][f"api_error_status_{status}"]
    assert MESSAGES["es"]["api_error_not_found"].startswith("No encontrado")


def test_the_fields_an_error_names_are_labels_of_the_pages() -> None:
    common = (HERE / "static" / "common.js").read_text()
    fields = re.search(r"const FIELDS = \{(.*?)\};", common, re.S)
    assert fields is not None
    labels = re.findall(r':\s*"([a-z_]+)"', fields.group(1))
    assert "since" in labels and set(labels) <= MESSAGES["en"].keys()


def test_every_calendar_mistake_is_worded_in_both_languages() -> None:
    # A refused calendar's detail names what is wrong by a code; the pages word it from these.
    source = (Path(__file__).parents[2] / "services/service_metrics/calendar.py").read_text()
    codes = {
        node.args[1].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "CalendarError"
        and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)
    }  # fmt: skip
    assert {"unknown_time_zone", "closes_before_opening", "overlapping_hours"} <= codes
    for language in ("en", "es"):
        assert {f"api_detail_{code}" for code in codes} <= MESSAGES[language].keys(), language

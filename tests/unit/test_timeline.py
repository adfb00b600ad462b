"""Timeline rows, summaries, cursors and pages: the pure half of the customer timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.customer_key import customer_key
from kernel.processing import to_micros
from schemas.envelope import Channel, Event
from schemas.families import FAMILIES
from schemas.validate import accept
from services.projections.timeline import (
    _SUMMARIES,
    _WORDS,
    CHANNEL_NAMES,
    Cursor,
    InvalidCursor,
    InvalidFilter,
    Language,
    TimelineFilter,
    clip,
    decode_cursor,
    duration,
    encode_cursor,
    from_micros,
    page_from_rows,
    quote,
    summarise,
    to_timeline_rows,
    worded,
)

AT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

# One realistic payload per registered event family, with the channel it arrives on.
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "call.offered": ("phone", {"queue": "billing"}),
    "call.answered": ("phone", {"agent": "ana", "queue_wait_s": 35}),
    "call.held": ("phone", {"agent": "ana", "hold_s": 65}),
    "call.transferred": ("phone", {"from_agent": "ana", "to_queue": "tier2"}),
    "call.ended": ("phone", {"agent": "ana", "talk_s": 432}),
    "message.received": ("chat", {"text": "Where is my parcel?"}),
    "message.sent": ("chat", {"agent": "bob", "text": "It ships today"}),
    "email.sent": ("email", {"message_id": "m1", "subject": "Your order"}),
    "email.delivered": ("email", {"message_id": "m1", "campaign": "spring"}),
    "email.opened": ("email", {"message_id": "m1"}),
    "email.clicked": ("email", {"message_id": "m1", "url": "https://shop.example/track"}),
    "email.bounced": ("email", {"message_id": "m1", "hard": False, "reason": "mailbox full"}),
    "email.replied": ("email", {"message_id": "m1", "text": "Thanks!"}),
    "page.viewed": ("web", {"url": "https://shop.example/cart", "title": "Cart"}),
    "action.performed": ("mobile_app", {"name": "add_to_cart"}),
    "order.placed": ("web", {"order_id": "A-1", "amount": "129.90", "currency": "EUR", "items": 3}),
    "order.returned": ("web", {"order_id": "A-1", "amount": "20.1", "currency": "EUR"}),
    "store.visited": ("store", {"store_id": "paris-1"}),
    "store.purchased": ("store", {"store_id": "paris-1", "amount": "12", "currency": "EUR"}),
    "case.opened": ("email", {"case_id": "C-7", "subject": "Broken lid", "priority": "high"}),
    "case.resolved": ("email", {"case_id": "C-7", "resolution": "Replacement sent"}),
    "case.reopened": ("email", {"case_id": "C-7"}),
    "survey.sent": ("email", {"survey_id": "s1", "kind": "nps"}),
    "survey.answered": ("survey", {"kind": "csat", "score": 2, "comment": "Late again"}),
    "alert.assigned": ("other", {"alert_id": "a1", "assignee": "ana", "note": "call back"}),
    "alert.acknowledged": ("other", {"alert_id": "a1", "actor": "key-1"}),
    "alert.resolved": ("other", {"alert_id": "a1", "actor": "key-1", "note": "refund sent"}),
    "customer.erased": ("other", {"erasure_reason": "GDPR request #4711", "actor": "key-1"}),
}


def event(
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    channel: str | None = None,
    touchpoint: str | None = None,
    customer: dict[str, Any] | None = None,
    **envelope: Any,
) -> Event:
    """An event as the ingest edge accepts it, for the sample of its family unless told otherwise."""
    sample_channel, sample_payload = SAMPLES.get(event_type, ("other", {}))
    raw = {
        "event_id": str(uuid.uuid4()),
        "channel": channel or sample_channel,
        "type": event_type,
        "customer": customer or {"email": "Ana.Lopez@Shop.es", "phone": "+33 6 17 34 56 78"},
        "occurred_at": AT.isoformat(),
        "payload": sample_payload if payload is None else payload,
        **({"touchpoint": touchpoint} if touchpoint else {}),
        **envelope,
    }
    accepted, _ = accept(raw, "acme", AT + timedelta(seconds=2))
    return accepted


def test_every_event_family_has_a_sample() -> None:
    assert set(SAMPLES) == set(FAMILIES)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_family_projects_to_one_faithful_row(event_type: str) -> None:
    ev = event(event_type, correlation_id="conv-9")
    [row] = to_timeline_rows(ev)
    assert row["tenant_id"] == "acme"
    assert row["customer_id"] == customer_key(ev.customer) == "email:ana.lopez@shop.es"
    assert row["event_id"] == str(ev.event_id)
    assert (row["channel"], row["type"], row["touchpoint"]) == (
        ev.channel.value,
        event_type,
        ev.channel.value,
    )
    assert row["derived_at"] == row["occurred_at"] == to_micros(AT)
    assert row["received_at"] == to_micros(AT) + 2_000_000
    assert row["correlation_id"] == "conv-9"
    assert row["clock_corrected"] == 0
    assert orjson.loads(row["payload_json"]) == ev.payload
    assert row["identifiers"] == ["email:ana.lopez@shop.es", "phone:+33617345678"]
    assert row["summary"] and "\n" not in row["summary"]


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_rows_are_identical_when_the_event_is_projected_again(event_type: str) -> None:
    ev = event(event_type)
    assert to_timeline_rows(ev) == to_timeline_rows(Event.model_validate_json(ev.model_dump_json()))


def test_row_flags_a_clock_corrected_event_and_files_it_at_the_corrected_time() -> None:
    skewed = AT + timedelta(hours=3)  # the device clock runs three hours fast
    ev = event(
        "page.viewed",
        occurred_at=skewed.isoformat(),
        sent_at=(skewed + timedelta(seconds=1)).isoformat(),
    )
    [row] = to_timeline_rows(ev)
    assert row["clock_corrected"] == 1
    assert row["derived_at"] == to_micros(AT + timedelta(seconds=1))
    assert row["occurred_at"] == to_micros(skewed)
    assert row["correlation_id"] == ""


@pytest.mark.parametrize(
    ("event_type", "payload", "touchpoint", "expected"),
    [
        ("call.ended", {"agent": "ana", "talk_s": 432}, "support_line",
         "Call ended · support_line · 7m12s talk · agent ana"),
        ("call.ended", {"queue": "billing", "queue_wait_s": 95, "abandoned": True}, "support_line",
         "Call abandoned · support_line · waited 1m35s · queue billing"),
        ("call.ended", {"agent": "ana", "talk_s": 3725, "resolved": False}, None,
         "Call ended · phone · 1h02m talk · agent ana · not resolved"),
        ("call.answered", {"agent": "ana", "queue_wait_s": 35}, "support_line",
         "Call answered · support_line · agent ana · waited 35s"),
        ("message.received", {"text": "Where   is\nmy parcel?"}, "help_chat",
         "Message received · help_chat · “Where is my parcel?”"),
        ("message.sent", {"sender": "bot", "text": "Hi"}, None, "Message sent · chat · bot · “Hi”"),
        ("order.placed", {"order_id": "A-1", "amount": "129.9", "currency": "EUR", "items": 3},
         "checkout", "Order placed · checkout · 129.90 EUR · 3 items · order A-1"),
        ("order.placed", {"order_id": "B", "amount": "0.1234", "currency": "USD"}, "checkout",
         "Order placed · checkout · 0.1234 USD · 1 item · order B"),
        ("order.returned", {"order_id": "A-1", "amount": "20", "currency": "EUR", "reason": "damaged"},
         "returns", "Order returned · returns · 20.00 EUR · order A-1 · damaged"),
        # Nothing paid back, in no currency (a Shopify refund without a transaction): no "0 XXX".
        ("order.returned", {"order_id": "A-1", "amount": "0", "currency": "XXX", "reason": "damaged"},
         "returns", "Order returned · returns · order A-1 · damaged"),
        ("case.opened", {"case_id": "C-7", "subject": "Broken lid", "priority": "urgent"}, "support",
         "Case opened · support · case C-7 · “Broken lid” · urgent priority"),
        ("case.opened", {"case_id": "C-8", "topic": "delivery"}, "support",
         "Case opened · support · case C-8 · delivery"),
        ("survey.answered", {"kind": "csat", "score": 2, "comment": "Late again"}, "delivery",
         "CSAT 2/5 · delivery · “Late again”"),
        ("survey.answered", {"kind": "nps", "score": 9}, "checkout", "NPS 9/10 · checkout"),
        ("survey.sent", {"survey_id": "s", "kind": "ces"}, "support", "CES survey sent · support"),
        ("email.bounced", {"message_id": "m", "reason": "no such user"}, "newsletter",
         "Email bounced · newsletter · hard bounce · no such user"),
        ("page.viewed", {"url": "https://shop.example/p/1"}, "product_page",
         "Page viewed · product_page · https://shop.example/p/1"),
        ("custom.loyalty.joined", {"tier": "gold"}, "loyalty", "custom.loyalty.joined · loyalty"),
    ],
)  # fmt: skip
def test_summary_reads_as_a_line_for_the_agent_console(
    event_type: str, payload: dict[str, Any], touchpoint: str | None, expected: str
) -> None:
    assert summarise(event(event_type, payload, touchpoint=touchpoint)) == expected


# Each sample's line in Spanish (no touchpoint given: the channel is named in Spanish there).
SPANISH: dict[str, str] = {
    "call.offered": "Llamada ofrecida · teléfono · cola billing",
    "call.answered": "Llamada atendida · teléfono · agente ana · esperó 35s",
    "call.held": "Llamada en espera · teléfono · 1m05s en espera · agente ana",
    "call.transferred": "Llamada transferida · teléfono · de ana · a tier2",
    "call.ended": "Llamada finalizada · teléfono · 7m12s de conversación · agente ana",
    "message.received": "Mensaje recibido · chat · “Where is my parcel?”",
    "message.sent": "Mensaje enviado · chat · agente bob · “It ships today”",
    "email.sent": "Correo enviado · correo · “Your order”",
    "email.delivered": "Correo entregado · correo · campaña spring",
    "email.opened": "Correo abierto · correo",
    "email.clicked": "Enlace del correo pulsado · correo · https://shop.example/track",
    "email.bounced": "Correo rebotado · correo · rebote temporal · mailbox full",
    "email.replied": "Respuesta por correo · correo · “Thanks!”",
    "page.viewed": "Página vista · web · Cart",
    "action.performed": "Acción · app móvil · add_to_cart",
    "order.placed": "Pedido realizado · web · 129.90 EUR · 3 artículos · pedido A-1",
    "order.returned": "Pedido devuelto · web · 20.10 EUR · pedido A-1",
    "store.visited": "Visita a tienda · tienda · tienda paris-1",
    "store.purchased": "Compra en tienda · tienda · 12.00 EUR · 1 artículo · tienda paris-1",
    "case.opened": "Caso abierto · correo · caso C-7 · “Broken lid” · prioridad alta",
    "case.resolved": "Caso resuelto · correo · caso C-7 · “Replacement sent”",
    "case.reopened": "Caso reabierto · correo · caso C-7",
    "survey.sent": "Encuesta NPS enviada · correo",
    "survey.answered": "CSAT 2/5 · encuesta · “Late again”",
    "alert.assigned": "Alerta asignada · otro · a ana · “call back”",
    "alert.acknowledged": "Alerta recibida · otro · por key-1",
    "alert.resolved": "Alerta resuelta · otro · por key-1 · “refund sent”",
    "customer.erased": "Datos personales borrados · otro · por key-1",
}


def test_a_person_who_worked_an_alert_is_named_by_their_email_and_a_key_by_its_id() -> None:
    # A browser review read "by user:manager@demo.example"; an account id stays as recorded.
    resolved = {"alert_id": "a1", "actor": "user:ana@shop.es", "note": "refund sent"}
    assert summarise(event("alert.resolved", resolved), "es") == (
        "Alerta resuelta · otro · por ana@shop.es · “refund sent”"
    )
    acknowledged = {"alert_id": "a1", "actor": "user:7f3a9c"}
    assert summarise(event("alert.acknowledged", acknowledged)).endswith(" · by user:7f3a9c")


def test_every_summarised_type_has_a_spanish_line() -> None:
    # Iterating the table: a type added to `_SUMMARIES` without its Spanish line fails here.
    assert set(_SUMMARIES) == set(SPANISH)
    assert _WORDS["en"].keys() == _WORDS["es"].keys()
    assert CHANNEL_NAMES["en"].keys() == CHANNEL_NAMES["es"].keys() == {c.value for c in Channel}


def test_every_language_the_api_takes_has_words_and_channel_names() -> None:
    # The timeline's and the stream's `lang` accept exactly these: one without its tables would
    # answer a 500 (a KeyError) instead of a line.
    assert set(get_args(Language)) == _WORDS.keys() == CHANNEL_NAMES.keys() == {"en", "es"}


@pytest.mark.parametrize("event_type", sorted(_SUMMARIES))
def test_summary_in_spanish(event_type: str) -> None:
    assert summarise(event(event_type), "es") == SPANISH[event_type]


@pytest.mark.parametrize(
    ("event_type", "payload", "touchpoint", "expected"),
    [
        ("call.ended", {"queue": "billing", "queue_wait_s": 95, "abandoned": True}, "support_line",
         "Llamada abandonada · support_line · esperó 1m35s · cola billing"),
        ("call.ended", {"agent": "ana", "talk_s": 3725, "resolved": False}, None,
         "Llamada finalizada · teléfono · 1h02m de conversación · agente ana · no resuelta"),
        ("call.ended", {"talk_s": 60, "resolved": True}, None,
         "Llamada finalizada · teléfono · 1m00s de conversación · resuelta"),
        ("call.offered", {"queue": "q1", "direction": "outbound"}, None,
         "Llamada ofrecida · teléfono · cola q1 · saliente"),
        ("message.sent", {"sender": "bot", "text": "Hi"}, None, "Mensaje enviado · chat · bot · “Hi”"),
        ("message.sent", {"text": "Hi"}, None, "Mensaje enviado · chat · agente · “Hi”"),
        ("email.bounced", {"message_id": "m", "reason": "no such user"}, "newsletter",
         "Correo rebotado · newsletter · rebote permanente · no such user"),
        ("case.opened", {"case_id": "C-8", "topic": "delivery", "priority": "urgent"}, "support",
         "Caso abierto · support · caso C-8 · delivery · prioridad urgente"),
        ("case.opened", {"case_id": "C-9", "priority": "low"}, None,
         "Caso abierto · correo · caso C-9 · prioridad baja"),
        ("call.transferred", {"to_agent": "eva"}, None, "Llamada transferida · teléfono · a eva"),
        ("custom.loyalty.joined", {"tier": "gold"}, "loyalty", "custom.loyalty.joined · loyalty"),
    ],
)  # fmt: skip
def test_spanish_words_what_the_server_says_and_keeps_what_people_wrote(
    event_type: str, payload: dict[str, Any], touchpoint: str | None, expected: str
) -> None:
    assert summarise(event(event_type, payload, touchpoint=touchpoint), "es") == expected


@pytest.mark.parametrize("event_type", sorted(_SUMMARIES))
def test_an_entry_is_worded_at_read_time_from_its_stored_row(event_type: str) -> None:
    ev = event(event_type)
    entry = page_from_rows(to_timeline_rows(ev), limit=1).entries[0]
    assert worded(entry, "es").summary == summarise(ev, "es") == SPANISH[event_type]
    assert worded(entry, "en") is entry and entry.summary == summarise(ev)
    assert worded(entry, "es").model_dump(exclude={"summary"}) == entry.model_dump(
        exclude={"summary"}
    )


def test_an_entry_whose_payload_no_longer_parses_keeps_its_stored_summary() -> None:
    entry = page_from_rows(to_timeline_rows(event("order.placed")), limit=1).entries[0]
    broken = entry.model_copy(update={"payload": {"order_id": "A-1"}})
    unknown = entry.model_copy(update={"type": "retired.type"})
    assert worded(broken, "es").summary == worded(unknown, "es").summary == entry.summary


def test_summary_shortens_long_text_and_keeps_unicode() -> None:
    text = "مرحبا 👋🏽 " * 40
    summary = summarise(event("message.received", {"text": text}))
    quoted = summary.split(" · ")[-1]
    assert quoted.startswith("“مرحبا 👋🏽") and quoted.endswith("…”")
    assert len(quoted) <= 62


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (44.6, "45s"), (60, "1m00s"), (432, "7m12s"), (3599, "59m59s"), (3725, "1h02m")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_quote_of_nothing_is_empty() -> None:
    assert quote(None) == quote("   \n ") == ""
    assert clip("two\tlines\n  here", limit=8) == "two lin…"


def test_long_urls_and_titles_are_clipped_to_keep_the_line_short() -> None:
    url = "https://shop.example/" + "very-long-path/" * 200
    summary = summarise(event("email.clicked", {"message_id": "m", "url": url}))
    assert summary.startswith("Email link clicked · email · https://shop.example/very-long-path/")
    assert summary.endswith("…") and len(summary) < 120


@settings(max_examples=50)
@given(micros=st.integers(min_value=0, max_value=2**62), event_id=st.uuids())
def test_cursor_round_trips(micros: int, event_id: uuid.UUID) -> None:
    cursor = Cursor(micros, str(event_id))
    text = encode_cursor(cursor)
    assert decode_cursor(text) == cursor
    assert text.isascii() and "=" not in text


@settings(max_examples=50)
@given(text=st.text(max_size=80))
def test_decoding_any_text_is_a_cursor_or_an_invalid_cursor_error(text: str) -> None:
    try:
        cursor = decode_cursor(text)
    except InvalidCursor:
        return
    assert decode_cursor(encode_cursor(cursor)) == cursor


@pytest.mark.parametrize(
    "text",
    ["", "abc", encode_cursor(Cursor(5, str(uuid.uuid4())))[:-3], "%%%"],
    ids=["empty", "abc", "truncated", "percents"],  # a random id would differ between xdist workers
)
def test_mangled_cursors_are_rejected(text: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(text)


def _row(micros: int) -> dict[str, Any]:
    ev = event("page.viewed")
    return {**to_timeline_rows(ev)[0], "derived_at": micros}


def test_a_full_page_points_at_its_last_entry() -> None:
    rows = [_row(m) for m in (30, 20, 10)]
    page = page_from_rows(rows, limit=2)
    assert [e.derived_at for e in page.entries] == [from_micros(30), from_micros(20)]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == Cursor(20, rows[1]["event_id"])


def test_the_last_page_has_no_cursor() -> None:
    page = page_from_rows([_row(30), _row(20)], limit=2)
    assert len(page.entries) == 2 and page.next_cursor is None
    assert page_from_rows([], limit=50).next_cursor is None


def test_entries_show_payload_and_times_as_sent() -> None:
    ev = event("order.placed", correlation_id="basket-1")
    entry = page_from_rows(to_timeline_rows(ev), limit=1).entries[0]
    assert entry.payload == ev.payload
    assert entry.derived_at == entry.occurred_at == AT
    assert entry.received_at == AT + timedelta(seconds=2)
    assert entry.correlation_id == "basket-1" and entry.clock_corrected is False


def test_filter_converts_times_to_micros_and_refuses_an_empty_window() -> None:
    window = TimelineFilter.of([Channel.chat], ["message.sent"], AT, AT + timedelta(days=1))
    assert window == TimelineFilter(
        ("chat",), ("message.sent",), (), to_micros(AT), to_micros(AT) + 86_400_000_000
    )
    prefixes = TimelineFilter.of([Channel.chat, Channel.phone, Channel.chat], ["call.*", "x.y"])
    assert prefixes == TimelineFilter(("chat", "phone"), ("x.y",), ("call.",))
    with pytest.raises(InvalidFilter):
        TimelineFilter.of(since=AT, until=AT)


def test_from_micros_inverts_to_micros_exactly() -> None:
    moment = datetime(2031, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment


@pytest.mark.parametrize("micros", [2**63, -(2**63) - 1])
def test_a_cursor_beyond_int64_is_invalid_rather_than_wrapped(micros: int) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(Cursor(micros, str(uuid.uuid4()))))

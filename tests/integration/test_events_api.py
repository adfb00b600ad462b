"""Which customer an event went to, and finding customers by identifiers as people write them, end
to end in one process (the embedded platform: HTTP ingest, SQLite log and identity store, chdb)."""

from __future__ import annotations

import uuid

from cem.bootstrap import Platform
from tests.integration import test_unified_history as unified
from tests.integration.test_unified_history import Client, touch

# The embedded platform with identity on, and its client: test_unified_history's fixtures.
platform, api = unified.platform, unified.api


def test_an_event_answers_with_the_customer_it_is_filed_under_following_merges(
    api: Client,
) -> None:
    [by_phone] = api.post(touch("call.ended", "phone", {"phone": "617 345 678"}, 0, {}))
    [by_email] = api.post(
        touch("email.opened", "email", {"email": "ana@shop.es"}, 5, {"message_id": "m-1"})
    )
    phone, email = api.home("phone:+34617345678"), api.home("email:ana@shop.es")
    body = api.call("GET", f"/v1/events/{by_phone}").json()
    assert (body["event"]["event_id"], body["customer_id"], body["filed_under"]) == (
        by_phone,
        phone,
        phone,
    )
    assert body["ignored_identifiers"] == []
    assert api.merge("email:ana@shop.es", "phone:+34617345678").status_code == 200
    merged = api.call("GET", f"/v1/events/{by_phone}").json()
    assert (merged["customer_id"], merged["filed_under"]) == (email, phone)
    assert api.call("GET", f"/v1/events/{by_email}").json()["customer_id"] == email


def test_an_unknown_or_malformed_or_other_tenants_event_is_a_404(
    api: Client, platform: Platform
) -> None:
    [posted] = api.post(touch("call.ended", "phone", {"phone": "617 345 678"}, 0, {}))
    other = platform.keys.create("other", "agent")[1]
    for event_id, headers in (
        (str(uuid.uuid4()), None),
        ("not-a-uuid", None),
        (posted, {"Authorization": f"Bearer {other}"}),
    ):
        answer = (
            api.http.get(f"/v1/events/{event_id}", headers=headers)
            if headers
            else api.call("GET", f"/v1/events/{event_id}")
        )
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"


def test_a_touchpoint_with_a_bad_identifier_is_kept_and_says_what_was_ignored(
    api: Client,
) -> None:
    bad = touch("call.ended", "phone", {"email": "no tiene", "phone": "(+34) 617-345-678"}, 0, {})
    only_placeholder = touch("call.ended", "phone", {"email": "sin@email.com"}, 1, {})
    answer = api.call("POST", "/v1/events", "ingest", json={"events": [bad, only_placeholder]})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    assert [[(n["code"], n["path"]) for n in r["notes"]] for r in results] == [
        [("identifier_ignored", "customer.email")],
        [("identifier_ignored", "customer.email")],
    ]
    assert "placeholder" in results[1]["notes"][0]["message"]
    api.settle()
    kept = api.call("GET", f"/v1/events/{bad['event_id']}").json()
    assert kept["customer_id"] == api.home("phone:+34617345678")
    assert [(i["path"], i["reason"]) for i in kept["ignored_identifiers"]] == [
        ("customer.email", "invalid")
    ]
    anonymous = api.call("GET", f"/v1/events/{only_placeholder['event_id']}").json()
    assert [(i["path"], i["reason"]) for i in anonymous["ignored_identifiers"]] == [
        ("customer.email", "placeholder")
    ]


def test_a_phone_lookup_finds_the_customer_whatever_the_spelling(api: Client) -> None:
    api.post(touch("call.ended", "phone", {"phone": "614 79 06 74"}, 0, {}))
    api.post(touch("call.ended", "phone", {"phone": "+34614790674"}, 3, {}))
    for spelling in ("614790674", "0034614790674", "+34 614 79 06 74", " 34614790674"):
        answer = api.call("GET", "/v1/customers", params={"phone": spelling})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["value"] == "+34614790674"
        assert [(c["customer_id"], c["events"]) for c in body["customers"]] == [
            (api.home("phone:+34614790674"), 2)
        ], spelling


def test_an_unencoded_plus_in_the_query_string_still_finds_the_number(api: Client) -> None:
    api.post(touch("call.ended", "phone", {"phone": "+34 614 79 06 74"}, 0, {}))
    answer = api.call("GET", "/v1/customers?phone=+34614790674")  # `+` arrives as a space
    assert [c["customer_id"] for c in answer.json()["customers"]] == [
        api.home("phone:+34614790674")
    ]


def test_an_email_lookup_applies_the_providers_rules(api: Client) -> None:
    api.post(
        touch("email.opened", "email", {"email": "Ana.Lopez@gmail.com"}, 0, {"message_id": "m-1"})
    )
    answer = api.call("GET", "/v1/customers", params={"email": "analopez+x@GMAIL.com"})
    assert [c["customer_id"] for c in answer.json()["customers"]] == [
        api.home("email:analopez@gmail.com")
    ]


def test_a_number_with_several_readings_finds_whoever_holds_one_of_them(api: Client) -> None:
    # An Argentine mobile in full (her WhatsApp), then written bare on a form: the form is hers.
    api.post(touch("message.received", "chat", {"phone": "5493413623389"}, 0, {"text": "hola"}))
    api.post(touch("call.ended", "phone", {"phone": "341 362-3389", "email": "sc@x.ar"}, 3, {}))
    sofia = api.home("phone:+5493413623389")
    for spelling in ("341 362-3389", "0341 362 3389", "+5493413623389"):
        answer = api.call("GET", "/v1/customers", params={"phone": spelling})
        assert answer.status_code == 200, answer.text
        assert [(c["customer_id"], c["events"]) for c in answer.json()["customers"]] == [
            (sofia, 2)
        ], spelling
    # The bare number names no one reading: the lookup's value is the query's digits, no E.164.
    bare = api.call("GET", "/v1/customers", params={"phone": "341 362-3389"}).json()
    assert bare["value"] == "3413623389"


def test_a_number_of_another_country_does_not_find_a_spanish_number_of_the_same_digits(
    api: Client,
) -> None:
    # Stored as sent nationally (612345679): a Spanish mobile. A French mobile, +33 6 12 34 56 79,
    # or Rome's 06 6981 2345, written without their trunk 0, are those digits, not that number.
    api.post(touch("call.ended", "phone", {"phone": "612 345 679", "email": "lucia@x.es"}, 0, {}))
    api.post(touch("call.ended", "phone", {"phone": "669 812 345", "email": "pablo@x.es"}, 0, {}))
    for foreign in ("+33 6 12 34 56 79", "+39 06 6981 2345"):
        answer = api.call("GET", "/v1/customers", params={"phone": foreign})
        assert answer.status_code == 200, answer.text
        assert answer.json()["customers"] == [], foreign


def test_a_bare_number_finds_its_holder_by_a_spelling_no_lookup_guesses(api: Client) -> None:
    # Her line sent with its trunk 0 after the code (+54 011 …), read by identity as
    # +541143566414, stored as sent; the query is the number written bare, with two readings.
    api.post(
        touch("call.ended", "phone", {"phone": "+54 011 4356 6414", "email": "mr@x.ar"}, 0, {})
    )
    answer = api.call("GET", "/v1/customers", params={"phone": "011 4356-6414"})
    assert [c["customer_id"] for c in answer.json()["customers"]] == [api.home("email:mr@x.ar")]


def test_a_placeholder_number_is_looked_up_as_the_number_it_is(api: Client) -> None:
    api.post(touch("call.ended", "phone", {"phone": "600 000 000", "email": "rg@x.es"}, 0, {}))
    answer = api.call("GET", "/v1/customers", params={"phone": "600 000 000"}).json()
    assert answer["value"] == "+34600000000"

"""A filing's seal binds its customer and source position to its bytes (distributed mode): the
value's seal an ingested touchpoint already carries cannot be copied onto a forged filing that
names another customer, and a filing whose customer was changed is refused."""

from __future__ import annotations

import pytest

from cem.faust_worker import decode_sealed_filing
from cem.record_seal import is_sealed_filing, sealed_filing
from kernel.filings import CUSTOMER_HEADER, filed_home, filing_record
from kernel.ports import Consumed, Record
from tests.unit.test_direct_ingest import SEAL_KEY, decode_record, raw_event, stored


def filing_of(record: Record) -> Consumed:
    return Consumed("filings", 0, 5, record.key, record.value, record.headers)


def genuine() -> tuple[Consumed, Consumed]:
    """A touchpoint as the ingest published it, and its filing as the filing stage writes it."""
    touchpoint = stored(raw_event())
    event = decode_record(touchpoint)
    filing = sealed_filing(filing_record(touchpoint, event, "cust-1"), SEAL_KEY)  # type: ignore[arg-type]
    return touchpoint, filing_of(filing)


def test_the_filing_stages_filing_is_accepted_under_its_customer() -> None:
    _, filing = genuine()
    assert is_sealed_filing(filing, SEAL_KEY)
    assert decode_sealed_filing(decode_record, filing).event_id is not None
    assert filed_home(filing) == "cust-1"


def test_a_touchpoint_with_its_ingest_seal_and_an_added_customer_is_refused() -> None:
    touchpoint, _ = genuine()
    forged = Consumed("filings", 0, 6, b"acme/victim", touchpoint.value,
                      (*touchpoint.headers, (CUSTOMER_HEADER, b"victim-123"),
                       ("cem-source-partition", b"0"), ("cem-source-offset", b"7")))  # fmt: skip
    assert not is_sealed_filing(forged, SEAL_KEY)
    with pytest.raises(ValueError, match="filing stage's seal"):
        decode_sealed_filing(decode_record, forged)


def test_a_filing_whose_customer_was_changed_or_doubled_is_refused() -> None:
    _, filing = genuine()
    changed = tuple(
        (name, b"victim-123" if name == CUSTOMER_HEADER else value)
        for name, value in filing.headers
    )
    doubled = (*filing.headers, (CUSTOMER_HEADER, b"victim-123"))
    for headers in (changed, doubled):
        tampered = Consumed("filings", 0, 5, filing.key, filing.value, headers)
        assert not is_sealed_filing(tampered, SEAL_KEY)
        with pytest.raises(ValueError):
            decode_sealed_filing(decode_record, tampered)


def test_a_filing_sealed_under_another_key_is_refused() -> None:
    touchpoint = stored(raw_event())
    event = decode_record(touchpoint)
    other = sealed_filing(filing_record(touchpoint, event, "cust-1"), b"another key")  # type: ignore[arg-type]
    assert not is_sealed_filing(filing_of(other), SEAL_KEY)

"""The decoder the embedded runners share: one decode per record, the same event for every group."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kernel.decoding import SharedDecoder
from kernel.ports import Consumed
from schemas.validate import accept, decode, encode
from tests.events import survey_answer


def _record(offset: int, value: bytes, partition: int = 0) -> Consumed:
    return Consumed("touchpoints", partition, offset, b"key", value, ())


def _bytes() -> bytes:
    event, _ = accept(survey_answer(), "t1", datetime.now(UTC))
    return encode(event)


def test_the_second_reader_of_a_record_gets_the_first_readers_event() -> None:
    decoder, value = SharedDecoder(), _bytes()
    first = decoder(_record(3, value))
    again = decoder(_record(3, bytes(value)))  # another consumer group's copy of the bytes
    assert again is first
    assert first == decode(value)


def test_other_bytes_at_a_known_position_are_decoded_afresh() -> None:
    decoder, value, other = SharedDecoder(), _bytes(), _bytes()
    decoder(_record(3, value))
    assert decoder(_record(3, other)) == decode(other)
    assert decoder(_record(3, value, partition=1)) == decode(value)


def test_undecodable_bytes_raise_for_every_reader() -> None:
    decoder = SharedDecoder()
    for _ in range(2):
        with pytest.raises(ValueError):
            decoder(_record(0, b"not json"))


def test_the_cache_keeps_at_most_its_size_and_still_decodes_what_it_dropped() -> None:
    decoder = SharedDecoder(size=2)
    values = [_bytes() for _ in range(3)]
    events = [decoder(_record(i, v)) for i, v in enumerate(values)]
    assert decoder(_record(2, values[2])) is events[2]  # kept
    dropped = decoder(_record(0, values[0]))
    assert dropped is not events[0] and dropped == events[0]

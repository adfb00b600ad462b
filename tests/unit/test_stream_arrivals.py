"""The live stream's cursor and the log positions stamped on arrival rows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.ports import Consumed
from kernel.processing import stamp_position
from services.projections.arrivals import (
    InvalidStreamCursor,
    advance,
    decode_positions,
    encode_positions,
)

positions = st.dictionaries(st.integers(0, 65_535), st.integers(-1, 2**62), max_size=64)


@given(positions)
def test_a_cursor_decodes_to_the_positions_it_encodes(value: dict[int, int]) -> None:
    assert decode_positions(encode_positions(value)) == value


@pytest.mark.parametrize("text", ["not a cursor", "MTp4", "LTE6MA", "YTpi"])
def test_a_cursor_this_api_did_not_hand_out_is_refused(text: str) -> None:
    with pytest.raises(InvalidStreamCursor):
        decode_positions(text)


@given(positions, positions)
def test_advance_takes_the_later_offset_of_every_partition(
    a: dict[int, int], b: dict[int, int]
) -> None:
    merged = advance(a, b)
    assert set(merged) == set(a) | set(b)
    assert all(merged[p] == max(a.get(p, -1), b.get(p, -1)) for p in merged)


def test_only_rows_asking_for_a_position_are_stamped() -> None:
    record = Consumed("touchpoints", 3, 41, b"k", b"v")
    produced = {"timeline": [{"event_id": "e"}], "arrivals": [{"log_offset": None}]}
    stamp_position(produced, record)
    assert produced == {
        "timeline": [{"event_id": "e"}],
        "arrivals": [{"log_offset": 41, "log_partition": 3}],
    }

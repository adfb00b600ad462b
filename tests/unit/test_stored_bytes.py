"""The byte search of the erasure acceptance test (`tests.stored_bytes`), on hand-made files: a
ClickHouse column file in each of its codecs, parts an engine keeps or replaced, and plain files."""

from __future__ import annotations

import struct
from pathlib import Path

import lz4.block
import pytest
import zstandard

from tests.stored_bytes import search

SECRET = "lucia.perez@gmail.com"


def block(method: int, body: bytes, plain: int) -> bytes:
    """A compressed block as ClickHouse writes it (the checksum is not checked here)."""
    return b"\0" * 16 + struct.pack("<BII", method, len(body) + 9, plain) + body


def column(text: bytes, codec: str) -> bytes:
    if codec == "lz4":
        return block(0x82, lz4.block.compress(text, store_size=False), len(text))
    if codec == "zstd":
        return block(0x90, zstandard.ZstdCompressor().compress(text), len(text))
    return block(0x02, text, len(text))


@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_a_column_file_is_read_decompressed(tmp_path: Path, codec: str) -> None:
    # Repeated text, so that LZ4 and zstd do not keep the address as written.
    text = (SECRET + "\n") * 50 + "otra fila\n" * 50
    part = tmp_path / "store" / "customer_timeline" / "all_1_1_0"
    part.mkdir(parents=True)
    (part / "data.bin").write_bytes(column(text.encode(), codec) * 2)
    found = search([tmp_path], [SECRET, "no está"])
    assert [(h.path.name, h.needle, h.outdated) for h in found.hits] == [
        ("data.bin", SECRET, False)
    ]
    assert not found.undecoded
    if codec != "none":  # as stored, the compressed bytes do not spell it out whole
        assert (SECRET * 2).encode() not in (part / "data.bin").read_bytes()


def test_a_part_a_mutation_or_merge_replaced_is_outdated(tmp_path: Path) -> None:
    table = tmp_path / "customer_timeline"
    for name in ("all_1_1_1", "all_1_1_1_2", "all_3_3_1", "all_4_4_0", "all_4_6_1"):
        (table / name).mkdir(parents=True)
        (table / name / "data.bin").write_bytes(column(SECRET.encode(), "lz4"))
    found = search([tmp_path], [SECRET])
    outdated = {h.path.parent.name: h.outdated for h in found.hits}
    assert outdated == {
        "all_1_1_1": True,  # the mutation's new part replaced it
        "all_1_1_1_2": False,
        "all_3_3_1": False,
        "all_4_4_0": True,  # merged into 4..6
        "all_4_6_1": False,
    }


def test_plain_files_are_searched_as_stored_and_unknown_codecs_are_reported(
    tmp_path: Path,
) -> None:
    (tmp_path / "server.log").write_text(f"GET /v1/customers?email={SECRET}\n")
    part = tmp_path / "t" / "all_1_1_0"
    part.mkdir(parents=True)
    (part / "data.bin").write_bytes(block(0x95, b"gorilla", 7))
    found = search([tmp_path], [SECRET])
    assert [h.path.name for h in found.live] == ["server.log"]
    assert found.undecoded == [part / "data.bin"]

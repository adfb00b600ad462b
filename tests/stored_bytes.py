"""Every byte a deployment stores, searched for a person's data (issue 11's erasure acceptance).

`search(roots, needles)` reads every file under the roots (SQLite files and their WAL, the
engines' data directories, logs) and reports each file holding one of the needles. A
ClickHouse column file (`*.bin` in a part's directory) is searched as stored *and* decompressed
block by block (the engine compresses every column, LZ4 by default, so a string in it may not be
there as written); a part another part of the same table covers (an outdated part: the one a
mutation or merge replaced, kept by the engine for `old_parts_lifetime` before it removes it) is
reported apart, as `outdated`, since it is what the engine itself keeps of a deletion for a while.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lz4.block
import zstandard

# A compressed block: a 16-byte checksum, then the method byte, the compressed size (header
# included) and the decompressed size, little-endian (ClickHouse's CompressedReadBuffer).
_CHECKSUM, _HEADER = 16, 9
_NONE, _LZ4, _ZSTD = 0x02, 0x82, 0x90
# A MergeTree part's directory: partition, first and last block, level, mutation (optional).
_PART = re.compile(
    r"^(?P<partition>[^_]+)_(?P<first>\d+)_(?P<last>\d+)_(?P<level>\d+)(?:_(?P<mutation>\d+))?$"
)


@dataclass(frozen=True)
class Hit:
    path: Path
    needle: str
    outdated: bool  # in a part another part of its table covers (see the module's docstring)


@dataclass
class Search:
    hits: list[Hit] = field(default_factory=list)
    files: int = 0
    bytes_read: int = 0
    undecoded: list[Path] = field(default_factory=list)  # blocks of a method not decoded here

    @property
    def live(self) -> list[Hit]:
        return [h for h in self.hits if not h.outdated]


def search(roots: Iterable[Path], needles: Sequence[str]) -> Search:
    """Each file under the roots that holds a needle (as UTF-8 bytes)."""
    wanted = [(n, n.encode()) for n in needles]
    found = Search()
    for path in _files(roots):
        try:
            raw = path.read_bytes()
        except OSError:  # removed meanwhile (a part cleaned up, a segment deleted)
            continue
        found.files += 1
        found.bytes_read += len(raw)
        texts = [raw]
        if path.suffix == ".bin" and _part_of(path) is not None:
            decoded, complete = _decompressed(raw)
            texts.append(decoded)
            if not complete:
                found.undecoded.append(path)
        outdated = _outdated(path)
        for needle, encoded in wanted:
            if any(encoded in text for text in texts):
                found.hits.append(Hit(path, needle, outdated))
    return found


def _files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                if path.is_file() and not path.is_symlink():
                    yield path


def _decompressed(raw: bytes) -> tuple[bytes, bool]:
    """The blocks of a compressed column file, decompressed and joined; False when a block was
    not decodable here (another codec, or not a compressed file after all)."""
    out, at = bytearray(), 0
    while at + _CHECKSUM + _HEADER <= len(raw):
        method, size, plain = struct.unpack_from("<BII", raw, at + _CHECKSUM)
        body = raw[at + _CHECKSUM + _HEADER : at + _CHECKSUM + size]
        if size < _HEADER or at + _CHECKSUM + size > len(raw):
            return bytes(out), False
        try:
            if method == _NONE:
                out += body
            elif method == _LZ4:
                out += lz4.block.decompress(body, uncompressed_size=plain)
            elif method == _ZSTD:
                out += zstandard.ZstdDecompressor().decompress(body, max_output_size=plain)
            else:
                return bytes(out), False
        except Exception:  # not a block after all
            return bytes(out), False
        at += _CHECKSUM + size
    return bytes(out), at == len(raw)


def _part_of(path: Path) -> re.Match[str] | None:
    return _PART.match(path.parent.name)


def _outdated(path: Path) -> bool:
    """Whether the part holding `path` is covered by another part of its table's directory (a
    range as wide or wider, at a level and mutation as high or higher)."""
    part = _part_of(path)
    if part is None:
        return False
    mine = _span(part)
    try:
        siblings = [p.name for p in path.parent.parent.iterdir() if p.is_dir()]
    except OSError:
        return False
    for name in siblings:
        other = _PART.match(name)
        if other is None or name == path.parent.name:
            continue
        theirs = _span(other)
        # ClickHouse's own rule (MergeTreePartInfo::contains), for a part that is not this one.
        if (
            theirs[0] == mine[0]
            and theirs[1] <= mine[1]
            and mine[2] <= theirs[2]
            and theirs[3] >= mine[3]
            and theirs[4] >= mine[4]
        ):
            return True
    return False


def _span(part: re.Match[str]) -> tuple[str, int, int, int, int]:
    return (
        part["partition"],
        int(part["first"]),
        int(part["last"]),
        int(part["level"]),
        int(part["mutation"] or 0),
    )

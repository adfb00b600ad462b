"""A zip written as it streams: each section of a subject access export as JSON and as CSV.

The zip goes to an unseekable sink, so every member carries its sizes in a data descriptor after
its data and the archive never has to be held whole. Only one member of a zip can be written at a
time, so a section's JSON streams straight into the archive while its CSV is spooled to a
temporary file (memory up to `SPOOL_BYTES`, disk beyond), then copied in: one pass over the
source, and the two files hold the same rows.

CSV cells are the JSON values: text as is (neutralised against spreadsheet formulas like every
other export, `exports.csv_cell`), `true`/`false`, empty for null, and nested objects or lists
as their JSON text, so nothing is lost in the flat form.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from services.query_api.exports import csv_cell

SPOOL_BYTES = 8 * 1024 * 1024
_COPY_CHUNK = 256 * 1024

JsonRow = Mapping[str, Any]


@dataclass(frozen=True)
class Section:
    """One kind of data: `<name>.json` (an array of rows, or one object) and `<name>.csv`.

    `pages` yields lists of JSON-ready rows (as a pydantic `model_dump(mode="json")` gives); a
    `single` section is one object, exported to CSV as one `field,value` row per leaf."""

    name: str
    columns: Sequence[str]
    pages: Iterable[Sequence[JsonRow]]
    single: bool = False


def cell(value: Any) -> Any:
    """A JSON value as a CSV cell."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return orjson.dumps(value).decode()
    return csv_cell(value)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(`a.b.0.c`, value) for every scalar in a JSON value; an empty object or list is a leaf."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}.{index}" if path else str(index))
    else:
        yield path, value


class _Sink(io.RawIOBase):
    """Collects what the zip writes until the stream takes it; cannot seek, by design."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        """Nothing to flush; and a zip abandoned mid-stream flushes its end after the sink was
        collected, which must not raise."""

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class SubjectArchive:
    """Writes sections into a zip and yields its bytes as they are produced."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED)
        self.counts: dict[str, int] = {}

    def write(self, section: Section) -> Iterator[bytes]:
        """Both files of a section; the count of rows (1 for a single object) is kept."""
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+b") as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
            columns = ("field", "value") if section.single else section.columns
            table = csv.writer(text, lineterminator="\r\n")
            table.writerow(columns)
            json_name = f"{section.name}.json"
            with self._zip.open(json_name, "w", force_zip64=True) as member:
                count = yield from self._json(member, section, table)
            self.counts[json_name] = self.counts[f"{section.name}.csv"] = count
            text.flush()
            spool.seek(0)
            with self._zip.open(f"{section.name}.csv", "w", force_zip64=True) as member:
                while chunk := spool.read(_COPY_CHUNK):
                    member.write(chunk)
                    yield self._sink.take()
            text.detach()

    def _json(self, member: IO[bytes], section: Section, table: Any) -> Generator[bytes, None, int]:
        count = 0
        if not section.single:
            member.write(b"[")
        for page in section.pages:
            for row in page:
                if section.single:
                    member.write(orjson.dumps(row, option=orjson.OPT_INDENT_2))
                    table.writerows((path, cell(v)) for path, v in leaves(row))
                else:
                    member.write(b",\n" if count else b"\n")
                    member.write(orjson.dumps(row))
                    table.writerow([cell(row.get(c)) for c in section.columns])
                count += 1
            yield self._sink.take()
        if not section.single:
            member.write(b"\n]\n" if count else b"]\n")
        return count

    def finish(self, manifest: Mapping[str, Any]) -> Iterator[bytes]:
        """The manifest (with the counts of every file written) and the zip's directory."""
        body = {**manifest, "files": dict(self.counts)}
        self._zip.writestr("manifest.json", orjson.dumps(body, option=orjson.OPT_INDENT_2))
        self._zip.close()
        yield self._sink.take()

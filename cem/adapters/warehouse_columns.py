"""A batch of warehouse rows turned into columns, for the adapters' columnar inserts.

Projections build rows (one dict per row, `Warehouse.insert`'s contract); both engines take a
batch fastest as one list of values per column (chdb as JSONCompactColumns, clickhouse-driver as
its native column blocks), so the adapters transpose. Transposing is cheap next to the insert:
the measured cost was the per-value conversions, which now run only on the columns that need them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_SEQUENCES = (set, frozenset, tuple)


def as_array(value: Any) -> Any:
    """Sets and tuples as lists, sets sorted when their items compare (replays stay identical)."""
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return list(value) if isinstance(value, tuple) else value


def to_columns(table: str, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The column names of a non-empty batch and its values column by column; ValueError when a
    name is not a plain identifier or the rows do not all have the same columns."""
    names = list(rows[0])
    if not all(_NAME.fullmatch(name) for name in [table, *names]):
        raise ValueError(f"invalid table or column name in {table} {names}")
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        raise ValueError(f"rows for {table} do not all have the columns {names}")
    return names, [_column(rows, name) for name in names]


def _column(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    values = [row[name] for row in rows]
    # A column holds one or two types; look at those rather than at every value.
    if any(issubclass(kind, _SEQUENCES) for kind in set(map(type, values))):
        return [as_array(value) for value in values]
    return values

"""The one place where SQL differs by ClickHouse server version (`Warehouse.version`).

chdb reports a current version (26.x); the distributed mode must also run on the Debian server
18.16. Everything else is written in the subset both understand, so this module stays small: it
grows only when a real difference shows up.
"""

from __future__ import annotations

from collections.abc import Sequence

# The oldest server the SQL is written for (Debian's clickhouse-server package).
OLDEST_SUPPORTED = (18, 16)


class UnsupportedServer(RuntimeError):
    """The warehouse is older than any server the SQL has been written for."""


def check_supported(version: tuple[int, ...]) -> None:
    """Fail at start-up with a clear message rather than with a syntax error on the first insert."""
    if tuple(version[:2]) < OLDEST_SUPPORTED:
        shown = ".".join(str(p) for p in version) or "unknown"
        oldest = ".".join(str(p) for p in OLDEST_SUPPORTED)
        raise UnsupportedServer(f"ClickHouse {shown} is too old: {oldest} or newer is required")


def replacing_engine(order_by: Sequence[str], version: tuple[int, ...]) -> str:
    """The engine clause of a projection table.

    ReplacingMergeTree, because a reprocessed batch (F03) inserts identical rows again: merges
    collapse rows with the same sorting key, and reads deduplicate until they do. The new-style
    `ORDER BY` syntax is understood by 18.16 and by every later server. There is no PARTITION BY:
    see the callers for why.
    """
    check_supported(version)
    return f"ENGINE = ReplacingMergeTree() ORDER BY ({', '.join(order_by)})"

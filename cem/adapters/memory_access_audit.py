"""An in-memory AccessAudit: the twin unit tests and the contract suite's reference run on."""

from __future__ import annotations

import threading

from kernel.ports import AccessEntry, AccessQuery


def matches(entry: AccessEntry, query: AccessQuery) -> bool:
    """Whether the entry answers the query (its filters and its page position)."""
    return (
        entry.tenant_id == query.tenant_id
        and query.customer_id in (None, entry.customer_id)
        and query.actor in (None, entry.actor_id, entry.actor_email)
        and (query.since is None or entry.at >= query.since)
        and (query.until is None or entry.at < query.until)
        and (query.before is None or (entry.at, entry.entry_id) < query.before)
    )


class MemoryAccessAudit:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[AccessEntry] = []

    def record(self, entry: AccessEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def check_writable(self) -> None:
        """Memory always takes an entry."""

    def entries(self, query: AccessQuery) -> list[AccessEntry]:
        with self._lock:
            found = [e for e in self._entries if matches(e, query)]
        found.sort(key=lambda e: (e.at, e.entry_id), reverse=True)
        return found[: query.limit]

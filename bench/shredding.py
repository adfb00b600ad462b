"""`python -m bench.shredding`: what sealing costs (`kernel.shredding`), per typical event.

Times `seal` and `open_sealed` with `timeit` on four events as channels send them (a survey answer
with a comment, a customer's chat message, an order, a page view), and the SQLite key vault's
point read and first-sight insert. Prints microseconds per call (best of five runs, and the
median) with the load average; asserts nothing (HOUSE_STYLE: benches print, tests never time).
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import timeit
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from cem.adapters.sqlite_vault import SqliteKeyVault
from kernel import shredding

TENANT = "acme"
CUSTOMER = {"email": "ana.ruiz@example.io", "phone": "+34617345678", "anonymous_id": "web-8f2c"}


def _event(type_: str, channel: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": TENANT,
        "source_id": "http",
        "channel": channel,
        "type": type_,
        "touchpoint": "support_line",
        "customer": CUSTOMER,
        "occurred_at": "2026-01-31T11:00:00+00:00",
        "received_at": "2026-01-31T11:00:01+00:00",
        "derived_at": "2026-01-31T11:00:00+00:00",
        "payload": payload,
    }


EVENTS = {
    "survey.answered": _event(
        "survey.answered",
        "survey",
        {"kind": "nps", "score": 4, "comment": "Nobody called me back about the refund. " * 3},
    ),
    "message.received": _event(
        "message.received",
        "chat",
        {"sender": "customer", "text": "Hola, my router has been down since Monday", "queue": "q1"},
    ),
    "order.placed": _event(
        "order.placed",
        "web",
        {
            "order_id": "o-1",
            "amount": "49.90",
            "currency": "EUR",
            "attributes": {"product": "fibre"},
        },
    ),
    "page.viewed": _event(
        "page.viewed",
        "web",
        {"url": "https://shop.example/account?ref=mail", "title": "Your account", "attributes": {}},
    ),
}


def _micros(call: Callable[[], object], number: int) -> tuple[float, float]:
    runs = [t / number * 1e6 for t in timeit.repeat(call, number=number, repeat=5)]
    return min(runs), statistics.median(runs)


def main() -> None:
    keys = shredding.tenant_keys(secrets.token_bytes(32), TENANT)
    key_id = shredding.subject_key_id(keys, "email:ana.ruiz@example.io")
    data_key = secrets.token_bytes(32)
    # The sealer computes a key's fingerprint once per batch, not per event: timed apart.
    fingerprint = shredding.key_fingerprint(data_key)
    print("µs per call, best of 5 (median)")
    printed = _micros(partial(shredding.key_fingerprint, data_key), 5000)
    print(f"key fingerprint (once per key and batch) {printed[0]:5.1f} ({printed[1]:5.1f})")
    for name, event in EVENTS.items():
        eid = event["event_id"]
        sealed = shredding.seal(event, key_id, data_key, TENANT, eid, fingerprint)
        call = partial(shredding.seal, event, key_id, data_key, TENANT, eid, fingerprint)
        seal = _micros(call, 5000)
        opened = _micros(partial(shredding.open_sealed, sealed, data_key, TENANT, eid), 5000)
        size = len(orjson.dumps(event))
        print(
            f"{name:18} {size:4} B  seal {seal[0]:5.1f} ({seal[1]:5.1f})"
            f"  open {opened[0]:5.1f} ({opened[1]:5.1f})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        vault = SqliteKeyVault(Path(tmp) / "key_vault.sqlite", secrets.token_bytes(32))
        vault.get_or_create(TENANT, key_id)
        find = _micros(lambda: vault.find(TENANT, key_id), 2000)
        fresh = iter(secrets.token_hex(16) for _ in range(10**6))
        create = _micros(lambda: vault.get_or_create(TENANT, next(fresh)), 200)
        vault.close()
    print(
        f"sqlite vault: find {find[0]:.1f} ({find[1]:.1f}),"
        f" new key {create[0]:.1f} ({create[1]:.1f})"
    )
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()

"""The Segment batch path's workload for the end-to-end bench (`bench.embedded.drive`).

The same shape as the native batched workload — events per client thread, each customer owned by
one client and posted in time order, 500 per request — but as Segment messages posted to
`/v1/batch` the way the SDKs post them (Basic auth, `sentAt` on the batch). Half are `page` calls,
half `track` calls with a few properties, both of about the size of a demo event.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from cem.simulate import retry_after_s

_LIBRARY = {"name": "analytics-python", "version": "2.4.0"}


def segment_bodies(
    run: str, events: int, per_request: int, clients: int, customers: int
) -> tuple[list[list[bytes]], dict[str, str]]:
    """Batch bodies per client thread, and each customer's last event id (its messageId)."""
    base_ms = int(time.time() * 1000) - 6 * 3_600_000
    names = [f"{run}-{i}" for i in range(customers)]
    groups = [names[c::clients] for c in range(clients)]
    bodies: list[list[bytes]] = []
    last: dict[str, str] = {}
    for c, group in enumerate(groups):
        share = events // clients + (1 if c < events % clients else 0)
        made = [message(group[i % len(group)], base_ms + i, i) for i in range(share)]
        for sent in made:
            last[sent["userId"]] = sent["messageId"]
        chunks = [made[i : i + per_request] for i in range(0, len(made), per_request)]
        sent_at = datetime.now(UTC).isoformat()
        bodies.append([orjson.dumps({"batch": chunk, "sentAt": sent_at}) for chunk in chunks])
    return bodies, last


def message(user: str, occurred_ms: int, n: int) -> dict[str, Any]:
    """A page or track call of `user`, stamped by the client at `occurred_ms`."""
    stamp = datetime.fromtimestamp(occurred_ms / 1000, UTC).isoformat()
    context = {"library": _LIBRARY, "ip": "203.0.113.7", "locale": "es-ES"}
    common = {"userId": user, "messageId": str(uuid.uuid4()), "timestamp": stamp}
    if n % 2:
        properties = {"sku": f"sku-{n % 97}", "price": 19.9, "currency": "EUR"}
        return {"type": "track", "event": "Product Viewed", "properties": properties,
                "context": context, **common}  # fmt: skip
    page = {"url": f"https://shop.example/p/{n % 97}", "title": "Producto", "path": "/p"}
    return {"type": "page", "name": "Product", "properties": page, "context": context, **common}


def post_segment(http: httpx.Client, body: bytes) -> tuple[int, int]:
    """POST /v1/batch until the log acknowledges; (events accepted or duplicate, rejected)."""
    bearer = http.headers.get("authorization", "").partition(" ")[2]
    headers = {"authorization": "Basic " + base64.b64encode(f"{bearer}:".encode()).decode()}
    for attempt in range(100):
        response = http.post("/v1/batch", content=body, headers=headers)
        if response.status_code in (429, 503):
            wait = retry_after_s(response.headers.get("retry-after"))
            time.sleep(min(1.0, 0.1 if wait is None else wait) + attempt * 0.01)
            continue
        if response.status_code in (200, 422) and "submitted" in (data := response.json()):
            return data["accepted"] + data["duplicates"], data["rejected"] + data["conflicts"]
        raise RuntimeError(f"POST /v1/batch: {response.status_code} {response.text[:500]}")
    raise RuntimeError("POST /v1/batch kept answering 429/503")

"""Search customers by what an agent types: part of an email, phone digits, an external id, or an
order number. Reads the identifiers and timeline tables (their DDL is in `sql.py`).

A name is found where a touchpoint carried it (`payload.attributes`: an order's billing name, a
Segment identify's traits; stored lower case without accents under the kind `name`, lookup.py)
and where people's emails spell it (`ana.garcia@…`). Matching is a substring of the lower-cased
stored value, or every word of the query without its accents (`María García` finds
`maria garcia` and `maria.garcia@…`, as both are written without them); phone digits match
whatever way the number was typed (`600 000 001` finds `+34600000001`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from kernel.ports import Warehouse
from services.projections.lookup import NAME_KIND
from services.projections.profile import NAME, TOUCH
from services.projections.sql import IDENTIFIERS, PROFILE_FACTS, TIMELINE, string_list
from services.projections.timeline import from_micros

MIN_QUERY = 2
MAX_RESULTS = 20
# Each query answers at most this many rows, so a two-letter query in a big tenant returns a
# bounded answer; the scan itself still reads every row of the tenant (no index serves a substring).
SCAN_LIMIT = 200

MAX_WORDS = 5


def identifier_search(words: int) -> str:
    """Identifier rows holding the query, its phone digits, or all of its `words` folded words."""
    every_word = " AND ".join(
        f"position(lower(value), {{word_{i}:String}}) > 0" for i in range(words)
    )
    folded = f"\n       OR ({every_word})" if words else ""
    return f"""SELECT customer_id, kind, value, max(derived_at) AS last_at
FROM {IDENTIFIERS}
WHERE tenant_id = {{tenant_id:String}}
  AND (position(lower(value), {{needle:String}}) > 0
       OR (kind = 'phone' AND {{digits:String}} != '' AND position(value, {{digits:String}}) > 0){folded})
GROUP BY customer_id, kind, value
ORDER BY last_at DESC
LIMIT {SCAN_LIMIT}"""


def folded_words(text: str) -> list[str]:
    """The words of a query that has letters, lower-cased, without accents (`María` → `maria`)
    and without a comma or full stop at either end, at most `MAX_WORDS`; none for digits only
    (the phone digits cover those) or when folding changes nothing of a one-word query (the
    needle covers it)."""
    if not any(c.isalpha() for c in text):
        return []
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    # A comma or full stop typed after a word is no part of it (`García, María`, as lists write
    # names): the word is looked for without it.
    words = [w for w in (w.strip(",.;:") for w in plain.split()) if w][:MAX_WORDS]
    return [] if words == [text.lower()] else words


# Orders are found by their whole number: the `order_id` of an order event's payload (stored as
# compact JSON with sorted keys), or the correlation id the shop's other events carry.
ORDER_SEARCH = f"""SELECT customer_id, 'order' AS kind, {{exact:String}} AS value,
       max(derived_at) AS last_at
FROM {TIMELINE}
WHERE tenant_id = {{tenant_id:String}}
  AND (lower(correlation_id) = {{needle:String}}
       OR (type LIKE 'order.%' AND position(lower(payload_json), {{order_json:String}}) > 0))
GROUP BY customer_id, kind, value
ORDER BY last_at DESC
LIMIT {SCAN_LIMIT}"""


@dataclass(frozen=True)
class Hit:
    customer_id: str
    kind: str
    value: str
    last_at: datetime


def search_params(tenant_id: str, query: str, words: list[str]) -> dict[str, Any]:
    text = query.strip()
    digits = re.sub(r"\D", "", text)
    if digits.startswith("00"):  # `0034 637…`: the international prefix, as `+` is written
        digits = digits[2:]
    return {f"word_{i}": word for i, word in enumerate(words)} | {
        "tenant_id": tenant_id,
        "needle": text.lower(),
        "digits": digits if len(digits) >= 4 else "",
        "exact": text,
        "order_json": orjson.dumps({"order_id": text.lower()}).decode()[1:-1],
    }


def search_hits(warehouse: Warehouse, tenant_id: str, query: str) -> list[Hit]:
    """Identifier and order matches of the query, most recently seen first; a name as the
    touchpoints wrote it (`Lucía Pérez`), not as the search index keeps it (`lucia perez`)."""
    words = folded_words(query.strip())
    params = search_params(tenant_id, query, words)
    rows = warehouse.select(identifier_search(len(words)), params)
    rows += warehouse.select(ORDER_SEARCH, params)
    hits = [
        Hit(r["customer_id"], r["kind"], r["value"], from_micros(int(r["last_at"]))) for r in rows
    ]
    hits = _written_names(warehouse, tenant_id, hits)
    return sorted(hits, key=lambda h: h.last_at, reverse=True)


def _written_names(warehouse: Warehouse, tenant_id: str, hits: list[Hit]) -> list[Hit]:
    """The name hits with the spelling the customer's profile keeps for that name (see
    `written_spellings`); one read, only when a name matched. A name the profile does not have
    (yet) stays as the index keeps it."""
    names = [h for h in hits if h.kind == NAME_KIND][:MAX_RESULTS]
    if not names:
        return hits
    written = written_spellings(
        warehouse, tenant_id, {h.customer_id for h in names}, {h.value for h in names}
    )
    return [
        Hit(h.customer_id, h.kind, written.get((h.customer_id, h.value)) or h.value, h.last_at)
        if h.kind == NAME_KIND
        else h
        for h in hits
    ]


def written_spellings(
    warehouse: Warehouse, tenant_id: str, customer_ids: Iterable[str], names: Iterable[str]
) -> dict[tuple[str, str], str]:
    """How the touchpoints of each customer wrote each normalised name (`maria garcia` →
    `María García`): its latest spelling among the customer's `profile.NAME` facts (key the
    normalised name, `str_value` as written), by (customer id, normalised name). One read; none
    when either list is empty."""
    customer_ids, names = sorted(set(customer_ids)), sorted(set(names))
    if not (customer_ids and names):
        return {}
    owners, owner_params = string_list("owner", customer_ids)
    keys, key_params = string_list("key", names)
    sql = WRITTEN_NAMES.format(owners=owners, keys=keys)
    params = {"tenant_id": tenant_id, **owner_params, **key_params}
    return {(r["customer_id"], r["key"]): r["written"] for r in warehouse.select(sql, params)}


WRITTEN_NAMES = f"""SELECT customer_id, key, argMax(str_value, (derived_at, event_id)) AS written
FROM {PROFILE_FACTS}
WHERE tenant_id = {{{{tenant_id:String}}}} AND customer_id IN ({{owners}})
  AND field = '{NAME}' AND key IN ({{keys}})
GROUP BY customer_id, key"""


def last_contacts(
    warehouse: Warehouse, tenant_id: str, groups: Mapping[str, Sequence[str]]
) -> dict[str, datetime]:
    """Each customer's last touchpoint over all its members (`groups`: customer id → member
    ids), as its profile's `last_seen` reads it (the `profile.TOUCH` facts); one read. A search
    result dated by the identifier that matched said "3 months ago" of a customer who called
    yesterday from her phone (a browser review). A customer none of whose members has a
    touchpoint is left out."""
    owners_of: dict[str, list[str]] = {}
    for customer, members in groups.items():
        for member in members:
            owners_of.setdefault(member, []).append(customer)
    if not owners_of:
        return {}
    owners, params = string_list("owner", sorted(owners_of))
    rows = warehouse.select(LAST_CONTACTS.format(owners=owners), {"tenant_id": tenant_id, **params})
    last: dict[str, datetime] = {}
    for row in rows:
        at = from_micros(int(row["last_at"]))
        for customer in owners_of.get(row["customer_id"], ()):
            last[customer] = max(at, last.get(customer, at))
    return last


LAST_CONTACTS = f"""SELECT customer_id, max(derived_at) AS last_at
FROM {PROFILE_FACTS}
WHERE tenant_id = {{{{tenant_id:String}}}} AND customer_id IN ({{owners}}) AND field = '{TOUCH}'
GROUP BY customer_id"""

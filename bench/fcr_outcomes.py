"""What `fcr.outcomes` costs on customers with a long history of contacts. Pure: no engine.

Each customer has `--contacts` resolved contacts, one every few hours over months, on rotating
topics; fcr@1 looks only 7 days back (is it a first contact?) and 7 days ahead (did the customer
come back?). Prints the time per call and a digest of the outcomes (the same tree gives the same
digest, so two trees can be compared on results as well as time). Numbers only, with the load
average; nothing asserts a time (HOUSE_STYLE).

    PYTHONPATH=. python -m bench.fcr_outcomes [--customers 5] [--contacts 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time

from services.projections.repeat_contact import Contact
from services.satisfaction.fcr import FcrContact, outcomes

HOUR = 3_600_000_000


def contacts(customers: int, per_customer: int) -> list[FcrContact]:
    found = []
    for c in range(customers):
        for i in range(per_customer):
            at = i * 5 * HOUR + c
            topic = frozenset({f"topic-{i % 40}"}) if i % 97 else frozenset()
            found.append(
                FcrContact(
                    contact=Contact(at, f"e-{c}-{i}", "phone", "support"),
                    customer_id=f"cust-{c}",
                    queue="q",
                    agent="a",
                    topics=topic,
                    cases=frozenset(),
                    resolved=i % 3 != 0,
                )
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    given = contacts(args.customers, args.contacts)
    as_of = args.contacts * 5 * HOUR
    times, digest = [], ""
    for _ in range(args.runs):
        start = time.perf_counter()
        found = outcomes(given, as_of)
        times.append(time.perf_counter() - start)
        text = repr([(o.contact.contact.event_id, o.status, o.repeat_event_id) for o in found])
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    print(
        f"fcr outcomes: {args.customers} x {args.contacts} contacts, "
        f"median {statistics.median(times) * 1000:.1f} ms, outcomes {len(found)}, "
        f"digest {digest}, load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()

"""Accuracy benchmark of identity resolution (`cem bench identity`).

Feeds the population (population.py) through what production runs: each batch is validated
exactly as the HTTP ingest validates it (`services.ingest.batch.prepare`; an event rejected whole
is a lost touchpoint), decoded from the log's wire form as the runners decode it, and filed by the
identity filer the embedded pipeline uses (`IdentityFiler` over the resolver
`cem.bootstrap.embedded_identity` builds: eventsourcing on an SQLite file, the product's default
rules unless a rules file is given). Scores are computed from the filings alone: the customer each
event was filed under, followed through merges (and splits) to who it is now.

In which order the filing stage sees the touchpoints (`ARRIVALS`): in time order, as one
partition would give them (`time`, the default); or as the filing stage polls them from the
touchpoint topic's partitions (a touchpoint's partition is its customer key's bucket, so two of
one person's touchpoints with different identifiers may sit on two partitions): each request's
records polled as they arrive (`live`), or the whole population queued first and polled in
batches (`backlog`, an imported history). The polls are the logs' own (`kernel.partitioning`:
the partition of each record key, and the fair share of a poll between partitions), over the
in-memory log that shares them, with the filing stage's batch size.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.identity.fusions import fusion_causes, several_people_causes
from bench.identity.misses import missed_linkable_pairs
from bench.identity.population import Touch, generate
from bench.identity.scoring import evidence_components, scores
from bench.identity.spelling import PLACEHOLDER
from cem.adapters.memory_log import MemoryLog
from cem.bootstrap import embedded_identity
from cem.identity import build_identity
from cem.runner import next_offsets
from kernel.filings import FILING_STAGE
from kernel.partitioning import touchpoint_bucket_key
from kernel.ports import TOUCHPOINTS_TOPIC, Record
from kernel.processing import Unfiled
from kernel.settings import IngestSettings
from schemas.validate import decode
from services.identity.filing import IdentityFiler
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules
from services.identity.settings import IdentitySettings
from services.ingest.batch import prepare

TENANT = "bench"
ARRIVALS = ("time", "live", "backlog")
PARTITIONS = IngestSettings.model_fields["partitions"].default
FILING_POLL = 5000  # records per poll of the filing stage (`cem.runner.file_once`)
BUCKET_KEY = touchpoint_bucket_key(b"bench platform key")
BATCH = 500  # events per ingest request and per filing batch
MAX_EVENT_BYTES = IngestSettings.model_fields["max_event_bytes"].default
# The "done when": what the product must reach on this population with default rules,
# and no customer holding several people through a placeholder or hub (fusions.py).
# Evidence keys of devices and browsers (channels.py): they identify a device, not a person.
DEVICE_KEYS = ("cookie:", "app:", "tablet:", "kiosk:")
# "Customers per person counting only what is linkable" is measured per linkable group (one
# person's touchpoints the evidence connects), where one customer each is possible.
TARGETS = {"precision": 0.995, "linkable_recall": 0.99, "customers_per_linkable_group": 1.1}


@dataclass(frozen=True)
class Filed:
    """What production made of each touchpoint: its customer now, or why it has none."""

    customers: list[str | None]  # None: lost (rejected at validation, or unfiled)
    rejected: int
    unfiled: int
    registered: int
    merges: int
    candidates: int
    elapsed_s: float


def run_accuracy(
    people: int,
    seed: int,
    rules: IdentityRules | None = None,
    data_dir: Path | None = None,
    arrival: str = "time",
) -> dict[str, Any]:
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival {arrival!r} is not one of {', '.join(ARRIVALS)}")
    touches = generate(people, seed)
    with tempfile.TemporaryDirectory(prefix="cem-identity-bench-") as scratch:
        directory = data_dir or Path(scratch)
        resolver = (
            embedded_identity(directory)
            if rules is None
            else build_identity(IdentitySettings(mode="embedded", data_dir=directory), rules=rules)
        )
        try:
            filed = file_all(touches, resolver, arrival)
        finally:
            resolver.close()
    return summarise(people, seed, touches, filed) | {"arrival": arrival}


def file_all(touches: Sequence[Touch], resolver: IdentityResolver, arrival: str = "time") -> Filed:
    filer = IdentityFiler(resolver)
    homes: dict[str, str] = {}
    rejected = unfiled = 0
    queue = MemoryLog(PARTITIONS)

    def file(records: Sequence[Record]) -> None:
        nonlocal unfiled
        events = [decode(record.value) for record in records]
        for event, home in zip(events, filer.file(events), strict=True):
            if isinstance(home, Unfiled):
                unfiled += 1
            else:
                homes[str(event.event_id)] = home

    def poll_once() -> bool:
        polled = queue.poll(TOUCHPOINTS_TOPIC, FILING_STAGE, FILING_POLL, 0)
        if polled:
            file([Record(c.key, c.value, c.headers) for c in polled])
            queue.commit(TOUCHPOINTS_TOPIC, FILING_STAGE, next_offsets(polled))
        return bool(polled)

    def poll_all() -> None:
        while poll_once():
            pass

    started = time.perf_counter()
    for start in range(0, len(touches), BATCH):
        batch = touches[start : start + BATCH]
        received = batch[-1].at + timedelta(seconds=5)
        prepared = prepare(
            [t.event for t in batch], TENANT, received, MAX_EVENT_BYTES, bucket_key=BUCKET_KEY
        )
        rejected += len(prepared.rejected)
        records = [out.record for out in prepared.outgoing]
        if arrival == "time":
            file(records)
            continue
        queue.append(TOUCHPOINTS_TOPIC, records)
        if arrival == "live":
            # One poll takes the request (500 ≤ 5,000): no empty poll, which would move the
            # log's turn of who starts a poll on by one more each time.
            poll_once()
    poll_all()
    elapsed = time.perf_counter() - started
    now = {home: resolver.canonical_id(TENANT, home) for home in set(homes.values())}
    return Filed(
        customers=[now.get(homes.get(t.event_id, "")) for t in touches],
        rejected=rejected,
        unfiled=unfiled,
        registered=len(now),
        merges=sum(home != customer for home, customer in now.items()),
        candidates=len(resolver.candidates(TENANT, status=None)),
        elapsed_s=elapsed,
    )


def summarise(people: int, seed: int, touches: Sequence[Touch], filed: Filed) -> dict[str, Any]:
    # A lost touchpoint is filed with nobody: it pairs with nothing.
    predicted: list[Hashable] = [
        c if c else ("lost", t.event_id) for t, c in zip(touches, filed.customers, strict=True)
    ]
    persons = [t.person for t in touches]
    components = evidence_components(touches)
    overall = scores(persons, predicted, components, [True] * len(touches))
    causes = several_people_causes(touches, filed.customers)
    result: dict[str, Any] = {
        "people": people,
        "seed": seed,
        "touchpoints": len(touches),
        "lost_at_validation": filed.rejected,
        "lost_at_filing": filed.unfiled,
        "customers_registered": filed.registered,
        "customers_resolved": len({c for c in filed.customers if c}),
        "automatic_merges": filed.merges,
        "merge_rate": filed.merges / filed.registered if filed.registered else 0.0,
        "candidates_proposed": filed.candidates,
        "filings_per_s": len(touches) / filed.elapsed_s if filed.elapsed_s else 0.0,
        **{k: v for k, v in overall.as_dict().items() if k != "touchpoints"},
        **customers_per_person(touches, filed.customers, components),
        **people_per_customer(touches, filed.customers),
        "several_people_causes": causes,
        "customers_through_placeholder_or_hub": causes["through_placeholder_or_hub"],
        "missed_linkable": missed_linkable_pairs(touches, filed.customers, components),
        "hazards": {
            h: hazard_scores(h, touches, persons, predicted, components, filed)
            for h in _hazards(touches)
        },
        "targets": TARGETS,
    }
    result["meets_targets"] = (
        result["precision"] >= TARGETS["precision"]
        and result["linkable_recall"] >= TARGETS["linkable_recall"]
        and result["customers_per_linkable_group"] <= TARGETS["customers_per_linkable_group"]
        and result["customers_through_placeholder_or_hub"] == 0
    )
    return result


def _hazards(touches: Sequence[Touch]) -> list[str]:
    return sorted({h for t in touches for h in t.hazards} | {"none"})


def hazard_scores(
    hazard: str,
    touches: Sequence[Touch],
    persons: Sequence[int],
    predicted: Sequence[Hashable],
    components: Sequence[int],
    filed: Filed,
) -> dict[str, Any]:
    marked = [(hazard in t.hazards) if hazard != "none" else not t.hazards for t in touches]
    found = scores(persons, predicted, components, marked).as_dict()
    lost = sum(m and c is None for m, c in zip(marked, filed.customers, strict=True))
    return found | {"lost": lost}


def linkable_groups(touches: Sequence[Touch], components: Sequence[int]) -> set[int]:
    """The groups of linked touchpoints (evidence components) that can be told to be someone:
    at least two touchpoints, and an identifier naming a person (an email, a phone, an account,
    a loyalty card) among them. Anonymous visits on a cookie, an app or a device alone are not."""
    size = Counter(components)
    return {
        component
        for touch, component in zip(touches, components, strict=True)
        if size[component] > 1 and any(not k.startswith(DEVICE_KEYS) for k in touch.evidence)
    }


def customers_per_person(
    touches: Sequence[Touch], customers: Sequence[str | None], components: Sequence[int]
) -> dict[str, float]:
    """Mean customers a person is split into: over every filed touchpoint, and over the linkable
    ones only (see `linkable_groups`), beside the least the evidence allows there (the person's
    number of linkable groups: a work email used only on its own is a group apart). And the mean
    customers each linkable group is split into, where the evidence allows exactly one."""
    linkable_components = linkable_groups(touches, components)
    every: dict[int, set[str]] = {}
    linkable: dict[int, set[str]] = {}
    groups: dict[int, set[int]] = {}
    for touch, customer, component in zip(touches, customers, components, strict=True):
        if customer is not None:
            every.setdefault(touch.person, set()).add(customer)
        if component in linkable_components:
            groups.setdefault(touch.person, set()).add(component)
            if customer is not None:
                linkable.setdefault(touch.person, set()).add(customer)
    linked_people = list(groups)
    per_group: dict[int, set[str]] = {}
    for customer, component in zip(customers, components, strict=True):
        if component in linkable_components and customer is not None:
            per_group.setdefault(component, set()).add(customer)
    return {
        "customers_per_linkable_group": _mean(len(c) for c in per_group.values()),
        "customers_per_person": _mean(len(c) for c in every.values()),
        "linkable_customers_per_person": _mean(
            len(linkable.get(p, ())) or 1 for p in linked_people
        ),
        "linkable_customers_per_person_best": _mean(len(groups[p]) for p in linked_people),
        "people_split": sum(len(c) > 1 for c in every.values()) / len(every) if every else 0.0,
    }


def people_per_customer(
    touches: Sequence[Touch], customers: Sequence[str | None]
) -> dict[str, Any]:
    members: dict[str, list[Touch]] = {}
    for touch, customer in zip(touches, customers, strict=True):
        if customer is not None:
            members.setdefault(customer, []).append(touch)
    people = {c: len({t.person for t in ts}) for c, ts in members.items()}
    worst = sorted(people, key=lambda c: (-people[c], c))[:5]
    return {
        "people_per_customer": _mean(people.values()),
        "max_people_per_customer": max(people.values(), default=0),
        "customers_with_several_people": sum(n > 1 for n in people.values()),
        "worst_customers": [_fused(c, members[c]) for c in worst if people[c] > 1],
    }


def _fused(customer: str, touches: Sequence[Touch]) -> dict[str, Any]:
    """A fused customer and the identifier held by the most of its different people."""
    holders: dict[str, set[int]] = {}
    for touch in touches:
        for key in touch.carried:
            holders.setdefault(key, set()).add(touch.person)
    key = max(holders, key=lambda k: (len(holders[k]), k))
    spelled = Counter(w for t in touches for k, w in t.spelled if k == key).most_common(1)
    return {
        "customer_id": customer,
        "people": len({t.person for t in touches}),
        "touchpoints": len(touches),
        "fused_by": spelled[0][0] if spelled else key,
        "fused_by_kind": "placeholder" if key.startswith(PLACEHOLDER) else key.partition(":")[0],
        "people_holding_it": len(holders[key]),
        "causes": sorted(fusion_causes(touches)),
    }


def _mean(values: Any) -> float:
    found = list(values)
    return sum(found) / len(found) if found else 0.0

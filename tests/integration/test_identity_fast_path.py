"""The fast path for evidence already seen (`services.identity.known`) changes no answer: the
identity bench's population and the determinism test's hazardous log, resolved with and without
it on fresh stores, give the same result for every touchpoint, the same filing for every event and
the same events recorded, in the same order (so the same confirmations of mobiles too)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.identity.workload import population, touched_at
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from services.identity import (
    IdentityResolver,
    IdentityRules,
    ResolvedCustomer,
    TenantRules,
    resolution,
)
from services.identity.person_names import name_in
from tests.identity_log import log

TENANT = "acme"
SPAIN = IdentityRules(default=TenantRules(phone_region="ES"))


KEY = b"fast path test key, 32 bytes ok"


def bench_touchpoints(customers: int, seed: int) -> list[Any]:
    return [(t.ref, t.event_id, t.channel, touched_at(t)) for t in population(customers, seed)]


def hazard_touchpoints(seed: int) -> list[Any]:
    # With the names some carry: the fast path must record them as the full path does.
    return [
        (e.customer, e.event_id, e.source_id, e.occurred_at, name_in(e.payload)) for e in log(seed)
    ]


def resolve_all(
    store: Path, rules: IdentityRules, work: Sequence[Any], batch: int, fast: bool
) -> tuple[list[ResolvedCustomer], list[Any], list[tuple[Any, ...]]]:
    """Every result, every event's filing, and every recorded event (aggregate, version, topic)."""
    # One key for both runs: the platform's, so both name new customers alike.
    identity = IdentityResolver(SqliteIdentityStore(store), rules, fast_path=fast, id_key=KEY)
    try:
        results: list[ResolvedCustomer] = []
        for start in range(0, len(work), batch):
            results += identity.resolve_batch(TENANT, work[start : start + batch])
        filings = [identity.filing_of(TENANT, str(t[1])) for t in work]
        count = identity.recorder.max_notification_id() or 0
        recorded = [
            (n.originator_id, n.originator_version, n.topic)
            for n in identity.recorder.select_notifications(1, count)
        ]
        return results, filings, recorded
    finally:
        identity.close()


@pytest.fixture
def quiet_answers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The homes the fast path answered with, to show it was taken."""
    answered: list[str] = []
    quiet_decision = resolution.quiet_decision

    def counted(*args: Any) -> Any:
        decision = quiet_decision(*args)
        if decision is not None:
            answered.append(decision.home_id)
        return decision

    monkeypatch.setattr(resolution, "quiet_decision", counted)
    return answered


@pytest.mark.parametrize(
    ("name", "rules", "batch"),
    [("bench-5", SPAIN, 250), ("bench-9", SPAIN, 1), ("hazards-3", IdentityRules(), 7)],
)
def test_the_fast_path_gives_every_touchpoint_the_answer_of_the_full_decision(
    tmp_path: Path, quiet_answers: list[str], name: str, rules: IdentityRules, batch: int
) -> None:
    kind, seed = name.split("-")
    if kind == "bench":
        work = bench_touchpoints(120 if batch == 1 else 400, int(seed))
    else:
        work = hazard_touchpoints(int(seed))
    full = resolve_all(tmp_path / f"full-{uuid.uuid4().hex}", rules, work, batch, fast=False)
    assert quiet_answers == []
    fast = resolve_all(tmp_path / f"fast-{uuid.uuid4().hex}", rules, work, batch, fast=True)
    assert len(quiet_answers) > len(work) // 5  # taken often, not just once
    for label, without, with_it in zip(("results", "filings", "events"), full, fast, strict=True):
        differing = [i for i, (a, b) in enumerate(zip(without, with_it, strict=True)) if a != b]
        assert not differing, f"{label} differ at {differing[:5]}"

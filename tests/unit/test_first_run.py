"""First-run helpers: the demo is seeded newest week first, the banner's sample customer, progress
bars with a rate, and a read-only instance that refuses writes in the one error shape."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.progress import Progress

from cem import demo
from cem.demo_seed import sample_customer, weeks_newest_first
from cem.progress import RateColumn
from cem.read_only import refuse_writes

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(days_ago: float) -> dict[str, str]:
    return {"occurred_at": (NOW - timedelta(days=days_ago)).isoformat()}


def test_weeks_come_newest_first_each_in_time_order() -> None:
    events = [at(d) for d in (20, 15, 9, 8, 6.5, 3, 0.1)]  # in time order, as generated
    weeks = weeks_newest_first(events, NOW)
    assert weeks == [[at(6.5), at(3), at(0.1)], [at(9), at(8)], [at(20), at(15)]]
    assert sum(len(w) for w in weeks) == len(events)  # nothing lost or repeated


def test_an_event_stamped_after_now_counts_in_the_newest_week() -> None:
    assert weeks_newest_first([at(-0.01), at(1)], NOW) == [[at(-0.01), at(1)]]


def test_the_sample_customer_is_the_busiest_of_the_newest_week_by_email() -> None:
    rng = random.Random(42)
    population = demo.Population.generate(rng, 200)
    recent = list(demo.history(population, rng, NOW, 7))
    sample = sample_customer(population, recent)
    assert sample is not None and sample.key.startswith("email:")
    email = sample.key.removeprefix("email:")
    theirs = [e for e in recent if (e["customer"].get("email") or "").lower() == email]
    assert theirs, "the sample customer has events in the newest week"
    assert any(
        c.name == sample.name and (c.email or "").lower() == email for c in population.customers
    )
    # The name the banner prints is on record (an order carried it): the console finds it.
    assert any((e["payload"].get("attributes") or {}).get("name") == sample.name for e in theirs)
    assert sample_customer(population, []) is None
    # A week in which no order carried a name (a small demo): the banner names the customer by
    # the email the search finds, not a name nothing on record carries (found by a review).
    unnamed = [{**e, "payload": {k: v for k, v in e["payload"].items() if k != "attributes"}}
               for e in recent]  # fmt: skip
    quiet = sample_customer(population, unnamed)
    assert quiet is not None and quiet.name == quiet.key.removeprefix("email:")


def test_the_rate_column_shows_items_per_second() -> None:
    progress = Progress()
    task_id = progress.add_task("x", total=10)
    task = progress.tasks[task_id]
    assert str(RateColumn("events").render(task)) == "– events/s"  # no speed measured yet


def test_read_only_refuses_writes_with_503_in_the_one_shape_and_serves_reads() -> None:
    app = FastAPI()

    @app.get("/v1/thing")
    def read() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/thing")
    def write() -> dict[str, bool]:
        raise AssertionError("a read-only instance must not reach a write route")

    refuse_writes(app)
    client = TestClient(app)
    assert client.get("/v1/thing").json() == {"ok": True}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = client.request(method, "/v1/thing", json={})
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "read_only" and "read-only" in error["message"]
    # A Segment path answers in Segment's shape too (its SDKs read `code` and `message`).
    segment = client.post("/v1/track", json={})
    assert segment.status_code == 503
    assert segment.json()["code"] == "read_only" and segment.json()["error"]["code"] == "read_only"
    # The document says so (found by a first-hour review: an undocumented 503 on each write).
    paths = app.openapi()["paths"]["/v1/thing"]
    assert "503" in paths["post"]["responses"] and "503" not in paths["get"]["responses"]


def test_identity_history_times_read_as_rfc3339_not_microseconds() -> None:
    from services.identity.audit import _readable

    assert _readable("seen_at", 1_764_633_600_000_000) == datetime(2025, 12, 2, tzinfo=UTC)
    assert _readable("seen_at", 0) is None  # unknown
    assert _readable("score", 5) == 5 and _readable("erased_at", True) is True


def test_days_come_newest_first_when_asked() -> None:
    from cem.demo_seed import DAY

    events = [at(d) for d in (2.5, 1.5, 0.5, 0.2)]
    assert weeks_newest_first(events, NOW, DAY) == [[at(0.5), at(0.2)], [at(1.5)], [at(2.5)]]

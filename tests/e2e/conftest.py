"""Fixtures of the end-to-end suite: a running deployment of each kind, and a client for it.

`deployment` is parametrised over `DEPLOYMENT_KINDS`; each kind K is a fixture named
`K_deployment` (session or package scope), so a kind may depend on other fixtures (say the session's Kafka and ClickHouse).
To add one: define the fixture here (or in a conftest it can be imported from) and add K below.
`CEM_E2E_DEPLOYMENTS=embedded,distributed` picks a subset; by default every kind runs. A kind
on real engines carries their markers (so `-m "not kafka"` leaves it out), and skips locally,
or fails under CI, when an engine is missing.

`deployment` lives for the package, not the session: the distributed kind holds the broker's
fixed consumer groups (see `tests.e2e.distributed`), which later test folders' workers join.

Tests share one deployment per kind and keep their data apart by random customer ids and
touchpoints (`deployments.new_tag`), never by truncating tables.

Every kind runs with the event-sourced identity service on (CEM_IDENTITY=eventsourced), so the
suite checks what users see through it: events filed by identity resolution in the stream
processors, customers read through their merged members. `CEM_E2E_IDENTITY=rule` runs the
deployments on the customer-key rule instead (the product's default); the identity tests then skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.deployments import Api, Deployment, EmbeddedDeployment
from tests.e2e.distributed import DistributedDeployment

DEPLOYMENT_KINDS = ("embedded", "distributed")
IDENTITY_MODES = ("eventsourced", "rule")  # the first is the suite's default
ENGINE_MARKS = {
    "distributed": (pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.postgres),
}


def selected_kinds() -> list[str]:
    wanted = os.environ.get("CEM_E2E_DEPLOYMENTS")
    if not wanted:
        return list(DEPLOYMENT_KINDS)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DEPLOYMENT_KINDS))
    if unknown:
        raise pytest.UsageError(f"CEM_E2E_DEPLOYMENTS: unknown kind(s) {unknown}")
    return names


def selected_identity() -> str:
    """The CEM_IDENTITY every deployment of the suite runs with (CEM_E2E_IDENTITY)."""
    wanted = os.environ.get("CEM_E2E_IDENTITY", "").strip() or IDENTITY_MODES[0]
    if wanted not in IDENTITY_MODES:
        raise pytest.UsageError(f"CEM_E2E_IDENTITY: {wanted!r} is not one of {IDENTITY_MODES}")
    return wanted


def kind_params() -> list[Any]:
    return [pytest.param(k, marks=ENGINE_MARKS.get(k, ()), id=k) for k in selected_kinds()]


@pytest.fixture(scope="package", params=kind_params())
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """A running platform, shared by the package's tests (they must not stop or kill it)."""
    found: Deployment = request.getfixturevalue(f"{request.param}_deployment")
    return found


# Package-scoped, as the distributed one is: stopped once `tests/e2e` is done, so that the
# integration and unit tests after it do not share the machine with an idle platform.
@pytest.fixture(scope="package")
def embedded_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDeployment]:
    data_dir = tmp_path_factory.mktemp("embedded") / "data"
    running = EmbeddedDeployment(data_dir, identity=selected_identity())
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="package")
def distributed_deployment(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    clickhouse_url: str,
    postgres_dsn: str,
) -> Iterator[DistributedDeployment]:
    work_dir = tmp_path_factory.mktemp("distributed")
    running = DistributedDeployment(
        work_dir, kafka_bootstrap, clickhouse_url, postgres_dsn, identity=selected_identity()
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
        running.drop_database()


@pytest.fixture(scope="package")
def api(deployment: Deployment) -> Iterator[Api]:
    client = Api(deployment.base_url, deployment.ingest_url)
    yield client
    client.close()

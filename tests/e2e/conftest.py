"""Fixtures of the end-to-end suite: a running deployment of each kind, and a client for it.

`deployment` is parametrised over `DEPLOYMENT_KINDS`; each kind K is a session fixture named
`K_deployment`, so a kind may depend on other fixtures (say the session's Kafka and ClickHouse).
To add one: define the fixture here (or in a conftest it can be imported from) and add K below.
`CEM_E2E_DEPLOYMENTS=embedded,distributed` picks a subset.

Tests share one deployment per kind and keep their data apart by random customer ids and
touchpoints (`deployments.new_tag`), never by truncating tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.deployments import Api, Deployment, EmbeddedDeployment

DEPLOYMENT_KINDS = ("embedded",)


def selected_kinds() -> list[str]:
    wanted = os.environ.get("CEM_E2E_DEPLOYMENTS")
    if not wanted:
        return list(DEPLOYMENT_KINDS)
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DEPLOYMENT_KINDS))
    if unknown:
        raise pytest.UsageError(f"CEM_E2E_DEPLOYMENTS: unknown kind(s) {unknown}")
    return names


@pytest.fixture(scope="session", params=selected_kinds())
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """A running platform, shared by the session's tests (they must not stop or kill it)."""
    found: Deployment = request.getfixturevalue(f"{request.param}_deployment")
    return found


@pytest.fixture(scope="session")
def embedded_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDeployment]:
    running = EmbeddedDeployment(tmp_path_factory.mktemp("embedded") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(deployment: Deployment) -> Iterator[Api]:
    client = Api(deployment.base_url)
    yield client
    client.close()

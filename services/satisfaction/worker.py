"""The `satisfaction` stream worker (distributed mode): `python -m services.satisfaction.worker`."""

from __future__ import annotations

from cem.faust_worker import run_worker
from cem.settings import CoreSettings
from services.satisfaction.projection import SatisfactionProjection


def run(settings: CoreSettings | None = None) -> None:
    """Consume `touchpoints` as group `satisfaction` until SIGTERM; settings from CEM_* by default."""
    run_worker(SatisfactionProjection(), settings)


if __name__ == "__main__":
    run()

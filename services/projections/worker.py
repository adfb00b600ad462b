"""The `projections` stream worker (distributed mode): `python -m services.projections.worker`."""

from __future__ import annotations

from cem.faust_worker import run_worker
from cem.settings import CoreSettings
from services.projections.projection import ProjectionsProjection


def run(settings: CoreSettings | None = None) -> None:
    """Consume `touchpoints` as group `projections` until SIGTERM; settings from CEM_* by default."""
    run_worker(ProjectionsProjection(), settings)


if __name__ == "__main__":
    run()

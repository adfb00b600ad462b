"""The projections every deployment runs, in one place: `cem up` runs them in its process, the
distributed mode as one worker each, and the ingest of either waits on their consumer groups
(services/ingest/backlog.py). Kept apart from `cem.bootstrap` so that the distributed ingest can
name them without importing the embedded composition root (and chdb with it)."""

from __future__ import annotations

from kernel.processing import Projection
from services.projections.projection import ProjectionsProjection
from services.satisfaction.projection import SatisfactionProjection


def default_projections() -> list[Projection]:
    return [ProjectionsProjection(), SatisfactionProjection()]

"""The projections every deployment runs, in one place: `cem up` runs them in its process, the
distributed mode as one worker each, and the ingest of either waits on their consumer groups
(services/ingest/backlog.py). Kept apart from `cem.bootstrap` so that the distributed ingest can
name them without importing the embedded composition root (and chdb with it)."""

from __future__ import annotations

from kernel.processing import Projection
from services.identity.rules import IdentityRules
from services.projections.projection import ProjectionsProjection
from services.satisfaction.projection import SatisfactionProjection


def default_projections(rules: IdentityRules | None = None) -> list[Projection]:
    """The projections, reading identifiers with identity's `rules` (the deployment's, so that a
    profile lists what identity links; None: the product's, enough for naming the groups)."""
    return [ProjectionsProjection(rules), SatisfactionProjection()]

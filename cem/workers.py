"""The stream workers of the distributed mode, one process each:
`cem serve filing|projections|satisfaction`.

Composition roots: they join a service's pure projection to the faust runner (`cem.faust_worker`).
"""

from __future__ import annotations

from cem.faust_worker import run_filing_worker, run_worker
from cem.sealing import default_rules
from kernel.settings import CoreSettings
from services.projections.projection import ProjectionsProjection
from services.satisfaction.projection import SatisfactionProjection
from services.satisfaction.sentiment import warm_up as warm_up_sentiment


def run_filing(settings: CoreSettings | None = None) -> None:
    """Consume `touchpoints` as group `filing`, appending to `filings`, until SIGTERM; each
    erasure's rows go once both projection groups stored what was filed before it."""
    run_filing_worker(
        settings, row_groups=(ProjectionsProjection.name, SatisfactionProjection.name)
    )


def run_projections(settings: CoreSettings | None = None) -> None:
    """Consume `filings` as group `projections` until SIGTERM; settings from CEM_* by default."""
    # Identity's rules, as the filing worker reads them (CEM_IDENTITY_RULES_FILE,
    # CEM_DEFAULT_REGION): the identifiers a profile lists are those identity reads.
    run_worker(ProjectionsProjection(default_rules()), settings)


def run_satisfaction(settings: CoreSettings | None = None) -> None:
    """Consume `filings` as group `satisfaction` until SIGTERM; settings from CEM_* by default."""
    # Before joining the group: a model loading mid-batch would block the worker past its
    # session timeout.
    warm_up_sentiment()
    run_worker(SatisfactionProjection(), settings)

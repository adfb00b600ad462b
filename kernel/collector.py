"""The garbage collector's settings for the platform's long-running processes.

Nearly everything the pipeline allocates is freed by reference counting as soon as a batch is
done; the cyclic collector only finds what reference counting cannot (cycles). With CPython's
default thresholds (a young collection every 700 allocations) a batch of 500 events is still alive
at several young collections, so its rows, models and dicts are promoted to the old generation,
and every so often a full collection walks the whole heap: the identity caches, the decoded events
kept for the other consumer groups, the modules, chdb's objects. Sampled with py-spy in a `cem up`
filing a 1M-event backlog, 27% of the time the GIL was held went to `gc_collect_main`.

`settle_collector` is called once a process has finished starting: it collects once, moves what
exists then (modules, settings, compiled validators, the app) out of the collector's reach for
good (`gc.freeze`), and lets the young generation grow to `YOUNG` allocations, so that a batch is
usually freed before a young collection looks at it and far less is promoted. Cycles are still
collected, only less often; memory held by a cycle waits a little longer.
"""

from __future__ import annotations

import gc

# Allocations between young collections (CPython's default is 700), and how many collections of
# a generation before the next one is collected (defaults 10 and 10).
YOUNG = 100_000
MIDDLE = 50
OLD = 100


def settle_collector() -> tuple[int, int, int]:
    """Apply the settings above to this process (idempotent); returns the new thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
    return gc.get_threshold()

"""Python's garbage collector, set for a long-running platform process.

A platform process keeps a large, long-lived heap (the identity store's aggregate cache, decoded
events shared by the consumers, compiled schemas). With the default thresholds (a young-generation
collection every 700 allocations) every collection that reaches the older generations walks it
again, and its cost lands on whichever stage is running: measured with `python -m bench.stages`,
about 25 µs per event of "validate" and 15 µs of "parse body" were the collector, not the code.
So, once start-up is done: collect, freeze what start-up built (never scanned again), and let the
young generation grow to `YOUNG_THRESHOLD` objects before it is collected. Reference counting still
frees almost everything at once; only cycles wait a little longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_collector() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)

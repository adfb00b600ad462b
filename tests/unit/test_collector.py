"""A platform process tunes its garbage collector once start-up is done: what start-up built is
frozen (never scanned again) and the young generation is collected less often."""

from __future__ import annotations

import gc

from cem.collector import YOUNG_THRESHOLD, tune_collector


def test_start_up_is_frozen_and_young_collections_are_rarer() -> None:
    saved = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, saved[1], saved[2])
        assert saved[0] < YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)

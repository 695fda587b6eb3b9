"""The web process puts its start-up objects out of the cyclic collector's reach (a full collection walked them all
in the middle of requests: ~100 ms pauses in the search benchmark)."""

from __future__ import annotations

import gc

from ticketing_app.lifespan import freeze_startup_objects


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected():
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000

        class Cycle:
            pass

        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2  # objects made after start-up are collected as before
    finally:
        gc.unfreeze()

"""Once started, the service keeps what start-up made out of the garbage collector's scans
(a full collection walked phonenumbers' geocoder tables every time: 25-45 ms with the event
loop stopped), and still collects what it makes afterwards."""

from __future__ import annotations

import gc
import weakref

import phonenumbers.geocoder

from puente.heap import freeze_startup_heap


class _Node:
    """A cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_what_start_up_made_is_frozen_and_what_comes_after_is_collected() -> None:
    before = gc.get_freeze_count()
    try:
        frozen = freeze_startup_heap()
        assert frozen > before
        # The geocoder's table of ~575,000 prefixes is no longer in any generation a
        # collection walks.
        assert not any(o is phonenumbers.geocoder.GEOCODE_DATA for o in gc.get_objects())
        # A cycle made afterwards is garbage like any other.
        ref = weakref.ref(_Node())
        assert ref() is not None
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()  # (the rest of the test session runs as before)


def test_start_up_garbage_is_collected_not_frozen() -> None:
    leftover = weakref.ref(_Node())
    try:
        freeze_startup_heap()
        assert leftover() is None
    finally:
        gc.unfreeze()

"""Once started, the service keeps what start-up made out of the garbage collector's scans
(a full collection walked phonenumbers' geocoder tables every time: 25-45 ms with the event
loop stopped), lets short-lived objects die young, and still collects what it makes
afterwards."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import phonenumbers.geocoder
import pytest

from puente.heap import YOUNG_THRESHOLD, settle_heap


class _Node:
    """A cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # (the rest of the test session runs as before)
    gc.set_threshold(*threshold)


def test_what_start_up_made_is_frozen_and_what_comes_after_is_collected() -> None:
    before = gc.get_freeze_count()
    frozen = settle_heap()
    assert frozen > before
    # The geocoder's table of ~575,000 prefixes is no longer in any generation a collection
    # walks.
    assert not any(o is phonenumbers.geocoder.GEOCODE_DATA for o in gc.get_objects())
    # A cycle made afterwards is garbage like any other.
    ref = weakref.ref(_Node())
    assert ref() is not None
    gc.collect()
    assert ref() is None


def test_start_up_garbage_is_collected_not_frozen() -> None:
    leftover = weakref.ref(_Node())
    settle_heap()
    assert leftover() is None


def test_young_objects_get_room_to_die_young() -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    settle_heap()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert YOUNG_THRESHOLD > 700

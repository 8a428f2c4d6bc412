"""Once started, the service keeps what start-up made out of the garbage collector's scans
(a full collection walked phonenumbers' geocoder tables every time: 25-45 ms with the event
loop stopped), lets short-lived objects die young, and still collects what it makes
afterwards."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import phonenumbers.geocoder
import pytest

from puente.heap import (
    YOUNG_EVERY_S,
    YOUNG_THRESHOLD,
    CollectionPacer,
    _pacers,
    pacer_of,
    settle_heap,
    stop_pacing,
)


class _Node:
    """A cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    for loop in list(_pacers):
        stop_pacing(loop)
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


# --- the pacer: collections on the event loop's clock ----------------------------------------


async def test_the_pacer_collects_on_the_clock_whatever_the_count_says() -> None:
    # The threshold out of reach: only the pacer collects. A cycle made after a tick is freed
    # at the next one, and the older generations get their turns.
    gc.set_threshold(10**9, 10, 10)
    loop = asyncio.get_running_loop()
    pacer = CollectionPacer(loop, every_s=0.01, middle_every=2, full_every_s=0.05)
    try:
        ref = weakref.ref(_Node())
        for _ in range(200):
            await asyncio.sleep(0.005)
            if ref() is None and pacer.collections[2]:
                break
        assert ref() is None
        young, middle, full = pacer.collections
        assert young >= 1
        assert middle >= 1
        assert full >= 1
        assert middle <= young + full  # every other tick at most, and fulls apart
    finally:
        pacer.stop()
    made = list(pacer.collections)
    await asyncio.sleep(0.05)
    assert pacer.collections == made  # stopped
    assert not pacer.running


async def test_settle_heap_paces_the_running_loop_once_and_the_service_stops_it() -> None:
    loop = asyncio.get_running_loop()
    assert pacer_of(loop) is None
    settle_heap()
    pacer = pacer_of(loop)
    assert pacer is not None
    assert pacer.running
    assert pacer.every_s == YOUNG_EVERY_S
    settle_heap()  # again (a bench after the service, say): the same pacer
    assert pacer_of(loop) is pacer
    stop_pacing(loop)
    assert pacer_of(loop) is None
    assert not pacer.running


def test_outside_an_event_loop_nothing_is_paced() -> None:
    settle_heap()  # (a command's process: no loop, no ticks)
    assert not _pacers

"""How the service's process uses CPython's garbage collector, set once it has started.

A collection stops the event loop: a FastAGI command, an AudioSocket frame or a free agent's
Originate waits behind it. Three things made those pauses long:

- **What start-up made.** A full collection walks every tracked object, and a Puente process
  holds a great many that never change after start-up: module data, above all phonenumbers'
  geocoder tables (about 575,000 prefix entries, loaded with :mod:`compliance._zones`),
  compiled flows, settings. Walking them took 25-45 ms of each full collection on the CI
  machine kind. They are collected once, then frozen (:func:`gc.freeze`): later collections
  skip them.
- **How often objects reach the old generation.** With CPython's default young threshold
  (700 allocations), the objects of a call or an IVR session, which live for seconds, are
  promoted at once, and a full collection follows every few tens of seconds under load: 30-40
  ms for 1,000 IVR sessions' objects. A young threshold of 10,000 lets most of them die young
  (young collections were then about a millisecond in 20 s runs). Measured with ``puente bench
  ivr`` (1,000 sessions, alternated, three runs each): p99 per AGI command 3.7-4.2 ms and the worst
  11-21 ms, against 6.6-23 ms and 62-146 ms with the default.

- **How rarely the young generation is collected under a steady load.** A young collection
  walks every object made since the last one that is still alive, and the threshold counts
  allocations *net of frees*: when the old objects of ended calls die as fast as new ones are
  made, the count hardly moves, collections come seconds apart, and each one walks most of
  the live calls' objects. With 1,000 IVR sessions a young collection took 1-2 ms at first
  and 30-60 ms of CPU a minute later, and one of the middle generation 62-74 ms (``puente
  bench ivr --seconds 40``, timed by CPU). So the collector is also paced by the clock
  (:class:`CollectionPacer`): the young generation every 200 ms whatever the count says, so
  that it only ever holds the last 200 ms' survivors; the middle one every other time; the
  whole heap every two minutes (cyclic garbage waits at most that long). The threshold still
  collects a burst of allocations between two ticks. Measured the same way over 60 s: young
  collections 0.9 ms median and at most 4.2 ms, middle ones 3 ms median and at most 9.7 ms, a
  full one about 60 ms (every two minutes), for the same CPU in all (about 1 % of a core); the
  slowest AGI command 16 ms instead of 86-94 ms over a minute without a full collection.

:func:`settle_heap` runs once, when the service has started, inside its event loop, and starts
the pacer there. The benchmarks that stand in for the service call it at the same point, so
that they measure the process the service runs.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

#: Allocations (net of frees) between two young collections: CPython's default is 700.
YOUNG_THRESHOLD = 10_000
#: The young generation is collected this often on the clock (seconds)...
YOUNG_EVERY_S = 0.2
#: ...the middle generation every this many times (CPython's own ratio, 10, let it hold the
#: survivors of 2 s: 7 ms median and up to 24 ms a collection with 1,000 IVR sessions; every
#: other time, 3 ms and up to 10 ms, for the same CPU in all)...
MIDDLE_EVERY = 2
#: ...and the whole heap this often (about 60 ms with 1,000 IVR sessions' objects).
FULL_EVERY_S = 120.0


class CollectionPacer:
    """Collects on the event loop's clock: the young generation every ``every_s``, the middle
    one every ``middle_every`` times, the whole heap every ``full_every_s``. :meth:`stop` ends
    it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        every_s: float = YOUNG_EVERY_S,
        middle_every: int = MIDDLE_EVERY,
        full_every_s: float = FULL_EVERY_S,
    ) -> None:
        self.loop = loop
        self.every_s = every_s
        self.middle_every = middle_every
        self.full_every_s = full_every_s
        #: Collections made, by generation.
        self.collections = [0, 0, 0]
        self._last_full = time.monotonic()
        self._handle: asyncio.TimerHandle | None = loop.call_later(every_s, self._tick)

    @property
    def running(self) -> bool:
        return self._handle is not None

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_full >= self.full_every_s:
            generation = 2
            self._last_full = now
        else:
            generation = 1 if gc.get_count()[1] >= self.middle_every else 0
        gc.collect(generation)
        self.collections[generation] += 1
        self._handle = self.loop.call_later(self.every_s, self._tick)


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CollectionPacer] = (
    weakref.WeakKeyDictionary()
)


def settle_heap() -> int:
    """Collect start-up's garbage, freeze what is alive and set the young generation's
    threshold; inside a running event loop, also pace the collector on its clock (one pacer
    per loop: calling it again keeps it). Returns how many objects are frozen in all (calling
    it again adds what was made since)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        pacer = _pacers.get(loop)
        if pacer is None or not pacer.running:
            _pacers[loop] = CollectionPacer(loop)
    return gc.get_freeze_count()


def pacer_of(loop: asyncio.AbstractEventLoop) -> CollectionPacer | None:
    """The pacer :func:`settle_heap` started in ``loop``, if any."""
    return _pacers.get(loop)


def stop_pacing(loop: asyncio.AbstractEventLoop) -> None:
    """Stop the pacer of ``loop`` (the service's shutdown); the threshold goes on alone."""
    pacer = _pacers.pop(loop, None)
    if pacer is not None:
        pacer.stop()

"""How the service's process uses CPython's garbage collector, set once it has started.

A collection stops the event loop: a FastAGI command, an AudioSocket frame or a free agent's
Originate waits behind it. Two things made those pauses long:

- **What start-up made.** A full collection walks every tracked object, and a Puente process
  holds a great many that never change after start-up: module data, above all phonenumbers'
  geocoder tables (about 575,000 prefix entries, loaded with :mod:`compliance._zones`),
  compiled flows, settings. Walking them took 25-45 ms of each full collection on the CI
  machine kind. They are collected once, then frozen (:func:`gc.freeze`): later collections
  skip them.
- **How often objects reach the old generation.** With CPython's default young threshold
  (700 allocations), the objects of a call or an IVR session, which live for seconds, are
  promoted at once, and a full collection follows every few tens of seconds under load: 30-40
  ms for 1,000 IVR sessions' objects. A young threshold of 10,000 lets most of them die young;
  the young collections stay around a millisecond. Measured with ``puente bench ivr``
  (1,000 sessions, alternated, three runs each): p99 per AGI command 3.7-4.2 ms and the worst
  11-21 ms, against 6.6-23 ms and 62-146 ms with the default.

:func:`settle_heap` runs once, when the service has started. The benchmarks that stand in for
the service call it at the same point, so that they measure the process the service runs.
"""

from __future__ import annotations

import gc

#: Allocations (net of frees) between two young collections: CPython's default is 700.
YOUNG_THRESHOLD = 10_000


def settle_heap() -> int:
    """Collect start-up's garbage, freeze what is alive and set the young generation's
    threshold; returns how many objects are frozen in all (calling it again adds what was
    made since)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return gc.get_freeze_count()

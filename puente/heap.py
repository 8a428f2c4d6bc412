"""What the process holds once it has started is kept out of the garbage collector's way.

CPython's full collection walks every tracked object. A Puente process holds a great many
that never change after start-up: module data, above all phonenumbers' geocoder tables (about
575,000 prefix entries, loaded with :mod:`compliance._zones`), compiled flows, settings.
Walking them took 25-45 ms of each full collection on the CI machine kind, and a full
collection runs every few seconds under load, with the event loop stopped: a FastAGI command
or a free agent's Originate waiting behind it.

:func:`freeze_startup_heap` runs once, when the service has started: it collects what
start-up left behind, then moves everything still alive to the permanent generation
(:func:`gc.freeze`), which later collections skip. Objects made afterwards (calls, sessions)
are collected as usual. The benchmarks that stand in for the service call it at the same
point, so that they measure the process the service runs.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect start-up's garbage, then freeze what is alive; returns how many objects are
    frozen in all (calling it again adds what was made since)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

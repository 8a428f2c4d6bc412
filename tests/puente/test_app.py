"""The composition root's shutdown: one grace period for the whole drain, and a second Ctrl-C
that cuts it short."""

from __future__ import annotations

import asyncio
import time

import pytest

from puente.app import drain


class _Slow:
    """A component whose drain takes ``drain_s`` (a call that is still talking)."""

    def __init__(self, name: str, drain_s: float, log: list[str]) -> None:
        self.name, self._drain_s, self._log = name, drain_s, log

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Not used here."""

    async def stop(self) -> None:
        self._log.append(f"stop {self.name}")
        await asyncio.sleep(self._drain_s)
        self._log.append(f"stopped {self.name}")

    async def abort(self) -> None:
        self._log.append(f"abort {self.name}")

    def status(self) -> str:
        return ""


async def test_the_grace_period_is_for_the_whole_drain_not_each_component() -> None:
    # Before: every component had node.shutdown_grace_s of its own, so Ctrl-C on a demo with
    # calls up took 20 s for the dialer, then up to 20 s more for AMD, and so on.
    log: list[str] = []
    components = [_Slow(f"c{i}", 10, log) for i in range(4)]
    t0 = time.monotonic()
    await drain(components, grace_s=0.3)
    assert time.monotonic() - t0 < 1.0
    assert log == ["stop c0", "abort c0", "abort c1", "abort c2", "abort c3"]


async def test_what_drains_in_time_is_stopped_not_aborted() -> None:
    log: list[str] = []
    await drain([_Slow("web", 0, log), _Slow("dialer", 0.05, log)], grace_s=5)
    assert log == ["stop web", "stopped web", "stop dialer", "stopped dialer"]


async def test_a_second_ctrl_c_cuts_the_drain_short() -> None:
    log: list[str] = []
    hurry = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, hurry.set)
    t0 = time.monotonic()
    await drain([_Slow("dialer", 30, log), _Slow("ami", 30, log)], grace_s=20, hurry=hurry)
    assert time.monotonic() - t0 < 1.0
    assert log == ["stop dialer", "abort dialer", "abort ami"]


async def test_a_component_whose_stop_fails_is_aborted_and_the_rest_still_drain() -> None:
    log: list[str] = []

    class _Broken(_Slow):
        async def stop(self) -> None:
            raise ConnectionResetError("gone")

    await drain([_Broken("ami", 0, log), _Slow("sim", 0, log)], grace_s=5)
    assert log == ["abort ami", "stop sim", "stopped sim"]


@pytest.mark.parametrize("grace_s", [0.0])
async def test_no_grace_aborts_everything_at_once(grace_s: float) -> None:
    log: list[str] = []
    await drain([_Slow("dialer", 30, log)], grace_s=grace_s)
    assert log == ["abort dialer"]

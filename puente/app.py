"""The composition root: settings, resources and one TaskGroup. Nothing else wires things together.

``run_service`` is behind ``puente run`` and ``puente demo``. Start order: settings (fail fast),
database (embedded or ``PUENTE_DATABASE_URL``, migrated), pool, then the protocol servers and
clients in one TaskGroup. Shutdown is an ordered drain: stop accepting new work, let live calls
finish under ``node.shutdown_grace_s``, cancel the rest, close the pool, stop the embedded
database if we started it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

from db import DatabaseSettings, create_pool
from db.local import DEFAULT_DIR as DEFAULT_PG_DIR
from dialer.demo import DemoClock
from puente.database import database_url
from puente.heap import settle_heap, stop_pacing
from puente.settings import NodeSettings, SettingsError, load, read_config
from puente.wiring import (
    Component,
    ComponentSettings,
    build_components,
    load_component_settings,
)

log = logging.getLogger("puente.app")

_T = TypeVar("_T")


@dataclass(frozen=True)
class AppSettings:
    node: NodeSettings
    database: DatabaseSettings
    components: ComponentSettings


def load_settings(config_path: Path | None, *, demo: bool) -> AppSettings:
    """Every section, loaded and validated before anything starts (the embedded PostgreSQL,
    a migration): bad values stop the process with one message naming every one of them."""
    problems: list[str] = []
    config = read_config(config_path, problems)
    file_values = config.sections

    def collect(load_section: Callable[[], _T]) -> _T | None:
        try:
            return load_section()
        except SettingsError as e:
            problems.extend(e.problems)
            return None

    components = collect(  # (unknown sections too)
        lambda: load_component_settings(file_values, demo=demo, origin=config)
    )
    node = collect(
        lambda: load(NodeSettings, "node", file_values=file_values.get("node"), origin=config)
    )
    database = collect(
        lambda: load(
            DatabaseSettings,
            "database",
            file_values=file_values.get("database"),
            extra_env={"url": "PUENTE_DATABASE_URL"},
            origin=config,
        )
    )
    if problems:
        raise SettingsError(*problems)
    assert components is not None and node is not None  # noqa: PT018
    assert database is not None
    if demo and database.url:
        log.info("demo: using PUENTE_DATABASE_URL instead of the embedded PostgreSQL")
    return AppSettings(node=node, database=database, components=components)


def _address(component: Component) -> str:
    """``host:port`` a component listens on, from its settings ("" when it has none)."""
    for holder in (component, getattr(component, "server", None), getattr(component, "_web", None)):
        s = getattr(holder, "settings", None)
        if s is not None and hasattr(s, "host") and hasattr(s, "port"):
            return f" on {s.host}:{s.port}"
    return ""


#: The settings section of each component that listens (``fastagi`` is section ``agi``).
_LISTENER_SECTIONS = {"web": "web", "fastagi": "agi", "audiosocket": "audiosocket"}


def _settings_hint(component: Component, error: OSError) -> str:
    """Which setting moves a listener whose port is taken (another Puente, demo or not?)."""
    section = _LISTENER_SECTIONS.get(component.name)
    if section is None or error.errno != errno.EADDRINUSE:
        return ""
    return (
        f" (another puente running? set PUENTE_{section.upper()}_PORT, or {section}.port"
        " in the config file)"
    )


def _install_signal_handlers(stop: asyncio.Event, hurry: asyncio.Event) -> None:
    """The first SIGINT (Ctrl-C) or SIGTERM starts the ordered drain; another one while it
    runs cuts it short (what is still live is cancelled at once)."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)


async def drain(
    components: list[Component],
    grace_s: float,
    hurry: asyncio.Event | None = None,
    *,
    abort_timeout_s: float = 5.0,
) -> None:
    """Stop ``components`` one by one, in the order given: each stops accepting, then drains,
    all within one deadline of ``grace_s`` in total (not ``grace_s`` each). At the deadline, or
    as soon as ``hurry`` is set (a second Ctrl-C), whatever has not drained is aborted: the
    process ends within ``grace_s`` plus a few seconds, whatever is live."""
    hurry = hurry or asyncio.Event()
    deadline = time.monotonic() + grace_s
    for c in components:
        left = deadline - time.monotonic()
        if left > 0 and not hurry.is_set():
            stopping = asyncio.ensure_future(c.stop())
            hurried = asyncio.ensure_future(hurry.wait())
            try:
                done, _ = await asyncio.wait(
                    {stopping, hurried}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                hurried.cancel()
            error = stopping.exception() if stopping in done else None
            if stopping in done and error is None:
                continue
            if stopping in done:
                log.warning("%s: stop failed (%r); cancelling the rest", c.name, error)
            else:
                stopping.cancel()
                await asyncio.wait({stopping}, timeout=abort_timeout_s)  # (never raises)
                why = "stop asked again" if hurry.is_set() else "did not drain in time"
                log.warning("%s %s; cancelling the rest", c.name, why)
        try:
            async with asyncio.timeout(abort_timeout_s):
                await c.abort()
        except TimeoutError:
            log.warning("%s: not cancelled within %.0f s; leaving it", c.name, abort_timeout_s)


class _Screen:
    """Where the demo's summary goes. Piped: appended, block after block. On a terminal: redrawn
    in place, one screen (the log goes to a file meanwhile, see :func:`_log_to_file`), with the
    latest warnings under it."""

    def __init__(self, out: TextIO, *, live: bool, log_path: Path | None = None) -> None:
        self._out = out
        self.live = live
        self.log_path = log_path
        self.warnings: collections.deque[str] = collections.deque(maxlen=3)
        self._rows = 0  # terminal rows of the summary on screen (to go back over)

    def show(self, lines: list[str]) -> None:
        if not self.live:
            print("\n".join(lines), file=self._out, flush=True)
            return
        cols = max(20, shutil.get_terminal_size().columns)
        lines = "\n".join(lines).split("\n")  # (a status may hold several lines)
        if self.log_path is not None:
            lines = [*lines, f"  log          {self.log_path}"]
        lines += [f"  ! {w}"[:cols] for w in self.warnings]
        # Up to the summary's first row, clear to the end of the screen, draw again.
        up = f"\x1b[{self._rows}F\x1b[J" if self._rows else ""
        self._out.write(up + "\n".join(lines) + "\n")
        self._out.flush()
        self._rows = sum(max(1, -(-len(line) // cols)) for line in lines)


class _KeepWarnings(logging.Handler):
    def __init__(self, screen: _Screen) -> None:
        super().__init__(logging.WARNING)
        self._screen = screen
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self._screen.warnings.append(self.format(record).splitlines()[0])


@contextlib.contextmanager
def _log_to_file(path: Path, screen: _Screen) -> Iterator[None]:
    """The root logger writes to ``path`` instead of the terminal (so that the summary stays on
    one screen), and keeps its warnings for the screen; as it was again on the way out."""
    root = logging.getLogger()
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    before = root.handlers[:]
    root.handlers = [to_file, _KeepWarnings(screen)]
    try:
        yield
    finally:
        root.handlers = before
        to_file.close()


async def _report(
    components: list[Component],
    stop: asyncio.Event,
    drained: asyncio.Event,
    every_s: float,
    clock: DemoClock,
    screen: _Screen,
    grace_s: float,
) -> None:
    """The demo's one-screen summary, refreshed while running, and while draining (every
    second then, saying so) until ``drained``."""
    t0 = time.monotonic()
    stopping_since: float | None = None
    while not drained.is_set():
        wake = drained if stop.is_set() else stop
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0 if stop.is_set() else every_s):
                await wake.wait()
        now = time.monotonic()
        lines = [f"puente up {now - t0:6.0f} s  {clock.describe()}"]
        lines += [f"  {c.name:<12} {c.status()}".rstrip() for c in components]
        if stop.is_set() and not drained.is_set():
            stopping_since = stopping_since or now
            left = max(0.0, grace_s - (now - stopping_since))
            lines.append(
                f"stopping: live calls get {left:.0f} s more to end (Ctrl-C again to stop at once)"
            )
        screen.show(lines)


def _on_a_terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def _demo_log_path(embedded_dir: Path | None) -> Path:
    """``.puente/demo.log``: beside the embedded PostgreSQL's directory (``PUENTE_PG_DIR``)."""
    pg_dir = embedded_dir or Path(os.environ.get("PUENTE_PG_DIR") or DEFAULT_PG_DIR)
    return pg_dir.absolute().parent / "demo.log"


async def run_service(
    *,
    config_path: Path | None,
    demo: bool,
    duration_s: float | None = None,
    log_level: str | None = None,
) -> int:
    """``log_level`` (``puente --log-level``), when given, wins over ``node.log_level``."""
    settings = load_settings(config_path, demo=demo)
    logging.getLogger().setLevel((log_level or settings.node.log_level).upper())
    stop, hurry = asyncio.Event(), asyncio.Event()
    _install_signal_handlers(stop, hurry)
    embedded_dir = Path(settings.database.embedded_dir) if settings.database.embedded_dir else None
    async with database_url(
        settings.database.url or None, embedded_dir=embedded_dir, durable=not demo
    ) as url:
        pool = await create_pool(url, settings.database)
        # The demo runs on the next calling hours when started outside them (dialer/demo.py).
        clock = DemoClock.starting(datetime.now(UTC)) if demo else None
        if clock is not None:
            log.info("%s", clock.describe())
        started: list[Component] = []
        start_error: str | None = None
        drained = asyncio.Event()
        quiet_terminal = contextlib.ExitStack()
        try:
            components = build_components(
                settings.components, pool=pool, demo=demo,
                node="demo" if demo else settings.node.name, clock=clock,
            )  # fmt: skip
            async with asyncio.TaskGroup() as tg:
                for c in components:
                    if stop.is_set():  # Ctrl-C while starting: start nothing more
                        break
                    try:
                        await c.start(tg)
                    except OSError as e:  # the port is taken, the host does not resolve...
                        reason = e.strerror or str(e) or e.__class__.__name__
                        start_error = f"{c.name}: cannot start{_address(c)}: {reason}"
                        start_error += _settings_hint(c, e)
                        stop.set()  # drain what did start, then say why (below)
                        break
                    started.append(c)
                    log.info("%s started: %s", c.name, c.status())
                grace_s = settings.node.shutdown_grace_s
                if start_error is None:  # the collector's pauses kept short (puente/heap.py)
                    frozen = settle_heap()
                    log.info("heap settled: %d start-up objects frozen", frozen)
                if clock is not None and start_error is None:
                    screen = _Screen(sys.stdout, live=_on_a_terminal())
                    if screen.live:  # the summary on one screen, the log in a file
                        screen.log_path = _demo_log_path(embedded_dir)
                        quiet_terminal.enter_context(_log_to_file(screen.log_path, screen))
                    tg.create_task(_report(components, stop, drained, 5.0, clock, screen, grace_s))
                if duration_s is not None:
                    tg.create_task(_stop_after(stop, duration_s))
                await stop.wait()
                log.info(
                    "shutting down: live calls get up to %.0f s to end"
                    " (Ctrl-C again to stop at once)",
                    grace_s,
                )
                # Ordered drain, in reverse start order: each stops accepting, then drains.
                await drain(list(reversed(started)), grace_s, hurry)
                drained.set()
        finally:
            stop_pacing(asyncio.get_running_loop())
            quiet_terminal.close()
            async with asyncio.timeout(10):
                await pool.close()
    if start_error is not None:
        raise SettingsError(start_error)
    log.info("stopped")
    return 0


async def _stop_after(stop: asyncio.Event, duration_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration_s):
            await stop.wait()
    stop.set()

"""The composition root: settings, resources and one TaskGroup. Nothing else wires things together.

``run_service`` is behind ``puente run`` and ``puente demo``. Start order: settings (fail fast),
database (embedded or ``PUENTE_DATABASE_URL``, migrated), pool, then the protocol servers and
clients in one TaskGroup. Shutdown is an ordered drain: stop accepting new work, let live calls
finish under ``node.shutdown_grace_s``, cancel the rest, close the pool, stop the embedded
database if we started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from db import DatabaseSettings, create_pool
from dialer.demo import DemoClock
from puente.database import database_url
from puente.settings import NodeSettings, SettingsError, load, read_config_file
from puente.wiring import (
    Component,
    ComponentSettings,
    build_components,
    load_component_settings,
)

log = logging.getLogger("puente.app")


@dataclass(frozen=True)
class AppSettings:
    node: NodeSettings
    database: DatabaseSettings
    components: ComponentSettings


def load_settings(config_path: Path | None, *, demo: bool) -> AppSettings:
    """Every section, loaded and validated before anything starts (the embedded PostgreSQL,
    a migration): a bad value stops the process with a message naming it."""
    file_values = read_config_file(config_path)
    components = load_component_settings(file_values, demo=demo)  # (unknown sections too)
    node = load(NodeSettings, "node", file_values=file_values.get("node"))
    database = load(
        DatabaseSettings,
        "database",
        file_values=file_values.get("database"),
        extra_env={"url": "PUENTE_DATABASE_URL"},
    )
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


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _report(
    components: list[Component], stop: asyncio.Event, every_s: float, clock: DemoClock
) -> None:
    """The demo's one-screen summary, refreshed while running."""
    t0 = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await stop.wait()
        lines = [f"puente up {time.monotonic() - t0:6.0f} s  {clock.describe()}"]
        lines += [f"  {c.name:<12} {c.status()}" for c in components]
        print("\n".join(lines), flush=True)


async def run_service(
    *, config_path: Path | None, demo: bool, duration_s: float | None = None
) -> int:
    settings = load_settings(config_path, demo=demo)
    logging.getLogger().setLevel(settings.node.log_level.upper())
    stop = asyncio.Event()
    _install_signal_handlers(stop)
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
        try:
            components = build_components(
                settings.components, pool=pool, demo=demo,
                node="demo" if demo else settings.node.name, clock=clock,
            )  # fmt: skip
            async with asyncio.TaskGroup() as tg:
                for c in components:
                    try:
                        await c.start(tg)
                    except OSError as e:  # the port is taken, the host does not resolve...
                        reason = e.strerror or str(e) or e.__class__.__name__
                        start_error = f"{c.name}: cannot start{_address(c)}: {reason}"
                        stop.set()  # drain what did start, then say why (below)
                        break
                    started.append(c)
                    log.info("%s started: %s", c.name, c.status())
                if clock is not None and start_error is None:
                    tg.create_task(_report(components, stop, every_s=5.0, clock=clock))
                if duration_s is not None:
                    tg.create_task(_stop_after(stop, duration_s))
                await stop.wait()
                log.info("shutting down (grace %.0f s)", settings.node.shutdown_grace_s)
                # Ordered drain, in reverse start order: each stops accepting, then drains.
                for c in reversed(started):
                    try:
                        async with asyncio.timeout(settings.node.shutdown_grace_s):
                            await c.stop()
                    except TimeoutError:
                        log.warning("%s did not drain in time; cancelling the rest", c.name)
                        await c.abort()
        finally:
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

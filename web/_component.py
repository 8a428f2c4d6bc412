"""The web server as a service component (see ``puente.wiring.Component``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

import asyncpg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from compliance import ComplianceGate
from web._app import AccessLogger, Extension, create_app
from web._housekeeping import SWEEP_EVERY_S, sweep
from web._keys import CLOCK, STATS
from web._settings import WebSettings

log = logging.getLogger(__name__)


class _CondenseBadRequests(logging.Filter):
    """A request aiohttp could not parse (a 9 KB header, 300 headers, not HTTP at all) is the
    client's fault and already answered 400: one INFO line naming the error, not an ERROR with
    a traceback (anyone could fill the log with those). The line never quotes the request:
    its bytes may carry a cookie or a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg = "bad HTTP request from %s: %s (%s)"
            record.args = (peer, exc.__class__.__name__, exc.code)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


# aiohttp's server log (what it cannot hand to the application), with bad requests condensed.
SERVER_LOG = logging.getLogger("puente.web.server")
SERVER_LOG.addFilter(_CondenseBadRequests())


class WebComponent:
    """The HTTP API and pages on ``settings.host:settings.port`` (port 0: any free port).

    ``stop`` stops accepting connections and gives open requests ``shutdown_timeout_s`` to
    finish (aiohttp's documented shutdown: websockets get their close from the extensions'
    ``on_shutdown`` hooks); ``abort`` gives them no time.
    """

    name = "web"

    def __init__(
        self,
        settings: WebSettings,
        pool: asyncpg.Pool,
        *,
        gate: ComplianceGate | None = None,
        extensions: Iterable[Extension] = (),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(pool, settings, gate=gate, extensions=extensions, clock=clock)
        self._pool = pool
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self, tg: asyncio.TaskGroup) -> None:
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log_class=AccessLogger,
            access_log=logging.getLogger("puente.web.access"),
            logger=SERVER_LOG,
            shutdown_timeout=self.settings.shutdown_timeout_s,
        )
        await runner.setup()
        started = False
        try:
            site = web.TCPSite(runner, self.settings.host, self.settings.port)
            await site.start()
            started = True
        finally:
            if not started:  # the port is taken, or we were cancelled: release what we hold
                await runner.cleanup()
        self._runner = runner
        addresses = runner.addresses
        self.port = addresses[0][1] if addresses else self.settings.port
        log.info("web: listening on http://%s:%s", self.settings.host, self.port)
        self._sweeper = tg.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            try:
                async with asyncio.timeout(30):
                    sessions, imports = await sweep(self._pool, self.app[CLOCK]())
                if sessions or imports:
                    log.info("web: deleted %d old sessions, %d old import reports",
                             sessions, imports)  # fmt: skip
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("web: housekeeping failed: %s", e.__class__.__name__)
            await asyncio.sleep(SWEEP_EVERY_S)

    def _stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def stop(self) -> None:
        self._stop_sweeping()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def abort(self) -> None:
        self._stop_sweeping()
        runner, self._runner = self._runner, None
        if runner is not None:
            # No grace left: open requests are cancelled now (aiohttp reads the runner's
            # shutdown timeout at cleanup; there is no public setter).
            runner._shutdown_timeout = 0.01
            await runner.cleanup()

    def status(self) -> str:
        if self._runner is None:
            return "not listening"
        s = self.app[STATS]
        return (
            f"http://{self.settings.host}:{self.port}  requests {s.requests}"
            f"  4xx {s.client_errors}  5xx {s.server_errors}"
            f"  logins {s.logins} (failed {s.login_failures}, refused {s.login_refused})"
            f"  imports loading {s.imports_loading} (refused {s.imports_refused})"
        )

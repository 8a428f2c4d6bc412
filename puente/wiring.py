"""Part of the composition root: builds the service's components from settings.

A component is something with a lifetime inside the service's TaskGroup: a protocol server, an
AMI client, later the dialer and the web server. Each gets its settings here and nowhere else.

Until the AMD and IVR issues land, the protocol servers run with safe placeholder handlers:
an AudioSocket call is handed straight back to the dialplan (``AMDSTATUS`` stays ``NOTSURE``,
so the call goes to an agent: never dropped on a guess), and a FastAGI session for a flow
that does not exist yet is closed at once (the dialplan goes on), with a warning naming it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import asyncpg

from pbx.agi import AgiServer, AgiSettings
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from puente.settings import SettingsError, load

log = logging.getLogger("puente.wiring")


class Component(Protocol):
    name: str

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Start serving; long-running work goes into ``tg``."""

    async def stop(self) -> None:
        """Stop accepting new work and drain what is live (called under a deadline)."""

    async def abort(self) -> None:
        """Cancel whatever is still live."""

    def status(self) -> str:
        """One line for the demo summary and the logs."""


class AgiComponent:
    name = "fastagi"

    def __init__(self, settings: AgiSettings) -> None:
        self.server = AgiServer(routes={}, settings=settings)

    async def start(self, tg: asyncio.TaskGroup) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def abort(self) -> None:
        await self.server.abort()

    def status(self) -> str:
        s = self.server
        where = f"{s.settings.host}:{s.port}" if s._port is not None else "not listening"
        return (
            f"{where}  sessions {len(s.sessions)} live, {s.sessions_total} total"
            f"  commands {s.commands_total}  errors {s.errors_total + s.timeouts_total}"
        )


async def _hand_back(call: AudioSocketCall) -> None:
    """No detector yet: return the call to the dialplan at once (AMDSTATUS stays NOTSURE)."""
    await call.hangup()


class AudioSocketComponent:
    name = "audiosocket"

    def __init__(self, settings: AudioSocketSettings) -> None:
        self.server = AudioSocketServer(_hand_back, settings)

    async def start(self, tg: asyncio.TaskGroup) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def abort(self) -> None:
        await self.server.abort()

    def status(self) -> str:
        s = self.server
        listening = s.listening
        where = f"{s.settings.host}:{s.port}" if listening else "not listening"
        return f"{where}  calls {len(s.calls)} live, {s.calls_total} total  errors {s.errors_total}"


class AmiComponent:
    name = "ami"

    def __init__(self, settings: AmiSettings) -> None:
        self.client = AmiClient(settings)

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self.client.start()  # connects (and reconnects) in the background

    async def stop(self) -> None:
        await self.client.close()

    async def abort(self) -> None:
        await self.client.close()

    def status(self) -> str:
        c = self.client
        state = "connected" if c.connected else "connecting"
        return f"{c.peer} {state}  events {c.events_total}  reconnects {c.disconnects_total}"


def build_components(
    file_values: dict[str, dict[str, Any]], *, pool: asyncpg.Pool, demo: bool
) -> list[Component]:
    """The service's components, in start order."""
    ami_file = dict(file_values.get("ami") or {})
    if demo:
        # The demo has no PBX to log in to until the simulator is wired in; a config file or
        # PUENTE_AMI_ENABLED=true still turns the client on.
        ami_file.setdefault("enabled", False)
    ami = load(AmiSettings, "ami", file_values=ami_file)
    agi = load(AgiSettings, "agi", file_values=file_values.get("agi"))
    audiosocket = load(
        AudioSocketSettings, "audiosocket", file_values=file_values.get("audiosocket")
    )
    unknown = set(file_values) - {"node", "database", "ami", "agi", "audiosocket"}
    if unknown:
        raise SettingsError(f"config file: unknown sections {sorted(unknown)}")
    components: list[Component] = [AudioSocketComponent(audiosocket), AgiComponent(agi)]
    if ami.enabled:
        components.append(AmiComponent(ami))
    else:
        log.info("AMI client disabled (ami.enabled = false)")
    return components

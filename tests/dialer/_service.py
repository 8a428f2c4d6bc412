"""``puente run`` as a user runs it, against simulated Asterisks living in the test process
(they outlive every kill of the service), for recovery and multi-node tests."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import msgspec

from pbx.sim import (
    CalleeModel,
    ModelFile,
    SimServerSettings,
    SimSettings,
    SimulatedAsterisk,
)
from pbx.sim import build as build_sim

#: The simulated queue's wrapuptime; campaigns on it say the same (``queue_wrapup_s``).
SIM_WRAPUP_S = 0.5
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The ledger outcome each final disposition records (none: the attempt keeps counting).
LEDGER = {
    "busy": "busy",
    "unallocated": "not_in_service",
    "no_answer": "no_answer",
    "rejected": "no_answer",
    "unreachable": "no_answer",
    "congestion": "network_failure",
    "failed": "not_placed",
    "machine": "machine",
    "voicemail": "voicemail",
    "abandoned": "abandoned",
    "intercept": "not_in_service",  # answered by a SIT saying not in service
    "fax": "machine",
    "sit_other": "no_answer",
    "agent": "conversation",  # (an agent took it: the cooldowns after a conversation start)
}


def write_test_pack(directory: Path, extra_rules: str = "") -> None:
    """A pack ``anytime`` that allows every hour (the tests must not depend on when they run),
    plus ``extra_rules`` (YAML list items, indented two spaces)."""
    directory.mkdir(exist_ok=True)
    hours = "\n".join(f'      {d}: ["00:00-24:00"]' for d in DAYS)
    (directory / "anytime.yaml").write_text(
        'pack: anytime\ntitle: "Test pack: calls at any hour"\njurisdiction: MX\nrules:\n'
        '  - id: anytime_hours\n    kind: calling_window\n    summary: "any hour"\n'
        f'    citation: "test"\n    hours:\n{hours}\n{extra_rules}',
        encoding="utf-8",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Pbx:
    """A simulated Asterisk and the node ports its dialplan points at."""

    sim: SimulatedAsterisk
    audio_port: int
    agi_port: int
    originated: list[str] = field(default_factory=list)  # every Originate's ChannelId

    @property
    def live_channels(self) -> int:
        return sum(1 for c in self.sim.core.channels.values() if not c.gone)


async def start_pbx(model: dict, agents: int, queue: str = "collections") -> Pbx:
    audio_port, agi_port = free_port(), free_port()
    sim = build_sim(
        SimServerSettings(
            ami_port=0, secret="x", audiosocket=f"127.0.0.1:{audio_port}",
            agi=f"127.0.0.1:{agi_port}",
        ),
        model=CalleeModel(msgspec.convert(model, ModelFile)),
        settings=SimSettings(agent_ring_s=0.2, playback_s=0.2, machine_linger_s=0.5),
        agents=agents, queue=queue, wrapup_s=SIM_WRAPUP_S,
    )  # fmt: skip
    pbx = Pbx(sim, audio_port, agi_port)
    core = sim.core
    real = core.originate

    def recording(conn, fields, variables, now):  # the simulator's own record
        pbx.originated.append(fields.get("channelid", ""))
        return real(conn, fields, variables, now)

    core.originate = recording  # type: ignore[method-assign]
    await sim.start()
    return pbx


def service_env(database_url: str, pbx: Pbx, *, node: str, pbx_name: str, packs: Path) -> dict:
    env = {
        **os.environ,
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_AMI_PORT": str(pbx.sim.ami_port),
        "PUENTE_AMI_SECRET": "x",
        "PUENTE_AGI_PORT": str(pbx.agi_port),
        "PUENTE_AUDIOSOCKET_PORT": str(pbx.audio_port),
        "PUENTE_WEB_PORT": "0",
        "PUENTE_NODE_NAME": node,
        "PUENTE_NODE_SHUTDOWN_GRACE_S": "10",
        "PUENTE_DIALER_PBX": pbx_name,
        "PUENTE_DIALER_TICK_S": "0.2",
        "PUENTE_DIALER_REFRESH_S": "0.5",
        "PUENTE_COMPLIANCE_PACK_DIR": str(packs),
    }
    env.pop("PUENTE_CONFIG", None)
    return env


async def start_service(env: dict, log: Path) -> asyncio.subprocess.Process:
    """``python -m puente run``; its log goes to a file (a pipe nobody reads would fill)."""
    with log.open("ab") as f:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "puente", "run", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=f,
        )  # fmt: skip


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - polling the database and simulators
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def settled(pool: asyncpg.Pool, campaign_id: int, pbxs: list[Pbx]) -> bool:
    """Every attempt of the campaign final, and no channel left on any simulator."""
    open_ = await pool.fetchval(
        "SELECT count(*) FROM call_attempts WHERE campaign_id = $1 AND state <> 'final'",
        campaign_id,
    )
    return open_ == 0 and all(p.live_channels == 0 for p in pbxs)

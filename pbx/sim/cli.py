"""``puente sim``: run the simulated Asterisk (AMI server, AudioSocket and FastAGI legs).

It runs the dialplan of ``asterisk_conf/extensions.conf`` (or ``--dialplan``) with a callee
model (``--model FILE``, YAML; the collections defaults without one) and, with ``--agents N``,
N simulated agents logged in to ``--queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
from pathlib import Path
from typing import Any

import msgspec

from pbx._exceptions import PbxError
from pbx.sim._callees import DEFAULT_MODEL, CalleeModel
from pbx.sim._core import SimCore, SimSettings
from pbx.sim._dialplan import load_dialplan
from pbx.sim._server import SimServerSettings, SimulatedAsterisk

log = logging.getLogger(__name__)

DEFAULT_DIALPLAN = Path(__file__).resolve().parents[2] / "asterisk_conf" / "extensions.conf"


def build(
    server: SimServerSettings,
    *,
    dialplan: Path = DEFAULT_DIALPLAN,
    model: Path | CalleeModel | None = None,
    seed: int | None = None,
    settings: SimSettings | None = None,
    agents: int = 0,
    queue: str = "collections",
    wrapup_s: float = 0,
) -> SimulatedAsterisk:
    """A simulator ready to start; :class:`PbxError` names a bad file or value.

    ``model``: a callee model file, or a model already built (tests); ``settings``: the
    simulator's timings and trunk capacity.
    """
    if not dialplan.is_file():
        raise PbxError(f"dialplan {dialplan} not found (run from a checkout or pass --dialplan)")
    plan = load_dialplan(dialplan)
    if isinstance(model, CalleeModel):
        callees = model
    else:
        callees = CalleeModel.from_file(model) if model is not None else DEFAULT_MODEL
    if seed is not None:
        callees = CalleeModel(msgspec.structs.replace(callees.spec, seed=seed), callees.source)
    core = SimCore(plan, callees, settings or SimSettings())
    # The queue's wrap-up, as queues.conf sets it; the members have none of their own (as
    # when the agent desktop adds them with QueueAdd).
    core.queue(queue).wrapuptime = wrapup_s
    for i in range(agents):
        core.add_member(queue, f"Local/{100 + i}@agents", f"Sim Agent {100 + i}", 0.0)
    return SimulatedAsterisk(core, server)


async def _serve(sim: SimulatedAsterisk, duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"simulated Asterisk: AMI on {sim.settings.host}:{sim.ami_port}", flush=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()


def _host_port(option: str, value: str | None) -> None:
    if value is None:
        return
    host, _, port = value.rpartition(":")
    ok = port.isascii() and port.isdigit() and len(port) <= 5
    if not host or not ok or not 0 < int(port) < 65536:
        raise PbxError(f"{option} {value!r}: expected HOST:PORT with a port in 1-65535")


def _check_args(args: argparse.Namespace) -> None:
    """Bad values are named before anything starts (no traceback, no half-started server)."""
    if not 0 <= args.ami_port < 65536:
        raise PbxError(f"--ami-port {args.ami_port}: expected 0-65535 (0: any free port)")
    _host_port("--audiosocket", args.audiosocket)
    _host_port("--agi", args.agi)
    if args.trunk_capacity < 1:
        raise PbxError(f"--trunk-capacity {args.trunk_capacity}: expected at least 1")
    if args.agents < 0:
        raise PbxError(f"--agents {args.agents}: expected 0 or more")
    if args.wrapup_s < 0:
        raise PbxError(f"--wrapup-s {args.wrapup_s}: expected 0 or more seconds")
    if args.duration_s is not None and not (math.isfinite(args.duration_s) and args.duration_s > 0):
        raise PbxError(f"--duration-s {args.duration_s}: expected a number of seconds > 0")
    if not args.queue or any(c in args.queue for c in "\r\n,"):
        raise PbxError(f"--queue {args.queue!r}: expected a queue name")


def _cmd_sim(args: argparse.Namespace) -> int:
    _check_args(args)
    server = SimServerSettings(
        host=args.host,
        ami_port=args.ami_port,
        username=args.username,
        secret=args.secret,
        audiosocket=args.audiosocket,
        agi=args.agi,
        agi_keys=tuple(args.agi_keys.split(",")) if args.agi_keys else (),
        audiosocket_silence_frames=not args.no_silence_frames,
    )
    sim = build(
        server,
        dialplan=args.dialplan,
        model=args.model,
        seed=args.seed,
        settings=SimSettings(trunk_capacity=args.trunk_capacity),
        agents=args.agents,
        queue=args.queue,
        wrapup_s=args.wrapup_s,
    )
    try:
        asyncio.run(_serve(sim, args.duration_s))
    except OSError as e:  # the port is taken, the host is not ours or does not resolve
        raise PbxError(f"cannot listen on {args.host}:{args.ami_port}: {e}") from None
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sim",
        help="run the simulated Asterisk (AMI, AudioSocket, FastAGI over TCP)",
        description=__doc__,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ami-port", type=int, default=5038, help="0: any free port")
    p.add_argument("--username", default="puente")
    p.add_argument("--secret", default="puente")
    p.add_argument("--audiosocket", help="HOST:PORT of Puente's AudioSocket server")
    p.add_argument("--agi", help="HOST:PORT of Puente's FastAGI server")
    p.add_argument("--agi-keys", help="keys the scripted IVR caller presses, comma-separated")
    p.add_argument("--model", type=Path, help="callee model (YAML)")
    p.add_argument("--seed", type=int, help="random seed of the callee model")
    p.add_argument("--trunk-capacity", type=int, default=1000)
    p.add_argument("--agents", type=int, default=0, help="simulated agents in --queue")
    p.add_argument("--queue", default="collections")
    p.add_argument(
        "--wrapup-s",
        type=int,
        default=0,
        help="the queue's wrapuptime (queues.conf): each agent's wrap-up after a call",
    )
    p.add_argument(
        "--no-silence-frames",
        action="store_true",
        help="AudioSocket legs send nothing while the callee is silent, as over a Local "
        "channel; app_audiosocket's 2 s rule then applies",
    )
    p.add_argument("--dialplan", type=Path, default=DEFAULT_DIALPLAN)
    p.add_argument("--duration-s", type=float, help="stop after this long")
    p.set_defaults(func=_cmd_sim)

"""Part of the composition root: builds the service's components from settings.

A component is something with a lifetime inside the service's TaskGroup: a protocol server, an
AMI client, later the dialer and the web server. Each gets its settings here and nowhere else.

The demo adds the simulated Asterisk (``pbx.sim``) as its PBX, on loopback, wired to this
node's AudioSocket and FastAGI servers, and points the AMI client at it.

An AudioSocket call goes through answering-machine detection (:class:`dialer.amd.LiveAmd`,
section ``[amd]``), which sets ``AMDSTATUS`` over AMI; with AMD disabled, or no AMI client, it is
handed straight back to the dialplan (``AMDSTATUS`` stays ``NOTSURE``, so the call goes to an
agent: never dropped on a guess). Until the IVR issue lands, a FastAGI session for a flow that
does not exist yet is closed at once (the dialplan goes on), with a warning naming it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol, TypeVar

import asyncpg

from compliance import ComplianceGate, ComplianceSettings, PackError
from dialer.amd import AmdSettings, AmdSettingsError, LiveAmd, LiveAmdSettings
from dialer.campaigns import CAMPAIGN_SQL, Campaign, CampaignError, check_agentless_flow
from dialer.demo import AGENTS_PER_CAMPAIGN, ensure_demo_campaigns
from dialer.demo import CAMPAIGNS as DEMO_CAMPAIGNS
from dialer.demo import WRAPUP_S as DEMO_WRAPUP_S
from dialer.presence import Presence
from dialer.runner import CampaignRunner, GreetingEnds
from ivr import IvrError, IvrService, IvrSettings, build_ivr
from pbx.agi import AgiServer, AgiSettings
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketCall, AudioSocketServer, AudioSocketSettings
from pbx.sim import SimServerSettings, SimulatedAsterisk
from pbx.sim import build as build_sim
from puente import __version__
from puente.settings import ConfigFile, SettingsError, load
from web import WebComponent, WebSettings
from web._demo import demo_password, ensure_demo_users
from web._desktop import desktop_extension
from web._keys import IVR_SCRIPTS
from web._logged_out import LoggedOutSweeper
from web._metrics import (
    CampaignSnapshot,
    LinkSnapshot,
    MetricsSnapshot,
    PoolSnapshot,
    PuenteMetrics,
    refresh_every,
)
from web._wallboard import dial_level, runner_view

log = logging.getLogger("puente.wiring")

_S = TypeVar("_S")


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


class _ServerComponent:
    """A protocol server as a component: started, drained and aborted the same way."""

    server: AgiServer | AudioSocketServer

    async def start(self, tg: asyncio.TaskGroup) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def abort(self) -> None:
        await self.server.abort()

    def _where(self) -> str:
        s = self.server
        return f"{s.settings.host}:{s.port}" if s.listening else "not listening"


class AgiComponent(_ServerComponent):
    name = "fastagi"

    def __init__(self, settings: AgiSettings, ivr: IvrService | None = None) -> None:
        self.ivr = ivr
        self.server = AgiServer(routes=ivr.routes() if ivr else {}, settings=settings)
        self._settling: asyncio.Task[None] | None = None

    async def start(self, tg: asyncio.TaskGroup) -> None:
        if self.ivr is not None:  # before the first call: sessions a crash left open
            await self.ivr.start()
        await self.server.start()
        if self.ivr is not None:  # (once listening: a start that failed leaves no task behind)
            self._settling = tg.create_task(self.ivr.settle_payments())

    async def stop(self) -> None:
        self._stop_settling()
        await super().stop()

    async def abort(self) -> None:
        self._stop_settling()
        await super().abort()

    def _stop_settling(self) -> None:
        if self._settling is not None:
            self._settling.cancel()

    def status(self) -> str:
        s = self.server
        return (
            f"{self._where()}  sessions {len(s.sessions)} live, {s.sessions_total} total"
            f"  commands {s.commands_total}  errors {s.errors_total + s.timeouts_total}"
            + (f"  ivr outcomes {self.ivr.outcomes}" if self.ivr else "")
        )


async def _hand_back(call: AudioSocketCall) -> None:
    """No detector: return the call to the dialplan at once (AMDSTATUS stays NOTSURE)."""
    await call.hangup()


class AudioSocketComponent(_ServerComponent):
    """The AudioSocket server; its calls go through AMD when ``amd`` is given."""

    name = "audiosocket"

    def __init__(self, settings: AudioSocketSettings, amd: LiveAmd | None = None) -> None:
        self.server = AudioSocketServer(amd.handle if amd is not None else _hand_back, settings)
        if amd is not None:
            amd.attach(self.server)

    def status(self) -> str:
        s = self.server
        return (
            f"{self._where()}  calls {len(s.calls)} live, {s.calls_total} total"
            f"  errors {s.errors_total}"
        )


class AmdComponent:
    """AMD on the AudioSocket calls: started after the AMI client, whose ``Newchannel`` events
    name the channels the verdicts are set on (and before the dialer originates any call)."""

    name = "amd"

    def __init__(self, amd: LiveAmd, ami: AmiComponent) -> None:
        self.amd = amd
        self._ami = ami

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self.amd.bind(self._ami.client)  # the client the AMI component started (the demo's own)

    async def stop(self) -> None:
        """The calls under analysis get their verdicts while the AMI client (stopped next)
        is still there; later calls find no AMI and go back to the dialplan as NOTSURE."""
        await self.amd.drain()

    async def abort(self) -> None:
        """Nothing of its own: the AudioSocket server ends its calls."""

    def status(self) -> str:
        return self.amd.status()


class SimComponent:
    """The demo's PBX: the simulated Asterisk, connected to this node's own servers."""

    name = "pbx-sim"

    def __init__(self, audiosocket: AudioSocketComponent, agi: AgiComponent) -> None:
        self._audiosocket = audiosocket
        self._agi = agi
        self.sim: SimulatedAsterisk | None = None

    async def start(self, tg: asyncio.TaskGroup) -> None:
        settings = SimServerSettings(
            ami_port=0,
            username="puente",
            secret=DEMO_SIM_SECRET,
            audiosocket=f"127.0.0.1:{self._audiosocket.server.port}",
            agi=f"127.0.0.1:{self._agi.server.port}",
        )
        self.sim = build_sim(settings)
        for code in DEMO_CAMPAIGNS:
            # As in production: the queue's wrapuptime (queues.conf), members added without
            # one of their own; the campaigns say the same (settings.queue_wrapup_s).
            self.sim.core.queue(code).wrapuptime = DEMO_WRAPUP_S
            for _ in range(AGENTS_PER_CAMPAIGN):
                n = len(self.sim.core.queue(code).members) + 100
                self.sim.core.add_member(
                    code, f"Local/{code}-{n}@agents", f"Agente {code} {n}", 0.0
                )
        await self.sim.start()

    async def stop(self) -> None:
        if self.sim is not None:
            await self.sim.stop()

    async def abort(self) -> None:
        await self.stop()

    def status(self) -> str:
        sim = self.sim
        if sim is None:
            return "not started"
        return (
            f"AMI 127.0.0.1:{sim.ami_port}  channels {sim.core.live_channels}"
            f"  audio streams {sim.audio_streams}"
        )


DEMO_SIM_SECRET = "demo"  # the simulator listens on loopback only, for the demo's own client


class AmiComponent:
    name = "ami"

    def __init__(self, settings: AmiSettings, sim: SimComponent | None = None) -> None:
        self._settings = settings
        self._sim = sim
        # (the service reads events through subscribers only: nothing would drain a queue)
        self.client = AmiClient(settings, queue_events=False)

    async def start(self, tg: asyncio.TaskGroup) -> None:
        if self._sim is not None and self._sim.sim is not None:  # the demo: its own PBX
            self.client = AmiClient(
                dataclasses.replace(
                    self._settings, port=self._sim.sim.ami_port, secret=DEMO_SIM_SECRET
                ),
                queue_events=False,
            )
        self.client.start()  # connects (and reconnects) in the background

    async def stop(self) -> None:
        await self.client.close()

    async def abort(self) -> None:
        await self.client.close()

    def status(self) -> str:
        c = self.client
        state = "connected" if c.connected else "connecting"
        return f"{c.peer} {state}  events {c.events_total}  reconnects {c.disconnects_total}"


class _OneTask:
    """A component that is one background task, cancelled to stop (nothing of it to drain)."""

    _task: asyncio.Task[None] | None = None

    def _work(self) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._task = tg.create_task(self._work())

    async def stop(self) -> None:
        await self.abort()

    async def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()


class AgentQueuesComponent(_OneTask):
    """Logged-out agents out of every queue Asterisk still has them in (web/_logged_out.py):
    a user disabled from the command line, a logout on a node without AMI."""

    name = "agent-queues"

    def __init__(self, pool: asyncpg.Pool, ami: AmiComponent) -> None:
        self.sweeper = LoggedOutSweeper(pool, lambda: ami.client)

    def _work(self) -> Coroutine[Any, Any, None]:
        return self.sweeper.run()

    def status(self) -> str:
        return f"logged-out agents' memberships removed {self.sweeper.removed_total}"


class DemoData:
    """The demo's creditor, campaigns and debtors, written once by whichever component needs
    them first: the web server (its demo agents work those campaigns), else the dialer."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._lock = asyncio.Lock()
        self._done = False

    async def ensure(self) -> None:
        async with self._lock:
            if not self._done:
                await ensure_demo_campaigns(self._pool)
                self._done = True


@dataclasses.dataclass(frozen=True)
class DialerSettings:
    """The dialer on this node: it runs every campaign whose state is ``running``."""

    enabled: bool = True
    # The name of the Asterisk this node drives, as call records and reconciliation know it:
    # nodes sharing one Asterisk use the same name, nodes on different ones different names.
    pbx: str = "asterisk"
    refresh_s: float = 5.0  # how often campaigns (new, paused, edited) are looked up
    tick_s: float = 1.0

    def validate(self) -> None:
        if not self.pbx or len(self.pbx) > 64:
            raise ValueError(f"pbx {self.pbx!r} must be 1-64 characters")
        if not 0.1 <= self.refresh_s <= 300 or not 0.05 <= self.tick_s <= 10:
            raise ValueError("refresh_s must be in [0.1, 300] and tick_s in [0.05, 10]")


_DISCOVER_SQL = (
    CAMPAIGN_SQL
    + """ WHERE c.state = 'running'
       OR EXISTS (SELECT 1 FROM call_attempts a
                  WHERE a.pbx = $1 AND a.state <> 'final' AND a.campaign_id = c.id)
    ORDER BY c.code"""
)


class DialerComponent:
    """One :class:`CampaignRunner` per campaign that is (or was, in this run) ``running``.

    A campaign paused or stopped keeps its runner: it stops dialing, follows its live calls to
    their end and says why on its status; set running again, it dials again. A campaign that
    cannot run as written (its row fails validation) is named in the log and skipped.
    """

    name = "dialer"

    def __init__(
        self, pool: asyncpg.Pool, ami: AmiComponent, node: str, settings: DialerSettings, *,
        compliance: ComplianceSettings | None = None, demo: bool = False,
        metrics: PuenteMetrics | None = None, clock: Callable[[], datetime] | None = None,
        ivr_scripts: frozenset[str] | None = None, greetings: GreetingEnds | None = None,
        demo_data: DemoData | None = None,
    ) -> None:  # fmt: skip
        self._demo_data = demo_data or (DemoData(pool) if demo else None)
        self._metrics = metrics
        # When this node's AMD heard each greeting end: the runners hold agents to the 2 s rule.
        self._greetings = greetings
        # The scripts this node's IVR answers (None: no IVR here, nothing to check against).
        self._ivr_scripts = ivr_scripts
        self._clock = clock
        self._pool = pool
        self._ami = ami
        self._node = node
        self._settings = settings
        self._demo = demo
        self._gate = ComplianceGate(pool, compliance)
        # The session that tells the other nodes this one is alive (and follows its calls).
        self._presence = Presence(pool, node)
        self._tg: asyncio.TaskGroup | None = None
        self._refused: dict[str, str] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._presence_keeper: asyncio.Task[None] | None = None
        self.runners: dict[str, CampaignRunner] = {}

    async def start(self, tg: asyncio.TaskGroup) -> None:
        self._tg = tg
        if self._demo_data is not None:
            await self._demo_data.ensure()
        await self._presence.ensure()
        self._presence_keeper = tg.create_task(self._presence.keep())
        await self._discover()
        self._watcher = tg.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._settings.refresh_s)
            try:
                async with asyncio.timeout(10):
                    await self._discover()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("dialer: cannot look up campaigns: %s", e)

    async def _discover(self) -> None:
        assert self._tg is not None
        # Running campaigns, and any other with attempts open on this node's PBX: a node that
        # restarts after its campaign was paused still settles the calls it left behind
        # (``CampaignRunner._reconcile``); a runner of a campaign not running dials nothing.
        rows = await self._pool.fetch(_DISCOVER_SQL, self._settings.pbx)
        for r in rows:
            code = r["code"]
            if code in self.runners:
                continue
            try:
                campaign = Campaign.from_row(r)
                try:
                    self._gate.rules(campaign.packs)
                except PackError as e:
                    raise CampaignError(f"campaign {code!r}: compliance packs: {e}") from None
                check_agentless_flow(
                    code, campaign.mode, campaign.agentless_flow, self._ivr_scripts
                )
            except CampaignError as e:
                if self._refused.get(code) != str(e):
                    log.error("dialer: not running %s", e)
                    self._refused[code] = str(e)
                continue
            self._refused.pop(code, None)
            runner = CampaignRunner(
                self._pool, self._gate, self._ami.client, campaign, node=self._node,
                pbx=self._settings.pbx, tick_s=self._settings.tick_s,
                refresh_s=self._settings.refresh_s,
                clock=self._clock,
            )  # fmt: skip
            runner.greetings = self._greetings
            await runner.start(self._tg)
            if self._metrics is not None:
                runner.on_final = self._metrics.call_finished
                runner.on_originate = self._metrics.originate_took
                runner.on_decision = self._metrics.compliance_decision
            self.runners[code] = runner
            log.info("dialer: running campaign %s (%s)", code, campaign.mode)

    async def stop(self) -> None:
        self._stop_watching()
        await asyncio.gather(*(r.stop() for r in self.runners.values()))
        await self._presence.close()

    async def abort(self) -> None:
        self._stop_watching()
        await asyncio.gather(*(r.abort() for r in self.runners.values()))
        await self._presence.close()

    def _stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._presence_keeper is not None:
            self._presence_keeper.cancel()

    def status(self) -> str:
        lines = [f"    {r.status()}" for r in self.runners.values()]
        lines += [f"    {code}: not running: {why}" for code, why in self._refused.items()]
        return "\n" + "\n".join(lines) if lines else "no campaign running"


class OpsComponent(_OneTask):
    """Refreshes the Prometheus metrics from the other components every few seconds."""

    name = "metrics"

    def __init__(
        self, metrics: PuenteMetrics, pool: asyncpg.Pool, *, audio: AudioSocketComponent,
        agi: AgiComponent, ami: AmiComponent | None, dialer: DialerComponent | None,
    ) -> None:  # fmt: skip
        self.metrics = metrics
        self._pool = pool
        self._audio, self._agi, self._ami, self._dialer = audio, agi, ami, dialer

    def snapshot(self) -> MetricsSnapshot:
        campaigns = []
        runners = self._dialer.runners if self._dialer else {}
        for code, view in runner_view(runners).items():
            runner = runners[code]
            s = runner.stats
            campaigns.append(
                CampaignSnapshot(
                    campaign=code,
                    answer_ratio={"today": s.answered / s.dials} if s.dials else {},
                    abandonment_ratio={"today": s.abandoned / s.live} if s.live else {},
                    abandonment_target_ratio=runner.c.abandon_target,
                    dial_level=dial_level(view["agents"], view["in_flight"]),
                    agents=view["agents"],
                    calls_in_flight=view["in_flight"],
                    held=runner.held(),
                )
            )
        a, g = self._audio.server, self._agi.server
        links = [
            LinkSnapshot("audiosocket", a.listening, len(a.calls), {"error": a.errors_total}),
            LinkSnapshot(
                "fastagi",
                g.listening,
                len(g.sessions),
                # (command_failed: result=-1 on a live channel, e.g. a missing sound file)
                {
                    "error": g.errors_total,
                    "timeout": g.timeouts_total,
                    "command_failed": g.failures_total,
                },
            ),
        ]
        if self._ami is not None:
            links.append(LinkSnapshot("ami", self._ami.client.connected, 1))
        p = self._pool
        pool = PoolSnapshot(p.get_size() - p.get_idle_size(), p.get_size(), p.get_max_size())
        return MetricsSnapshot(tuple(campaigns), tuple(links), pool)

    def _work(self) -> Coroutine[Any, Any, None]:
        return refresh_every(self.metrics, self.snapshot)

    def status(self) -> str:
        return "metrics refreshed every 5 s"


class DemoWebComponent:
    """The web server with the demo's logins (a supervisor, an agent per demo campaign)."""

    name = "web"

    def __init__(
        self, web_component: WebComponent, pool: asyncpg.Pool, demo_data: DemoData | None = None
    ) -> None:
        self._web = web_component
        self._pool = pool
        self._demo_data = demo_data or DemoData(pool)
        self._password = demo_password()
        self._users: list[str] = []

    async def start(self, tg: asyncio.TaskGroup) -> None:
        await self._web.start(tg)  # (listening first: a port in use stops the start here)
        await self._demo_data.ensure()  # (the campaigns the demo agents work)
        agents = [(f"agent-{code}", f"Local/{code}-100@agents", code) for code in DEMO_CAMPAIGNS]
        self._users = await ensure_demo_users(self._pool, self._password, agents)
        # Shown once on the demo's terminal, never logged (set PUENTE_DEMO_PASSWORD to choose).
        print(
            f"demo web: {self._web.status().split()[0]}/agent and /wallboard; logins"
            f" {', '.join(self._users)}, password {self._password}",
            flush=True,
        )

    async def stop(self) -> None:
        await self._web.stop()

    async def abort(self) -> None:
        await self._web.abort()

    def status(self) -> str:
        return f"{self._web.status()}  demo logins {', '.join(self._users)}"


@dataclasses.dataclass(frozen=True)
class ComponentSettings:
    """Every component's section of the configuration, loaded and checked."""

    ami: AmiSettings
    agi: AgiSettings
    audiosocket: AudioSocketSettings
    dialer: DialerSettings
    compliance: ComplianceSettings
    amd: LiveAmdSettings
    amd_detector: AmdSettings | None  # the detector's parameters (None: AMD off)
    ivr: IvrSettings
    web: WebSettings


SECTIONS = ("node", "database", "ami", "agi", "audiosocket", "dialer", "compliance", "amd",
            "ivr", "web")  # fmt: skip


def load_component_settings(
    file_values: dict[str, dict[str, Any]], *, demo: bool, origin: ConfigFile | None = None
) -> ComponentSettings:
    """The components' sections from the config file and the environment: bad values (and
    unknown sections) raise one :class:`SettingsError` naming every one, before anything
    starts. ``origin``: the file ``file_values`` were read from (to name its lines)."""
    problems: list[str] = []

    def section(cls: type[_S], name: str, values: dict[str, Any] | None = None) -> _S | None:
        values = file_values.get(name) if values is None else values
        try:
            return load(cls, name, file_values=values, origin=origin)
        except SettingsError as e:
            problems.extend(e.problems)
            return None

    unknown = set(file_values) - set(SECTIONS)
    if unknown:
        where = (origin or ConfigFile()).where("")
        problems.append(f"{where}: unknown sections {sorted(unknown)}")
    ami_file = dict(file_values.get("ami") or {})
    if demo:
        # The demo's PBX is the simulator, started here on loopback with its own secret.
        ami_file.setdefault("secret", DEMO_SIM_SECRET)
    ami = section(AmiSettings, "ami", ami_file)
    agi = section(AgiSettings, "agi")
    audiosocket = section(AudioSocketSettings, "audiosocket")
    dialer = section(DialerSettings, "dialer")
    if demo and dialer is not None:
        dialer = dataclasses.replace(dialer, pbx="sim")
    compliance = section(ComplianceSettings, "compliance")
    amd = section(LiveAmdSettings, "amd")
    detector = None
    if amd is not None and amd.enabled:
        try:
            detector = amd.detector_settings()
        except AmdSettingsError as e:
            problems.append(f"amd settings: {e}")
    ivr = section(IvrSettings, "ivr")
    web = section(WebSettings, "web")
    if problems:
        raise SettingsError(*problems)
    assert ami is not None and agi is not None and audiosocket is not None  # noqa: PT018
    assert dialer is not None and compliance is not None and amd is not None  # noqa: PT018
    assert ivr is not None and web is not None  # noqa: PT018
    return ComponentSettings(ami, agi, audiosocket, dialer, compliance, amd, detector, ivr, web)


def build_components(
    settings: ComponentSettings,
    *,
    pool: asyncpg.Pool,
    demo: bool,
    node: str,
    clock: Callable[[], datetime] | None = None,
) -> list[Component]:
    """The service's components, in start order. ``clock`` (the demo's) gives every component
    the same "now"; None: the real time."""  # fmt: skip
    ami, agi, audiosocket = settings.ami, settings.agi, settings.audiosocket
    dialer, compliance = settings.dialer, settings.compliance
    amd_settings, ivr_settings, web_settings = settings.amd, settings.ivr, settings.web
    amd = None
    if settings.amd_detector is not None and ami.enabled:  # verdicts go over AMI
        amd = LiveAmd(amd_settings, settings.amd_detector)
    elif amd_settings.enabled:
        log.info("AMD off: no AMI client to set AMDSTATUS with (calls go to agents as NOTSURE)")
    audio_component = AudioSocketComponent(audiosocket, amd)
    ivr = None
    if ivr_settings.enabled:
        try:
            ivr = build_ivr(
                pool, ivr_settings, gate=ComplianceGate(pool, compliance), node=node, clock=clock
            )
        except IvrError as e:
            raise SettingsError(f"ivr: {e}") from None
    metrics = PuenteMetrics(__version__)
    greetings = GreetingEnds()
    if amd is not None:
        amd.on_verdict = metrics.amd_verdict
        amd.on_greeting_end = greetings.note
    ivr_scripts = frozenset(ivr.by_entry) if ivr is not None else None
    if ivr is not None:
        ivr.on_outcome = metrics.ivr_outcome
    agi_component = AgiComponent(agi, ivr)
    sim = SimComponent(audio_component, agi_component) if demo else None
    demo_data = DemoData(pool) if demo else None
    ami_component = amd_component = dialer_component = agent_queues = None
    if ami.enabled:
        ami_component = AmiComponent(ami, sim)
        agent_queues = AgentQueuesComponent(pool, ami_component)
        if amd is not None:
            amd_component = AmdComponent(amd, ami_component)
        if dialer.enabled:
            dialer_component = DialerComponent(
                pool, ami_component, node, dialer, compliance=compliance, demo=demo,
                metrics=metrics, clock=clock, ivr_scripts=ivr_scripts, greetings=greetings,
                demo_data=demo_data,
            )  # fmt: skip
    else:
        log.info("AMI client disabled (ami.enabled = false)")
    ops = OpsComponent(
        metrics, pool, audio=audio_component, agi=agi_component, ami=ami_component,
        dialer=dialer_component,
    )  # fmt: skip
    web_component: Component | None = None
    if web_settings.enabled:
        desktop = desktop_extension(
            # (no AMI on this node: states are recorded, the dialer's leader seats agents)
            ami=(lambda: ami_component.client) if ami_component is not None else None,
            runners=lambda: dialer_component.runners if dialer_component is not None else {},
            metrics=metrics,
        )
        extensions = [desktop]
        if ivr_scripts is not None:
            extensions.append(lambda app: app.__setitem__(IVR_SCRIPTS, ivr_scripts))
        web_server = WebComponent(
            web_settings,
            pool,
            gate=ComplianceGate(pool, compliance),
            extensions=extensions,
            clock=clock,
        )
        web_component = DemoWebComponent(web_server, pool, demo_data) if demo else web_server
    # Start order: every listening socket first (AudioSocket, FastAGI, the web server with
    # /healthz and /metrics), so that a port in use stops the start before anything is
    # dialed, and a probe gets an answer while the rest starts; then the metrics, the demo's
    # PBX, the AMI client, AMD, and last the dialer. The drain runs in reverse: the dialer stops
    # originating and its live calls end first, while agents' desktops are still served; the
    # web server and the listeners close last.
    ordered: list[Component | None] = [
        audio_component, agi_component, web_component, ops, sim, ami_component, amd_component,
        agent_queues, dialer_component,
    ]  # fmt: skip
    return [c for c in ordered if c is not None]

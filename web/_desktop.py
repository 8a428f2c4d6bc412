"""The agent desktop and the supervisor wallboard: pages, websockets, the screen pop.

``desktop_extension(ami=..., runners=...)`` returns the ``setup(app)`` that
:func:`web.create_app` runs. It adds:

- ``GET /agent`` (agents) and ``GET /wallboard`` (supervisors, admins): static pages.
- ``GET /agent/ws``: the agent's websocket. When Asterisk reports ``AgentConnect`` for the
  agent's queue interface, the screen pop (:func:`web._screenpop.screen_pop`) is pushed to
  every page the agent has open, timed from the event (``pops_ms``).
- ``GET /wallboard/ws``: the board (:func:`web._wallboard.wallboard`) every ``every_s``.
- A socket outlives the request that opened it: before each pop or board its session (or
  token) is looked up again (:func:`web._auth.signed_in_now`), and a page whose session has
  ended (logout, expiry, user disabled) or whose user lost the role is closed
  (``WS_SIGNED_OUT``) instead of receiving debtors' data.
- API ``GET /agent/campaigns`` (the campaigns an agent may go ready for, and its own),
  ``GET /agent/callback-slots`` (times compliance would allow a callback) and the
  preview requests (``/agent/preview``: the agent joins its own queue ``preview-<code>``
  first, and gets no lead when Asterisk will not have it there). Going ready for a campaign,
  pausing and logging out (``POST /api/v1/agents/{code}/state``, :mod:`web._agents`) move the
  agent in Asterisk's queues.
- ``GET /healthz`` (public) and ``GET /metrics`` (public, Prometheus) when metrics are given.

The AMI client is taken through a callable: the service replaces its client when it starts.
The application keeps it as its PBX link (:data:`web._agents.AMI_LINK`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web

from dialer.callbacks import PACKS_BY_COUNTRY, allowed_times
from dialer.preview import preview_queue
from pbx.ami import AmiClient, AmiMessage
from web._agents import (
    ACTIVE_CAMPAIGNS_SQL,
    AMI_LINK,
    QueueMember,
    apply_queue_steps,
    queue_add,
)
from web._api import ApiCall, ApiRoute, add_api_routes
from web._auth import User, public, require, signed_in_now
from web._exceptions import Conflict, Forbidden, Invalid, NotFound
from web._keys import CLOCK, GATE, POOL, current_user
from web._metrics import METRICS_KEY, PuenteMetrics, metrics_handler
from web._schema import CODE, ID
from web._screenpop import screen_pop
from web._values import object_schema
from web._wallboard import WindowHistory, runner_view, wallboard

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
WS_MAX_MSG = 4096  # bytes: the pages send nothing of substance
WS_MAX_PER_S = 20  # messages a second before a page's socket is closed (a flood)
# The close code of a page's socket whose session has ended (logout, expiry, user disabled,
# role changed): a policy violation, as a flood's.
WS_SIGNED_OUT = 1008
# Who may see the wallboard: its page, its socket, and each push while the socket is open.
BOARD_ROLES = ("supervisor", "admin")


class AgentHub:
    """Agents' open pages by queue interface; pushes screen pops on ``AgentConnect``."""

    def __init__(self, app: web.Application, ami: Callable[[], AmiClient | None]) -> None:
        self.app = app
        self.ami = ami
        self.pages: dict[str, set[web.WebSocketResponse]] = {}
        self.users: dict[web.WebSocketResponse, User] = {}  # who opened each page
        self.pops_ms: list[float] = []  # event to pushed, per pop (the last 1,000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscribed: AmiClient | None = None

    def subscribe(self) -> None:
        client = self.ami()
        if client is not None and client is not self._subscribed:
            client.subscribe(self._on_event, "AgentConnect")
            self._subscribed = client

    def _on_event(self, msg: AmiMessage) -> None:
        fields = dict(msg.pairs)
        interface = fields.get("Interface", "")
        if not self.pages.get(interface):
            return
        task = asyncio.get_running_loop().create_task(
            self._pop(interface, fields.get("Uniqueid", ""), time.perf_counter())
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _still_theirs(self, ws: web.WebSocketResponse, interface: str) -> bool:
        """True while the page's session lives, its user is still that agent (not logged
        out, expired, disabled, or given another role or agent since the page opened), and
        that agent still has ``interface``, the phone the page was filed under: a phone moved
        to another agent would bring that agent's calls, debtors and all, to this page."""
        user = self.users.get(ws)
        if user is None:
            return False
        pool = self.app[POOL]
        now = await signed_in_now(pool, user, self.app[CLOCK]())
        if now is None or not now.is_agent or now.agent_id != user.agent_id:
            return False
        current = await pool.fetchval("SELECT interface FROM agents WHERE id = $1", user.agent_id)
        return current == interface

    def _close_signed_out(self, ws: web.WebSocketResponse) -> None:
        async def close() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=WS_SIGNED_OUT, message=b"signed out")

        task = asyncio.get_running_loop().create_task(close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pop(self, interface: str, uniqueid: str, t0: float) -> None:
        pages = []
        try:
            async with asyncio.timeout(5):
                for ws in list(self.pages.get(interface, ())):
                    if await self._still_theirs(ws, interface):
                        pages.append(ws)
                    else:  # no debtor's data goes to it, and it is closed (the page connects
                        # again: under its agent's phone now, or to a login)
                        self._close_signed_out(ws)
        except Exception as e:  # (a database that cannot answer: no pop, as below)
            log.warning("screen pop for call %s: sessions not checked: %s", uniqueid or "-",
                        type(e).__name__)  # fmt: skip
            return
        if not pages:
            return
        try:
            async with asyncio.timeout(5):
                pop = await screen_pop(self.app[POOL], uniqueid, self.app[CLOCK]().date())
        except Exception as e:  # a pop that fails must not take the hub down
            # The call's uniqueid names it; the interface is never logged (a remote agent's
            # may hold a phone number).
            log.warning("screen pop for call %s failed: %s", uniqueid or "-", type(e).__name__)
            return
        if pop is None:
            return
        text = json.dumps(pop, default=str)
        for ws in pages:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)
        self.pops_ms = [*self.pops_ms[-999:], (time.perf_counter() - t0) * 1000]

    async def close(self) -> None:
        for pages in self.pages.values():
            for ws in list(pages):
                await ws.close(code=1001, message=b"server shutdown")
        for task in list(self._tasks):
            task.cancel()


HUB: web.AppKey[AgentHub] = web.AppKey("puente_agent_hub")


async def _member(app: web.Application, agent_id: int | None) -> QueueMember:
    if agent_id is None:
        raise Forbidden("this user is not an agent")
    row = await app[POOL].fetchrow("SELECT interface, name FROM agents WHERE id = $1", agent_id)
    if row is None:
        raise NotFound("no such agent")
    return QueueMember(row["interface"], row["name"])


@require("agent", "supervisor", "admin")
async def _desktop_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "desktop.html")


@require(*BOARD_ROLES)
async def _wallboard_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "wallboard.html")


@require("agent")
async def _agent_ws(request: web.Request) -> web.WebSocketResponse:
    user = current_user(request)
    assert user is not None
    interface = (await _member(request.app, user.agent_id)).interface
    hub = request.app[HUB]
    hub.subscribe()
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=WS_MAX_MSG)
    await ws.prepare(request)
    hub.pages.setdefault(interface, set()).add(ws)
    hub.users[ws] = user
    try:
        await _drain(ws)
    finally:
        hub.pages.get(interface, set()).discard(ws)
        hub.users.pop(ws, None)
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read what the page sends (nothing we act on) until it closes; a flood closes it."""
    window_start, count = time.monotonic(), 0
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            break
        now = time.monotonic()
        if now - window_start > 1.0:
            window_start, count = now, 0
        count += 1
        if count > WS_MAX_PER_S:
            log.warning("websocket flood from %s: closing", ws)
            await ws.close(code=1008, message=b"too many messages")
            break


class SharedBoard:
    """The wallboard computed at most once per ``max_age_s`` for every open board: each
    supervisor's socket pushes every second, and N boards must not mean N times the queries."""

    def __init__(self, max_age_s: float, compute: Callable[[], Awaitable[str]]) -> None:
        self.max_age_s = max_age_s
        self._compute = compute
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._text = ""
        self.computed = 0

    async def get(self) -> str:
        """The latest board (JSON), computed now if it is older than ``max_age_s``."""
        async with self._lock:
            if time.monotonic() - self._at >= self.max_age_s:
                self._text = await self._compute()
                self._at = time.monotonic()
                self.computed += 1
            return self._text


def _wallboard_ws(every_s: float, runners: Callable[[], Mapping[str, Any]]) -> Any:
    boards: dict[web.Application, SharedBoard] = {}

    def shared(app: web.Application) -> SharedBoard:
        if app not in boards:
            # The windows' part before today, read every few minutes rather than every period.
            history = WindowHistory()

            async def compute() -> str:
                board = await wallboard(
                    app[POOL], app[CLOCK](), lambda: runner_view(runners()), history
                )
                return json.dumps(board, default=str)

            # A little under the period: sockets whose pushes drift apart still share.
            boards[app] = SharedBoard(every_s * 0.9, compute)
        return boards[app]

    @require(*BOARD_ROLES)
    async def handler(request: web.Request) -> web.WebSocketResponse:
        user = current_user(request)
        assert user is not None
        app = request.app
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=WS_MAX_MSG)
        await ws.prepare(request)
        board = shared(app)

        async def push() -> None:
            while not ws.closed:
                # The session is checked again before each board (one lookup by its key): a
                # logout, a disabled user or a role taken away ends the board at once.
                now = await signed_in_now(app[POOL], user, app[CLOCK]())
                if now is None or now.role not in BOARD_ROLES:
                    await ws.close(code=WS_SIGNED_OUT, message=b"signed out")
                    return
                await ws.send_str(await board.get())
                await asyncio.sleep(every_s)

        pusher = asyncio.get_running_loop().create_task(push())
        try:
            await _drain(ws)
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await pusher
        return ws

    return handler


async def _callback_slots(call: ApiCall) -> Any:
    """Times the compliance engine would allow a callback to the call's debtor."""
    app = call.request.app
    debt_id = call.query["debt_id"]
    if call.user.is_agent and not await app[POOL].fetchval(
        "SELECT 1 FROM call_attempts WHERE agent_id = $1 AND debt_id = $2 LIMIT 1",
        call.user.agent_id,
        debt_id,
    ):  # (the debtor's zone, whether they are blocked: an agent's own calls' only)
        raise Forbidden("an agent asks callback times for the debts of its own calls")
    row = await app[POOL].fetchrow(
        "SELECT d.person_id, p.country, (SELECT e164 FROM phone_numbers n"
        " WHERE n.person_id = d.person_id AND n.status = 'active' ORDER BY n.id LIMIT 1) AS e164"
        " FROM debts d JOIN persons p ON p.id = d.person_id WHERE d.id = $1",
        debt_id,
    )
    if row is None:
        raise NotFound("no such debt", field="debt_id")
    packs = PACKS_BY_COUNTRY.get((row["country"] or "").strip().upper())
    if not packs or row["e164"] is None:
        return {"slots": []}
    slots = await allowed_times(
        app[GATE], person_id=row["person_id"], debt_id=debt_id, phone=row["e164"],
        packs=packs, now=app[CLOCK](), hours=(9, 11, 13, 16, 18), count=6,
    )  # fmt: skip
    return {
        "slots": [{"at": at.isoformat(), "local": f"{lt:%a %d %b %H:%M %Z}"} for at, lt in slots]
    }


async def _campaigns(call: ApiCall) -> Any:
    """The campaigns an agent may go ready for (running or paused, not in preview mode), and
    the one it took calls for last (``current``; the desktop's default), if any."""
    pool = call.request.app[POOL]
    rows = await pool.fetch(ACTIVE_CAMPAIGNS_SQL)
    current = None
    if call.user.agent_id is not None:
        current = await pool.fetchval(
            "SELECT c.code FROM agents a JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = $1",
            call.user.agent_id,
        )
    return {
        "campaigns": [{"code": r["code"], "name": r["name"]} for r in rows],
        "current": current,
    }


async def _preview_ask(call: ApiCall) -> Any:
    """Ask the campaign's pacer for my next lead (preview mode); one open request at a time.

    The call the agent starts goes to its own queue ``preview-<code>``: the agent joins it
    first, and gets no lead when it cannot (the PBX link down, the queue not in queues.conf).
    """
    user = call.user
    member = await _member(call.request.app, user.agent_id)
    pool = call.request.app[POOL]
    campaign = await pool.fetchrow(
        "SELECT id, mode, state FROM campaigns WHERE code = $1", call.body["campaign"]
    )
    if campaign is None:
        raise NotFound("no such campaign", field="campaign")
    if campaign["mode"] != "preview":
        raise Invalid("the campaign is not in preview mode", field="campaign")
    if campaign["state"] != "running":
        # Only a running campaign's pacer serves requests: one asked of another stayed
        # 'wanted' for ever, and kept the agent from asking anywhere else.
        raise Conflict(f"the campaign is {campaign['state']}: ask when it is running",
                       field="campaign")  # fmt: skip
    # A request still waiting in a campaign that has stopped, paused or left preview mode
    # since is never served: closed, so the agent can ask again.
    await pool.execute(_CLOSE_STALE, user.agent_id)
    queue = preview_queue(user.agent_code or "")
    await apply_queue_steps(
        call.request.app[HUB].ami(),
        [queue_add(member, queue, undoable=False)],
        field="campaign",
        agent=user.agent_code or "",
    )
    try:
        request_id = await pool.fetchval(
            "INSERT INTO preview_requests (campaign_id, agent_id) VALUES ($1, $2) RETURNING id",
            campaign["id"],
            user.agent_id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("you already have an open preview request", field="campaign") from None
    return {"id": request_id, "state": "wanted"}


async def _preview_get(call: ApiCall) -> Any:
    """My latest preview request; with its screen pop once a lead is offered."""
    app = call.request.app
    if call.user.agent_id is None:
        raise Forbidden("this user is not an agent")
    row = await app[POOL].fetchrow(
        "SELECT id, state, attempt_id::text AS attempt_id, note FROM preview_requests"
        " WHERE agent_id = $1 ORDER BY id DESC LIMIT 1",
        call.user.agent_id,
    )
    if row is None:
        return {"state": None}
    out = dict(row)
    if row["state"] == "offered" and row["attempt_id"]:
        out["pop"] = await screen_pop(app[POOL], row["attempt_id"], app[CLOCK]().date())
    return out


_CLOSE_STALE = """
UPDATE preview_requests r SET state = 'closed', updated_at = now(),
       note = 'the campaign is no longer running in preview mode'
FROM campaigns c
WHERE r.agent_id = $1 AND r.state = 'wanted' AND c.id = r.campaign_id
  AND (c.state <> 'running' OR c.mode <> 'preview')
"""


def _preview_decide(to: str) -> Any:
    async def decide(call: ApiCall) -> Any:
        if call.user.agent_id is None:
            raise Forbidden("this user is not an agent")
        row = await call.request.app[POOL].fetchrow(
            "UPDATE preview_requests SET state = $3, updated_at = now()"
            " WHERE id = $1 AND agent_id = $2 AND state = 'offered' RETURNING id",
            call.params["id"],
            call.user.agent_id,
            to,
        )
        if row is None:
            raise Conflict("no offered lead with this id is yours to decide", field="id")
        return {"id": row["id"], "state": to}

    return decide


@public
async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def desktop_extension(
    *,
    ami: Callable[[], AmiClient | None] | None = None,
    runners: Callable[[], Mapping[str, Any]] = dict,
    metrics: PuenteMetrics | None = None,
    every_s: float = 1.0,
) -> Callable[[web.Application], None]:
    """The agent desktop and the wallboard. ``ami``: this node's AMI client (None while it is
    not connected); None when the node has no PBX link at all (``ami.enabled = false``): agents'
    states are then only recorded, and the dialer's leader puts them in their queues."""

    def setup(app: web.Application) -> None:
        hub = AgentHub(app, ami or (lambda: None))
        app[HUB] = hub
        if ami is not None:
            app[AMI_LINK] = ami
        app.router.add_get("/agent", _desktop_page)
        app.router.add_get("/wallboard", _wallboard_page)
        app.router.add_get("/agent/ws", _agent_ws)
        app.router.add_get("/wallboard/ws", _wallboard_ws(every_s, runners))
        app.router.add_get("/healthz", _healthz)
        if metrics is not None:
            app[METRICS_KEY] = metrics
            app.router.add_get("/metrics", public(metrics_handler))
        app.router.add_static("/static", STATIC)
        add_api_routes(
            app,
            [
                ApiRoute(
                    "GET", "/agent/campaigns", _campaigns,
                    "The campaigns an agent may go ready for, and its own (current)", "agents",
                    ("agent", "supervisor", "admin"),
                ),
                ApiRoute(
                    "POST", "/agent/preview", _preview_ask,
                    "Preview mode: ask for my next lead", "agents", ("agent",),
                    body=object_schema({"campaign": CODE}, ("campaign",)),
                ),
                ApiRoute(
                    "GET", "/agent/preview", _preview_get,
                    "Preview mode: my latest request, with the offered lead's screen pop",
                    "agents", ("agent",),
                ),
                ApiRoute(
                    "POST", "/agent/preview/{id}/call", _preview_decide("accepted"),
                    "Preview mode: start the call to the offered lead", "agents", ("agent",),
                    params={"id": ID},
                ),
                ApiRoute(
                    "POST", "/agent/preview/{id}/skip", _preview_decide("skipped"),
                    "Preview mode: pass on the offered lead", "agents", ("agent",),
                    params={"id": ID},
                ),
                ApiRoute(
                    "GET", "/agent/callback-slots", _callback_slots,
                    "Callback times compliance would allow for a debt's debtor", "agents",
                    ("agent", "supervisor", "admin"),
                    query={"debt_id": ID}, required_query=("debt_id",),
                ),
            ],
        )  # fmt: skip

        async def on_startup(app: web.Application) -> None:
            hub.subscribe()

        async def on_shutdown(app: web.Application) -> None:
            await hub.close()

        app.on_startup.append(on_startup)
        app.on_shutdown.append(on_shutdown)

    return setup

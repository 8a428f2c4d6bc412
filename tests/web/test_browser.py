"""The pages in a real browser (Debian's chromium driven by Playwright): an agent logs in, chooses
the campaign to work and goes ready, gets a simulated call's screen pop and records a promise; a
supervisor sees it on the wallboard. Screenshots go to ``test-artifacts/browser/``.

Everything under the pages is real: the web app and its API, PostgreSQL, Puente's AMI client
and the simulated Asterisk running ``asterisk_conf/extensions.conf`` (the call is originated
as the dialer does, reaches the queue and its agent, and Asterisk's AgentConnect drives the
pop).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest
from aiohttp import web

from compliance import ComplianceGate
from dialer.results import assign_agent
from pbx.ami import AmiClient, AmiSettings
from pbx.audiosocket import AudioSocketServer, AudioSocketSettings
from pbx.sim import CalleeModel, ModelFile, SimServerSettings, SimSettings, SimulatedAsterisk
from pbx.sim import build as build_sim
from tests.dialer._floor import hand_back
from tests.ivr._seed import Debtor, debtor
from web import WebSettings, create_app, hash_password
from web._desktop import HUB, desktop_extension

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (./dev test installs Debian's)"
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
AGENT = "Local/100@agents"


class Floor:
    def __init__(self) -> None:
        self.url = ""
        self.client: AmiClient | None = None
        self.sim: SimulatedAsterisk | None = None
        self.app: web.Application | None = None
        self.debtor: Debtor | None = None
        self.campaign_id = 0
        self.pool: asyncpg.Pool | None = None


@pytest.fixture
async def floor(db_pool: asyncpg.Pool) -> AsyncIterator[Floor]:
    f = Floor()
    f.pool = db_pool
    async with db_pool.acquire() as conn:
        f.debtor = d = await debtor(conn)
        f.campaign_id = await conn.fetchval(
            "INSERT INTO campaigns (code, name, creditor_id, state) VALUES"
            " ('web-floor', 'Web floor', $1, 'running')"
            " ON CONFLICT (code) DO UPDATE SET creditor_id = EXCLUDED.creditor_id RETURNING id",
            d.creditor_id,
        )
        # A second active campaign, on a queue of its own: the agent chooses one to work.
        await conn.execute(
            "INSERT INTO campaigns (code, name, state, queue_name) VALUES"
            " ('web-other', 'Web other', 'running', 'web-other') ON CONFLICT (code) DO NOTHING"
        )
        for name, role in (("ana", "agent"), ("sam", "supervisor")):
            await conn.execute(
                "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)"
                " ON CONFLICT (username) DO NOTHING",
                name,
                hash_password(f"{name}-secret-pw"),
                role,
            )
        await conn.execute(
            "INSERT INTO agents (code, name, interface, user_id)"
            " SELECT 'a100', 'Ana', $1, id FROM users WHERE username = 'ana'"
            " ON CONFLICT (code) DO NOTHING",
            AGENT,
        )
    spec = msgspec.convert(
        {
            "numbers": {d.number: "human"},
            "ring_s": {"dist": "fixed", "value": 0.3},
            "patience_s": {"dist": "fixed", "value": 60.0},
            "talk_s": {"dist": "fixed", "value": 120.0},
        },
        ModelFile,
    )
    # AudioSocket without a detector: the socket ends at once and the call goes on as NOTSURE.
    audio = AudioSocketServer(hand_back, AudioSocketSettings(port=0))
    await audio.start()
    f.sim = build_sim(
        SimServerSettings(ami_port=0, secret="s3cret", audiosocket=f"127.0.0.1:{audio.port}"),
        model=CalleeModel(spec),
        settings=SimSettings(agent_ring_s=0.2),
    )
    # No member yet: Ana's Ready on the desktop adds her to the campaign's queue (QueueAdd).
    await f.sim.start()
    f.client = AmiClient(
        AmiSettings(port=f.sim.ami_port, username="puente", secret="s3cret", ping_interval_s=60)
    )
    # The dialer's part of a connected call: the attempt becomes the agent's (the runner does
    # this on AgentConnect; here the test originates the call itself).
    f.client.subscribe(
        lambda m: asyncio.get_running_loop().create_task(
            assign_agent(db_pool, m.get("Uniqueid") or "", m.get("Interface") or "")
        ),
        "AgentConnect",
    )
    f.client.start()
    await f.client.wait_connected(5)
    f.app = create_app(
        db_pool,
        WebSettings(port=0),
        gate=ComplianceGate(db_pool),
        extensions=[desktop_extension(ami=lambda: f.client, every_s=0.5)],
    )
    runner = web.AppRunner(f.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    f.url = f"http://127.0.0.1:{port}"
    try:
        yield f
    finally:
        await runner.cleanup()
        await f.client.close()
        await f.sim.stop()
        await audio.stop(grace_s=0.5)


async def _originate(f: Floor) -> str:
    """What the dialer does: the attempt row first, then the Originate (ChannelId = its id)."""
    assert f.client is not None
    assert f.debtor is not None
    attempt = str(uuid.uuid4())
    d = f.debtor
    await f.pool.execute(
        "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node, pbx,"
        " state) VALUES ($1, $2, $3, $4, $5, 'n', 'sim', 'originating')",
        uuid.UUID(attempt),
        f.campaign_id,
        d.person_id,
        d.debt_id,
        d.phone_id,
    )
    handle = await f.client.originate(
        [
            ("Channel", f"PJSIP/{d.number}@trunk"),
            ("Context", "puente-outbound"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", "20000"),
            ("ChannelId", attempt),
            (
                "Variable",
                [
                    f"PUENTE_ATTEMPT={attempt}",
                    "PUENTE_CAMPAIGN=web-floor",
                    "PUENTE_QUEUE=collections",
                    "PUENTE_MODE=predictive",
                ],
            ),
        ],
        action_id=attempt,
    )
    assert handle.response.ok
    return attempt


async def _login(page, url: str, user: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", f"{user}-secret-pw")
    await page.click("button[type=submit], input[type=submit]")
    await page.wait_for_load_state()


async def test_agent_gets_the_pop_records_a_promise_and_the_wallboard_shows_it(
    floor: Floor, db_pool: asyncpg.Pool
) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d = floor.debtor
    assert d is not None
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            agent = await (await browser.new_context()).new_page()
            await _login(agent, floor.url, "ana")
            await agent.goto(f"{floor.url}/agent")
            await expect(agent.locator("#link")).to_have_text("connected", timeout=10000)
            # Two campaigns are active and Ana has none yet: Ready alone is refused, naming them.
            campaign = agent.get_by_label("Campaign", exact=True)
            await expect(campaign.locator("option")).to_have_text(
                ["Choose a campaign…", "Web floor (web-floor)", "Web other (web-other)"]
            )
            await expect(campaign).to_have_value("")
            await agent.click("#ready")
            await expect(agent.locator("#state-msg")).to_contain_text(
                "choose one of: web-floor (Web floor), web-other (Web other)", timeout=5000
            )
            await expect(agent.locator("#state")).to_have_text("logged out")
            await campaign.select_option("web-floor")
            await agent.click("#ready")
            await expect(agent.locator("#state")).to_have_text("ready", timeout=5000)
            await expect(agent.locator("#state-msg")).to_have_text("Taking calls for web-floor")
            state = await db_pool.fetchval(
                "SELECT state FROM agent_states ORDER BY id DESC LIMIT 1"
            )
            assert state == "ready"
            assert await db_pool.fetchval(
                "SELECT c.code FROM agents a JOIN campaigns c ON c.id = a.campaign_id"
                " WHERE a.code = 'a100'"
            ) == "web-floor"  # fmt: skip
            assert floor.sim is not None
            assert AGENT in floor.sim.core.queues["collections"].members
            others = [q for name, q in floor.sim.core.queues.items() if name != "collections"]
            assert not any(AGENT in q.members for q in others)
            # The next visit defaults to the campaign the agent works.
            await agent.reload()
            await expect(campaign).to_have_value("web-floor", timeout=5000)
            await expect(agent.locator("#link")).to_have_text("connected", timeout=10000)

            attempt = await _originate(floor)
            await expect(agent.locator("#pop")).to_be_visible(timeout=15000)
            await expect(agent.locator("#pop-name")).to_have_text(await _name(db_pool, d))
            await expect(agent.locator("#pop-account")).to_have_text("****" + d.account[-4:])
            await expect(agent.locator("#pop-balance")).to_contain_text("1,500.00 MXN")
            verify = agent.locator("#pop-verify")  # nobody verified the caller yet
            await expect(verify).to_be_visible()
            await expect(verify).to_contain_text("before discussing the account")
            await agent.screenshot(path=str(ARTIFACTS / "agent-screen-pop.png"), full_page=True)
            hub = floor.app[HUB]  # type: ignore[index]
            assert hub.pops_ms, "the pop was pushed from AgentConnect"

            due = (datetime.now(UTC) + timedelta(days=5)).date()
            await agent.fill("#promise-amount", "500")
            await agent.fill("#promise-date", due.isoformat())
            await agent.click("#save")
            await expect(agent.locator("#saved")).to_contain_text("Promise recorded", timeout=5000)
            await agent.screenshot(path=str(ARTIFACTS / "agent-promise.png"), full_page=True)
            promise = await db_pool.fetchrow(
                "SELECT * FROM promises WHERE debt_id = $1 AND source = 'agent'", d.debt_id
            )
            assert promise is not None
            assert promise["total_cents"] == 50000
            assert str(promise["attempt_id"]) == attempt
            disposition = await db_pool.fetchval(
                "SELECT code FROM dispositions WHERE attempt_id = $1", uuid.UUID(attempt)
            )
            assert disposition == "promise_to_pay"

            supervisor = await (await browser.new_context()).new_page()
            await _login(supervisor, floor.url, "sam")
            await supervisor.goto(f"{floor.url}/wallboard")
            row = supervisor.locator("tr[data-campaign='web-floor']")
            await expect(row).to_contain_text("1 · 500.00", timeout=10000)
            await supervisor.screenshot(path=str(ARTIFACTS / "wallboard.png"), full_page=True)

            # An agent may not open the wallboard.
            response = await agent.goto(f"{floor.url}/wallboard")
            assert response is not None
            assert response.status == 403
        finally:
            await browser.close()


async def _name(pool: asyncpg.Pool, d: Debtor) -> str:
    return await pool.fetchval("SELECT full_name FROM persons WHERE id = $1", d.person_id)


async def test_a_websocket_flood_is_closed(floor: Floor) -> None:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        r = await http.post(
            f"{floor.url}/login", data={"username": "ana", "password": "ana-secret-pw"}
        )
        assert r.status == 200
        async with http.ws_connect(f"{floor.url}/agent/ws") as ws:
            for _ in range(100):
                if ws.closed:
                    break
                await ws.send_str("x")
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1008

"""Security audit of the web layer, over real HTTP: roles, sessions, CSRF, websockets, uploads.

Each test states one property; the websocket ones are the defects the audit found (a socket
opened by a session kept receiving debtors' screen pops and the wallboard after the session
was logged out, the user disabled or demoted).
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from pbx.ami import AmiMessage
from tests.web._api_support import (
    PASSWORD,
    account,
    attempt,
    campaign_row,
    debtor,
    served,
)
from web import WebSettings, create_app
from web._api import API_BASE
from web._desktop import HUB, desktop_extension
from web._keys import API_ROUTES
from web._users import disable_user

JSON = {"Accept": "application/json"}


async def _login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log in with a browser session; its CSRF token."""
    r = await client.post(
        "/login", data={"username": name, "password": password}, headers=JSON,
        allow_redirects=False,
    )  # fmt: skip
    assert r.status == 200, await r.text()
    return (await r.json())["csrf_token"]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


class FakeAmi:
    """Enough of an AMI client for the desktop's hub: it keeps the AgentConnect callback."""

    connected = True

    def __init__(self) -> None:
        self.callbacks: list = []

    def subscribe(self, callback: object, event: str | None = None) -> None:
        self.callbacks.append(callback)

    def agent_connect(self, interface: str, uniqueid: str) -> None:
        msg = AmiMessage.from_pairs(
            [("Event", "AgentConnect"), ("Interface", interface), ("Uniqueid", uniqueid)]
        )
        for cb in self.callbacks:
            cb(msg)


def _desktop_app(pool: asyncpg.Pool, ami: FakeAmi | None = None, **kw: float):
    ami = ami or FakeAmi()
    return create_app(pool, WebSettings(), extensions=[desktop_extension(ami=lambda: ami, **kw)])


# -- 1. authorization -------------------------------------------------------------------------
async def test_an_agent_is_refused_every_route_not_declared_for_agents(db_pool) -> None:
    agent = await account(db_pool, "agent")
    app = _desktop_app(db_pool)
    async with TestClient(TestServer(app)) as http:
        routes = [r for r in app[API_ROUTES] if "agent" not in r.roles]
        assert {"/campaigns", "/campaigns/{code}/leads", "/reports/daily.csv",
                "/blocks/{id}/revoke"} <= {r.path for r in routes}  # fmt: skip
        for route in routes:
            r = await http.request(
                route.method, API_BASE + _concrete(route.path), headers=agent.auth, json={}
            )
            assert r.status == 403, (route.method, route.path, r.status)
        for page in ("/wallboard", "/wallboard/ws"):
            r = await http.get(page, headers=agent.auth)
            assert r.status == 403, page


async def test_an_agent_cannot_touch_another_agents_call(db_pool) -> None:
    me, other = await account(db_pool, "agent"), await account(db_pool, "agent")
    d = await debtor(db_pool)
    cid, _ = await campaign_row(db_pool, d.creditor_id)
    theirs = await attempt(db_pool, d, cid, agent_id=other.agent_id)
    async with served(db_pool) as http:
        r = await http.post(f"/api/v1/attempts/{theirs}/disposition", headers=me.auth,
                            json={"code": "other"})  # fmt: skip
        assert r.status == 403
        r = await http.post("/api/v1/promises", headers=me.auth, json={
            "debt_id": d.debt_id, "attempt_id": theirs, "amount_cents": 100_000,
            "due": "2099-01-01"})  # fmt: skip
        assert r.status == 403
        listed = await (await http.get("/api/v1/attempts?mine=false", headers=me.auth)).json()
        assert listed["attempts"] == []
        assert (await (await http.get("/api/v1/promises", headers=me.auth)).json()) == {
            "promises": []
        }
        r = await http.post(f"/api/v1/agents/{other.agent_code}/state", headers=me.auth,
                            json={"state": "logged_out"})  # fmt: skip
        assert r.status == 403


async def test_disabled_or_demoted_users_lose_access_at_once(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    gone = await account(db_pool, "supervisor")
    async with served(db_pool) as http:
        await _login(http, gone.name)
        assert (await http.get("/api/v1/campaigns")).status == 200
        assert (await http.get("/api/v1/campaigns", headers=gone.auth)).status == 200
        await disable_user(db_pool, gone.name)
        assert (await http.get("/api/v1/campaigns")).status == 401  # the session
        assert (await http.get("/api/v1/campaigns", headers=gone.auth)).status == 401
        await db_pool.execute("UPDATE users SET role = 'agent' WHERE id = $1", sup.user_id)
        assert (await http.get("/api/v1/campaigns", headers=sup.auth)).status == 403


# -- 2. authentication and sessions -----------------------------------------------------------
async def test_each_login_is_a_new_session_and_logout_ends_it_on_the_server(db_pool) -> None:
    user = await account(db_pool, "agent")
    async with served(db_pool, secure_cookies=True) as http:
        r = await http.post("/login", data={"username": user.name, "password": PASSWORD},
                            allow_redirects=False)  # fmt: skip
        cookie = r.headers["Set-Cookie"]
        for flag in ("HttpOnly", "SameSite=Lax", "Secure"):
            assert flag in cookie
        first = r.cookies["puente_session"].value
        r = await http.post("/login", data={"username": user.name, "password": PASSWORD},
                            allow_redirects=False)  # fmt: skip
        second = r.cookies["puente_session"].value
        assert first != second
    async with served(db_pool) as http:
        # A cookie the attacker chose is never adopted: it names no session.
        http.session.cookie_jar.update_cookies({"puente_session": "pns_chosen"})
        assert (await http.get("/api/v1/me")).status == 401
        csrf = await _login(http, user.name)
        stolen = http.session.cookie_jar.filter_cookies(http.make_url("/"))["puente_session"]
        r = await http.post("/logout", headers={"X-CSRF-Token": csrf, **JSON})
        assert r.status == 204
    async with served(db_pool) as http:  # a copy of the cookie kept from before the logout
        http.session.cookie_jar.update_cookies({"puente_session": stolen.value})
        assert (await http.get("/api/v1/me")).status == 401


async def test_login_attempts_are_limited(db_pool) -> None:
    user = await account(db_pool, "agent")
    async with served(db_pool, login_attempts_per_min=2) as http:
        for _ in range(2):
            r = await http.post("/login", data={"username": user.name, "password": "x" * 9})
            assert r.status == 401
        r = await http.post("/login", data={"username": user.name.upper(), "password": "x"})
        assert r.status == 429


async def test_only_failed_logins_count_against_the_limit(db_pool) -> None:
    # Every login counted: behind one address (a reverse proxy, an office) the whole floor
    # shared a handful of logins a minute, right passwords included.
    user = await account(db_pool, "agent")
    async with served(db_pool, login_attempts_per_min=2) as http:
        for _ in range(5):
            r = await http.post(
                "/login", data={"username": user.name, "password": PASSWORD}, headers=JSON
            )
            assert r.status == 200
        for _ in range(2):
            r = await http.post("/login", data={"username": user.name, "password": "x" * 9})
            assert r.status == 401
        r = await http.post("/login", data={"username": user.name, "password": PASSWORD})
        assert r.status == 429  # (the failures still count: the right one waits too)


# -- 3. CSRF ----------------------------------------------------------------------------------
async def test_cross_site_shaped_requests_are_refused(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    _, code = await campaign_row(db_pool)
    async with served(db_pool) as http:
        csrf = await _login(http, sup.name)
        # What a form on another site can send: a form or text/plain body, no token.
        for data, ctype in (
            ("kind=dnc&e164=%2B525512345678", "application/x-www-form-urlencoded"),
            ('{"kind": "dnc", "e164": "+525512345678"}', "text/plain"),
        ):
            r = await http.post("/api/v1/blocks", data=data, headers={"Content-Type": ctype})
            assert r.status == 403
        r = await http.post(f"/api/v1/campaigns/{code}/start")
        assert r.status == 403
        r = await http.post("/logout", allow_redirects=False)
        assert r.status == 403
        # With the token, a JSON route still wants JSON (no form or text/plain body).
        text = '{"kind": "dnc", "e164": "+525512345678"}'
        r = await http.post(
            "/api/v1/blocks",
            data=text,
            headers={"Content-Type": "text/plain", "X-CSRF-Token": csrf},
        )
        assert r.status == 415


# -- 4. SQL and files -------------------------------------------------------------------------
async def test_query_values_are_validated_and_files_stay_in_place(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    _, code = await campaign_row(db_pool, d.creditor_id)
    async with served(db_pool, max_upload_bytes=2048) as http:
        for query in ("limit=1;DROP TABLE users", "limit=0", "limit=100000", "campaign=x'--"):
            r = await http.get(f"/api/v1/attempts?{query}", headers=sup.auth)
            assert r.status == 422, query
        r = await http.get("/api/v1/imports/1%2F..%2F..%2Fetc%2Fpasswd/errors.csv",
                           headers=sup.auth)  # fmt: skip
        assert r.status in (404, 422)
        r = await http.post(f"/api/v1/campaigns/{code}/leads", data=b"a" * 4096,
                            headers={"Content-Type": "text/csv", **sup.auth})  # fmt: skip
        assert r.status == 413
    app = _desktop_app(db_pool)
    async with TestClient(TestServer(app)) as http:
        for path in ("/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/_auth.py"):
            r = await http.get(URL(path, encoded=True))
            assert r.status in (403, 404), path


# -- 5. leaks ---------------------------------------------------------------------------------
async def test_errors_say_nothing_of_the_server(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    async with served(db_pool) as http:
        for data in (b'{"code": ', b"\xff\xfe", b'{"code": "x", "name": "' + b"\xc3" + b'"}'):
            headers = {"Content-Type": "application/json", **sup.auth}
            r = await http.post("/api/v1/campaigns", data=data, headers=headers)
            assert r.status == 400
            body = await r.text()
            assert "Traceback" not in body
            assert "File " not in body


# -- websockets opened by a session that has ended (defects) ----------------------------------
async def _ws_closed_or_silent(ws: aiohttp.ClientWebSocketResponse, timeout_s: float) -> bool:
    """True when the socket gets nothing but its close within ``timeout_s``."""
    try:
        msg = await ws.receive(timeout=timeout_s)
    except TimeoutError:
        return True
    return msg.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.CLOSING,
    )


async def _open_agent_ws(
    http: TestClient, name: str
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    csrf = await _login(http, name)
    return await http.ws_connect("/agent/ws"), csrf


async def test_a_logged_out_agents_open_desktop_gets_no_more_screen_pops(db_pool) -> None:
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    cid, _ = await campaign_row(db_pool, d.creditor_id)
    ami = FakeAmi()
    app = _desktop_app(db_pool, ami)
    async with TestClient(TestServer(app)) as http:
        ws, csrf = await _open_agent_ws(http, agent.name)
        call = await attempt(db_pool, d, cid, agent_id=agent.agent_id, disposition=None)
        ami.agent_connect(f"PJSIP/{agent.agent_code}", call)
        pop = await ws.receive_json(timeout=5)
        assert pop["debt"]["id"] == d.debt_id  # the pop works while the session lives
        r = await http.post("/logout", headers={"X-CSRF-Token": csrf, **JSON})
        assert r.status == 204
        later = await attempt(db_pool, d, cid, agent_id=agent.agent_id, disposition=None)
        ami.agent_connect(f"PJSIP/{agent.agent_code}", later)
        assert await _ws_closed_or_silent(ws, 1.0), "a pop reached a logged-out page"
        await ws.close()
        await asyncio.sleep(0)
        assert not app[HUB].pages.get(f"PJSIP/{agent.agent_code}")


async def test_a_disabled_agents_open_desktop_gets_no_more_screen_pops(db_pool) -> None:
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    cid, _ = await campaign_row(db_pool, d.creditor_id)
    ami = FakeAmi()
    app = _desktop_app(db_pool, ami)
    async with TestClient(TestServer(app)) as http:
        ws, _ = await _open_agent_ws(http, agent.name)
        await disable_user(db_pool, agent.name)
        call = await attempt(db_pool, d, cid, agent_id=agent.agent_id, disposition=None)
        ami.agent_connect(f"PJSIP/{agent.agent_code}", call)
        assert await _ws_closed_or_silent(ws, 1.0), "a pop reached a disabled user's page"
        await ws.close()


async def _board_ends(ws: aiohttp.ClientWebSocketResponse, boards: int = 10) -> bool:
    """True when the socket closes after at most ``boards`` more boards (those in flight)."""
    for _ in range(boards):
        msg = await ws.receive(timeout=2)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    return False


async def test_the_wallboard_stops_for_a_logged_out_or_demoted_supervisor(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    app = _desktop_app(db_pool, every_s=0.05)
    async with TestClient(TestServer(app)) as http:
        csrf = await _login(http, sup.name)
        ws = await http.ws_connect("/wallboard/ws")
        assert "campaigns" in await ws.receive_json(timeout=5)
        r = await http.post("/logout", headers={"X-CSRF-Token": csrf, **JSON})
        assert r.status == 204
        assert await _board_ends(ws), "the board went on after the logout"
    async with TestClient(TestServer(_desktop_app(db_pool, every_s=0.05))) as http:
        await _login(http, sup.name)
        ws = await http.ws_connect("/wallboard/ws")
        assert "campaigns" in await ws.receive_json(timeout=5)
        await db_pool.execute("UPDATE users SET role = 'agent' WHERE id = $1", sup.user_id)
        assert await _board_ends(ws), "the board went on for a user who is now an agent"


async def test_a_desktop_open_on_a_phone_given_to_another_agent_gets_none_of_their_pops(
    db_pool,
) -> None:
    # Hot-desking: agent A's page was filed under A's phone; A moved to another desk and the
    # phone went to B. B's calls on it popped on A's page: B's debtors shown to A.
    a = await account(db_pool, "agent")
    b = await account(db_pool, "agent")
    d = await debtor(db_pool)
    cid, _ = await campaign_row(db_pool, d.creditor_id)
    ami = FakeAmi()
    app = _desktop_app(db_pool, ami)
    phone = f"PJSIP/{a.agent_code}"
    async with TestClient(TestServer(app)) as http:
        ws, _ = await _open_agent_ws(http, a.name)
        await db_pool.execute(
            "UPDATE agents SET interface = 'PJSIP/newdesk' WHERE id = $1", a.agent_id
        )
        await db_pool.execute("UPDATE agents SET interface = $2 WHERE id = $1", b.agent_id, phone)
        call = await attempt(db_pool, d, cid, agent_id=b.agent_id, disposition=None)
        ami.agent_connect(phone, call)
        assert await _ws_closed_or_silent(ws, 1.0), "B's pop reached A's page"
        await ws.close()


async def test_an_agent_gets_callback_times_for_its_own_calls_debts_only(db_pool) -> None:
    # Any debt id answered: whether it exists, the debtor's zone, whether they are blocked.
    agent = await account(db_pool, "agent")
    sup = await account(db_pool, "supervisor")
    mine, other = await debtor(db_pool), await debtor(db_pool)
    cid, _ = await campaign_row(db_pool, mine.creditor_id)
    await attempt(db_pool, mine, cid, agent_id=agent.agent_id, disposition=None)
    app = _desktop_app(db_pool)
    async with TestClient(TestServer(app)) as http:
        url = "/api/v1/agent/callback-slots?debt_id={}"
        r = await http.get(url.format(mine.debt_id), headers=agent.auth)
        assert r.status == 200, await r.text()
        assert "slots" in await r.json()
        for debt_id in (other.debt_id, 99_999_999):
            r = await http.get(url.format(debt_id), headers=agent.auth)
            assert r.status == 403
        r = await http.get(url.format(other.debt_id), headers=sup.auth)
        assert r.status == 200

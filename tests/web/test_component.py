"""The web component's lifetime, its settings, and extending the app."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web as aioweb

from puente.settings import SettingsError, load
from tests.web._api_support import account, served
from web import (
    POOL,
    ApiCall,
    ApiRoute,
    WebComponent,
    WebSettings,
    add_api_routes,
    public,
    require,
)


def test_settings_load_and_validate() -> None:
    s = load(
        WebSettings, "web", environ={"PUENTE_WEB_PORT": "9090", "PUENTE_WEB_SECURE_COOKIES": "true"}
    )
    assert (s.port, s.secure_cookies, s.host) == (9090, True, "127.0.0.1")
    assert s.session_ttl_s == 8 * 3600
    assert s.max_upload_bytes == 200 * 1024 * 1024
    for env, name in (
        ({"PUENTE_WEB_PORT": "http"}, "PUENTE_WEB_PORT"),
        ({"PUENTE_WEB_LOGIN_ATTEMPTS_PER_MIN": "0"}, "login_attempts_per_min"),
        ({"PUENTE_WEB_SESSION_TTL_S": "5"}, "session_ttl_s"),
        ({"PUENTE_WEB_MAX_UPLOAD_BYTES": "10"}, "max_upload_bytes"),
    ):
        with pytest.raises(SettingsError, match=name):
            load(WebSettings, "web", environ=env)


async def test_component_serves_and_drains(db_pool) -> None:
    component = WebComponent(WebSettings(port=0), db_pool)
    assert component.status() == "not listening"
    async with asyncio.TaskGroup() as tg:
        await component.start(tg)
        assert component.port
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{component.port}"
            async with session.get(f"{url}/login") as r:
                assert r.status == 200
            async with session.get(f"{url}/api/v1/me") as r:
                assert r.status == 401
        line = component.status()
        assert line.startswith(f"http://127.0.0.1:{component.port}")
        assert "requests 2" in line
        await component.stop()
    assert component.status() == "not listening"
    aborted = WebComponent(WebSettings(port=0), db_pool)
    async with asyncio.TaskGroup() as tg:
        await aborted.start(tg)
        await aborted.abort()


async def test_a_taken_port_fails_the_start(db_pool) -> None:
    first = WebComponent(WebSettings(port=0), db_pool)
    async with asyncio.TaskGroup() as tg:
        await first.start(tg)
        second = WebComponent(WebSettings(port=first.port), db_pool)
        with pytest.raises(OSError):
            await second.start(tg)
        await first.stop()


async def test_extensions_add_pages_and_documented_api_routes(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    agent = await account(db_pool, "agent")

    @require("supervisor", "admin")
    async def board(request: aioweb.Request) -> aioweb.Response:
        count = await request.app[POOL].fetchval("SELECT count(*) FROM agents")
        return aioweb.Response(text=f"agents {count}")

    @public
    async def health(request: aioweb.Request) -> aioweb.Response:
        return aioweb.Response(text="ok")

    async def home(request: aioweb.Request) -> aioweb.Response:
        return aioweb.Response(text="the desktop")

    async def stats(call: ApiCall) -> dict:
        return {"user": call.user.username}

    def setup(app: aioweb.Application) -> None:
        app.router.add_get("/board", board)
        app.router.add_get("/health", health)
        app.router.add_get("/", home)
        add_api_routes(
            app, [ApiRoute("GET", "/board/stats", stats, "Board figures", "board", ("supervisor",))]
        )

    from web import create_app

    app = create_app(db_pool, extensions=[setup])
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/health")).status == 200
        r = await client.get("/board", allow_redirects=False)
        assert r.status == 302
        assert r.headers["Location"] == "/login?next=/board"
        assert (await client.get("/board", headers=agent.auth)).status == 403
        r = await client.get("/board", headers=sup.auth)
        assert r.status == 200
        assert (await r.text()).startswith("agents ")
        r = await client.get("/api/v1/board/stats", headers=sup.auth)
        assert (await r.json()) == {"user": sup.name}
        assert (await client.get("/api/v1/board/stats", headers=agent.auth)).status == 403
        doc = await (await client.get("/api/v1/openapi.json", headers=sup.auth)).json()
        assert doc["paths"]["/board/stats"]["get"]["x-roles"] == ["supervisor"]
        assert await (await client.get("/", headers=sup.auth)).text() == "the desktop"
    async with served(db_pool) as client:  # without an extension: the minimal home page
        r = await client.get("/", headers=sup.auth)
        assert r.status == 200
        assert sup.name in await r.text()


async def test_housekeeping_deletes_old_sessions(db_pool) -> None:
    from datetime import UTC, datetime, timedelta

    from web._auth import create_session
    from web._housekeeping import sweep

    user = await account(db_pool, "agent")
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    await create_session(db_pool, user.user_id, now=long_ago, ttl_s=3600, client=None)
    await create_session(db_pool, user.user_id, now=datetime.now(UTC), ttl_s=3600, client=None)
    deleted, _ = await sweep(db_pool, datetime.now(UTC) + timedelta(minutes=1))
    assert deleted >= 1
    left = await db_pool.fetchval(
        "SELECT count(*) FROM web_sessions WHERE user_id = $1", user.user_id
    )
    assert left == 1


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(300))
        + b"\r\n",
    ],
    ids=["9KB-header", "300-headers"],
)
async def test_malformed_requests_are_one_log_line_without_traceback(db_pool, caplog, head) -> None:
    caplog.set_level(logging.DEBUG)
    component = WebComponent(WebSettings(port=0), db_pool)
    async with asyncio.TaskGroup() as tg:
        await component.start(tg)
        reader, writer = await asyncio.open_connection("127.0.0.1", component.port)
        writer.write(head)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        await component.stop()
    assert b" 400 " in status
    server = [r for r in caplog.records if r.name == "puente.web.server"]
    assert server, [r.getMessage() for r in caplog.records]
    assert all(r.levelno <= logging.INFO and not r.exc_info for r in server)
    assert "bad HTTP request from" in server[0].getMessage()
    assert "aaaa" not in caplog.text
    assert "Traceback" not in caplog.text

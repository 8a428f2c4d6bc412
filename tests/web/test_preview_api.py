"""The desktop's preview API: ask for a lead, see its pop when offered, call or skip it."""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from tests.web._api_support import account, debtor, unique
from tests.web._app_queue import AppQueue
from web import WebSettings, create_app
from web._desktop import desktop_extension


async def test_ask_offered_pop_then_call_once(db_pool: asyncpg.Pool) -> None:
    agent = await account(db_pool, "agent")
    other = await account(db_pool, "agent")
    d = await debtor(db_pool)
    preview = unique("pv")
    cid = await db_pool.fetchval(
        "INSERT INTO campaigns (code, name, creditor_id, mode, state)"
        " VALUES ($1, $1, $2, 'preview', 'running') RETURNING id",
        preview,
        d.creditor_id,
    )
    await db_pool.execute(
        "INSERT INTO campaigns (code, name, mode) VALUES ($1, $1, 'progressive')", preview + "x"
    )
    # The agent joins its own queue first (tests/web/test_agent_queues.py: when it cannot).
    ami = AppQueue.defining(f"preview-{agent.agent_code}")
    app = create_app(db_pool, WebSettings(), extensions=[desktop_extension(ami=lambda: ami)])
    async with TestClient(TestServer(app)) as http:
        r = await http.post(
            "/api/v1/agent/preview", json={"campaign": preview + "x"}, headers=agent.auth
        )
        assert r.status == 422
        assert (await r.json())["field"] == "campaign"
        r = await http.post("/api/v1/agent/preview", json={"campaign": preview}, headers=agent.auth)
        assert r.status == 200
        request_id = (await r.json())["id"]
        r = await http.post("/api/v1/agent/preview", json={"campaign": preview}, headers=agent.auth)
        assert r.status == 409  # one open request at a time

        # The pacer offers a lead: the attempt row is the intent (dialer/preview.py).
        attempt = uuid.uuid4()
        await db_pool.execute(
            "INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node, pbx)"
            " VALUES ($1, $2, $3, $4, $5, 'n', 'p')",
            attempt, cid, d.person_id, d.debt_id, d.phone_id,
        )  # fmt: skip
        await db_pool.execute(
            "UPDATE preview_requests SET state = 'offered', attempt_id = $2 WHERE id = $1",
            request_id,
            attempt,
        )
        body = await (await http.get("/api/v1/agent/preview", headers=agent.auth)).json()
        assert body["state"] == "offered"
        assert body["pop"]["debt"]["id"] == d.debt_id
        assert body["pop"]["attempt_id"] == str(attempt)

        path = f"/api/v1/agent/preview/{request_id}/call"
        assert (await http.post(path, headers=other.auth)).status == 409  # not theirs
        assert (await http.post(path, headers=agent.auth)).status == 200
        assert (await http.post(path, headers=agent.auth)).status == 409  # decided already
        state = await db_pool.fetchval(
            "SELECT state FROM preview_requests WHERE id = $1", request_id
        )
        assert state == "accepted"


async def test_asking_of_a_campaign_that_serves_no_requests(db_pool: asyncpg.Pool) -> None:
    # A preview campaign in draft (or stopped, or paused) has no pacer serving requests: the
    # request was accepted (200 'wanted'), never served, and every later ask, of any campaign,
    # was a 409 (one open request per agent) with no way to withdraw it.
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    draft, running = unique("pvd"), unique("pvr")
    for code, state in ((draft, "draft"), (running, "running")):
        await db_pool.execute(
            "INSERT INTO campaigns (code, name, creditor_id, mode, state)"
            " VALUES ($1, $1, $2, 'preview', $3)",
            code, d.creditor_id, state,
        )  # fmt: skip
    ami = AppQueue.defining(f"preview-{agent.agent_code}")
    app = create_app(db_pool, WebSettings(), extensions=[desktop_extension(ami=lambda: ami)])
    async with TestClient(TestServer(app)) as http:
        r = await http.post("/api/v1/agent/preview", json={"campaign": draft}, headers=agent.auth)
        assert r.status == 409
        body = await r.json()
        assert body["field"] == "campaign"
        assert "draft" in body["error"]
        # A request left waiting when its campaign stopped is closed by the next ask.
        r = await http.post("/api/v1/agent/preview", json={"campaign": running}, headers=agent.auth)
        assert r.status == 200
        first = (await r.json())["id"]
        await db_pool.execute("UPDATE campaigns SET state = 'stopped' WHERE code = $1", running)
        await db_pool.execute("UPDATE campaigns SET state = 'running' WHERE code = $1", draft)
        r = await http.post("/api/v1/agent/preview", json={"campaign": draft}, headers=agent.auth)
        assert r.status == 200, await r.text()
        state = await db_pool.fetchval("SELECT state FROM preview_requests WHERE id = $1", first)
        assert state == "closed"

"""Agents, their calls, dispositions (once each) with callbacks, and promises under policy."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from compliance import ComplianceGate
from compliance._types import Code
from ivr.plans import CreditorPolicy
from tests._plans import generic_plan, scans
from tests.web._api_support import (
    POLICY,
    account,
    attempt,
    audit_rows,
    campaign_row,
    debtor,
    served,
)
from tests.web._reads import reads
from web._agents import _ATTEMPTS, _ATTEMPTS_OF_AGENT, _ATTEMPTS_OF_CAMPAIGN
from web._promises import arrangement

NOW = datetime(2026, 11, 3, 17, 0, tzinfo=UTC)
TODAY = NOW.date()


async def test_agents_see_and_change_only_their_own(db_pool) -> None:
    me = await account(db_pool, "agent")
    other = await account(db_pool, "agent")
    sup = await account(db_pool, "supervisor")
    _, campaign = await campaign_row(db_pool, state="running")
    async with served(db_pool) as client:
        mine = await (await client.get("/api/v1/agents", headers=me.auth)).json()
        assert [a["code"] for a in mine["agents"]] == [me.agent_code]
        assert (mine["agents"][0]["state"], mine["agents"][0]["campaign"]) == ("logged_out", None)
        everyone = await (await client.get("/api/v1/agents", headers=sup.auth)).json()
        assert {me.agent_code, other.agent_code} <= {a["code"] for a in everyone["agents"]}

        url = f"/api/v1/agents/{me.agent_code}/state"
        r = await client.post(url, json={"state": "ready", "campaign": campaign}, headers=me.auth)
        assert r.status == 200
        assert (await r.json())["state"] == "ready"
        mine = await (await client.get("/api/v1/agents", headers=me.auth)).json()
        assert mine["agents"][0]["campaign"] == campaign  # (no PBX link: recorded only)
        r = await client.post(url, json={"state": "paused"}, headers=me.auth)
        assert r.status == 422
        assert (await r.json())["field"] == "reason"
        for reason in ("a\x85b", "a\u2028b"):  # (it goes to the QueuePause Reason header)
            r = await client.post(url, json={"state": "paused", "reason": reason},
                                  headers=me.auth)  # fmt: skip
            assert r.status == 422
            assert (await r.json())["field"] == "reason"
        r = await client.post(url, json={"state": "paused", "reason": "break"}, headers=me.auth)
        body = await r.json()
        assert (body["state"], body["reason"]) == ("paused", "break")
        r = await client.post(url, json={"state": "talking"}, headers=me.auth)
        assert r.status == 422
        assert (await r.json())["field"] == "state"
        r = await client.post(
            f"/api/v1/agents/{other.agent_code}/state", json={"state": "ready"}, headers=me.auth
        )
        assert r.status == 403
        r = await client.post(
            f"/api/v1/agents/{other.agent_code}/state",
            json={"state": "logged_out"},
            headers=sup.auth,
        )
        assert r.status == 200
        assert (
            await client.post(
                "/api/v1/agents/ghost/state", json={"state": "ready"}, headers=sup.auth
            )
        ).status == 404
    states = await db_pool.fetch(
        "SELECT state FROM agent_states WHERE agent_id = $1 ORDER BY id", me.agent_id
    )
    assert [s["state"] for s in states] == ["ready", "paused"]
    assert len(await audit_rows(db_pool, "agent.state", f"agent:{me.agent_code}")) == 2


async def test_an_agent_sees_only_its_own_attempts(db_pool) -> None:
    me = await account(db_pool, "agent")
    other = await account(db_pool, "agent")
    sup = await account(db_pool, "supervisor", agent=False)
    d = await debtor(db_pool)
    campaign_id, code = await campaign_row(db_pool, d.creditor_id)
    mine = {await attempt(db_pool, d, campaign_id, agent_id=me.agent_id) for _ in range(2)}
    theirs = await attempt(db_pool, d, campaign_id, agent_id=other.agent_id)
    async with served(db_pool) as client:
        for query in ("", "?mine=1", "?mine=0"):
            r = await client.get(f"/api/v1/attempts{query}", headers=me.auth)
            got = {a["id"] for a in (await r.json())["attempts"]}
            assert got == mine, query
        r = await client.get(f"/api/v1/attempts?campaign={code}", headers=sup.auth)
        listed = (await r.json())["attempts"]
        assert {a["id"] for a in listed} == mine | {theirs}
        assert all(a["phone"].startswith("+52") and "*" in a["phone"] for a in listed)
        r = await client.get("/api/v1/attempts?mine=1", headers=sup.auth)
        assert (await r.json())["attempts"] == []  # no agent behind this supervisor
        r = await client.get("/api/v1/attempts?mine=maybe", headers=sup.auth)
        assert r.status == 422
        assert (await r.json())["field"] == "mine"


async def test_an_agents_attempts_are_read_by_its_index(db_pool) -> None:
    # 20,000 attempts of two agents: the agent's page reads its newest few by
    # call_attempts_agent_idx and stops. Checked on the generic plan a prepared statement may
    # cache: through "($1 IS NULL OR agent_id = $1)" it read and sorted every attempt.
    me = await account(db_pool, "agent")
    other = await account(db_pool, "agent")
    d = await debtor(db_pool)
    await db_pool.execute(
        """INSERT INTO call_attempts (id, person_id, debt_id, phone_id, node, pbx, state,
                                      disposition, agent_id, created_at)
           SELECT gen_random_uuid(), $1, $2, $3, 'n', 'p', 'final', 'agent',
                  CASE WHEN g % 2 = 0 THEN $4::bigint ELSE $5::bigint END,
                  $6::timestamptz - g * interval '1 minute'
           FROM generate_series(1, 20000) g""",
        d.person_id, d.debt_id, d.phone_id, me.agent_id, other.agent_id, NOW,
    )  # fmt: skip
    await db_pool.execute("ANALYZE call_attempts")
    plan = await generic_plan(
        db_pool, _ATTEMPTS_OF_AGENT, "bigint, text, int", me.agent_id, None, 5
    )
    nodes = scans(plan["Plan"])
    assert plan["Plan"]["Actual Rows"] == 5
    on_attempts = [s for s in nodes if s[1] == "call_attempts"]
    assert [s[2] for s in on_attempts] == ["call_attempts_agent_idx"], nodes
    assert sum(s[3] for s in on_attempts) <= 50, nodes
    async with served(db_pool) as client:
        r = await client.get("/api/v1/attempts?limit=3", headers=me.auth)
        got = (await r.json())["attempts"]
    assert [a["agent"] for a in got] == [me.agent_code] * 3
    assert [a["created_at"] for a in got] == sorted((a["created_at"] for a in got), reverse=True)


async def test_the_supervisors_attempts_are_read_by_index(db_pool) -> None:
    # 20,000 attempts: 10,000 of one campaign, then 10,000 older ones of another. Everyone's
    # newest few are read by call_attempts_created_idx, one campaign's by
    # call_attempts_campaign_created_idx, and the reads stop there. Checked on the generic
    # plan a prepared statement may cache: through "($2 IS NULL OR c.code = $2)" each read and
    # sorted every attempt (~400 ms at 500,000 attempts; ~1 ms now).
    sup = await account(db_pool, "supervisor", agent=False)
    d = await debtor(db_pool)
    new_id, _ = await campaign_row(db_pool, d.creditor_id)
    old_id, old = await campaign_row(db_pool, d.creditor_id)
    await db_pool.execute(
        """INSERT INTO call_attempts (id, campaign_id, person_id, debt_id, phone_id, node, pbx,
                                      state, disposition, created_at)
           SELECT gen_random_uuid(), CASE WHEN g <= 10000 THEN $1::bigint ELSE $2::bigint END,
                  $3, $4, $5, 'n', 'p', 'final', 'no_answer',
                  $6::timestamptz - (g / 2) * interval '1 minute'
           FROM generate_series(1, 20000) g""",
        new_id, old_id, d.person_id, d.debt_id, d.phone_id, NOW + timedelta(days=3650),
    )  # fmt: skip
    await db_pool.execute("ANALYZE call_attempts")
    for sql, campaign in ((_ATTEMPTS, None), (_ATTEMPTS_OF_CAMPAIGN, old)):
        plan = await generic_plan(db_pool, sql, "bigint, text, int", None, campaign, 5)
        assert plan["Plan"]["Actual Rows"] == 5
        read = reads(plan["Plan"], "call_attempts")
        assert all(kind != "Seq Scan" for kind, *_ in read), (campaign, read)
        # the page (pairs of attempts share a time: one more for the order by id), then by key
        assert sum(n for *_, n in read) <= 12, (campaign, read)
    # the same rows in the same order (ties by id) as the whole table sorted
    newest = "SELECT id::text FROM call_attempts {} ORDER BY created_at DESC, id LIMIT 7"
    async with served(db_pool) as client:
        for query, want in (
            ("", await db_pool.fetch(newest.format(""))),
            (f"&campaign={old}",
             await db_pool.fetch(newest.format("WHERE campaign_id = $1"), old_id)),
        ):  # fmt: skip
            r = await client.get(f"/api/v1/attempts?limit=7{query}", headers=sup.auth)
            got = [a["id"] for a in (await r.json())["attempts"]]
            assert got == [w["id"] for w in want], query


async def test_a_disposition_is_recorded_once_and_schedules_the_callback(db_pool) -> None:
    me = await account(db_pool, "agent")
    other = await account(db_pool, "agent")
    d = await debtor(db_pool)
    campaign_id, _ = await campaign_row(db_pool, d.creditor_id)
    await db_pool.execute(
        "INSERT INTO leads (campaign_id, person_id, debt_id, state) VALUES ($1, $2, $3, 'done')",
        campaign_id,
        d.person_id,
        d.debt_id,
    )
    call = await attempt(db_pool, d, campaign_id, agent_id=me.agent_id, disposition=None)
    callback_at = (NOW + timedelta(days=1)).isoformat()
    async with served(db_pool, clock=lambda: NOW) as client:
        url = f"/api/v1/attempts/{call}/disposition"
        r = await client.post(url, json={"code": "callback"}, headers=me.auth)
        assert r.status == 422
        assert (await r.json())["field"] == "callback_at"
        r = await client.post(url, json={"code": "promise_to_pay"}, headers=other.auth)
        assert r.status == 403
        body = {"code": "callback", "notes": "call after lunch", "callback_at": callback_at}
        r = await client.post(url, json=body, headers=me.auth)
        assert r.status == 201, await r.text()
        recorded = await r.json()
        assert recorded["right_party"] is True
        assert recorded["callback_id"] is not None
        r = await client.post(url, json={"code": "other"}, headers=me.auth)
        assert r.status == 409
        missing = "/api/v1/attempts/00000000-0000-0000-0000-000000000000/disposition"
        assert (await client.post(missing, json={"code": "other"}, headers=me.auth)).status == 404
        r = await client.post(
            "/api/v1/attempts/not-a-uuid/disposition", json={"code": "other"}, headers=me.auth
        )
        assert r.status == 422
        assert (await r.json())["field"] == "id"
    row = await db_pool.fetchrow("SELECT * FROM dispositions WHERE attempt_id = $1::uuid", call)
    assert (row["code"], row["source"], row["agent_id"]) == ("callback", "agent", me.agent_id)
    cb = await db_pool.fetchrow("SELECT * FROM callbacks WHERE id = $1", recorded["callback_id"])
    assert cb["due_at"] == NOW + timedelta(days=1)
    assert cb["requested_by"] == me.name
    assert cb["source"] == "agent"
    assert cb["phone_id"] == d.phone_id
    (audited,) = await audit_rows(db_pool, "disposition.record", f"attempt:{call}")
    assert "lunch" not in audited["details"]  # notes stay out of the audit log


async def test_a_callback_asked_in_wrap_up_makes_the_calls_lead_due_again(db_pool) -> None:
    # The usual order: the call ends (its lead 'done': an agent took it), then the agent
    # records the callback. It was accepted (201) with its lead left 'done', and nothing ever
    # dialed it: selection only claims ready leads.
    me = await account(db_pool, "agent")
    d = await debtor(db_pool)
    campaign_id, _ = await campaign_row(db_pool, d.creditor_id)
    lead_id = await db_pool.fetchval(
        "INSERT INTO leads (campaign_id, person_id, debt_id, state) VALUES ($1, $2, $3, 'done')"
        " RETURNING id",
        campaign_id, d.person_id, d.debt_id,
    )  # fmt: skip
    call = await attempt(db_pool, d, campaign_id, agent_id=me.agent_id)
    await db_pool.execute("UPDATE call_attempts SET lead_id = $2 WHERE id = $1::uuid", call,
                          lead_id)  # fmt: skip
    due = NOW + timedelta(days=1)
    async with served(db_pool, clock=lambda: NOW) as client:
        url = f"/api/v1/attempts/{call}/disposition"
        for code in ("cease_request", "deceased", "wrong_party"):
            r = await client.post(
                url, json={"code": code, "callback_at": due.isoformat()}, headers=me.auth
            )
            assert r.status == 422, code
            assert (await r.json())["field"] == "callback_at"
        r = await client.post(
            url, json={"code": "callback", "callback_at": due.isoformat()}, headers=me.auth
        )
        assert r.status == 201, await r.text()
    lead = await db_pool.fetchrow("SELECT state, next_try_at FROM leads WHERE id = $1", lead_id)
    assert (lead["state"], lead["next_try_at"]) == ("ready", due)
    cb = await db_pool.fetchrow("SELECT lead_id, due_at FROM callbacks WHERE debt_id = $1",
                                d.debt_id)  # fmt: skip
    assert (cb["lead_id"], cb["due_at"]) == (lead_id, due)


async def test_wrong_party_marks_the_number(db_pool) -> None:
    me = await account(db_pool, "agent")
    d = await debtor(db_pool)
    call = await attempt(db_pool, d, None, agent_id=me.agent_id)
    async with served(db_pool) as client:
        r = await client.post(
            f"/api/v1/attempts/{call}/disposition", json={"code": "wrong_party"}, headers=me.auth
        )
        assert r.status == 201
        assert (await r.json())["right_party"] is False
    status = await db_pool.fetchval("SELECT status FROM phone_numbers WHERE id = $1", d.phone_id)
    assert status == "wrong_party"


async def test_a_cease_request_or_a_death_blocks_every_later_dial_to_the_person(db_pool) -> None:
    # Ending the lead was all these did: another campaign, or the next upload, called again.
    me = await account(db_pool, "agent")
    for code in ("cease_request", "deceased"):
        d = await debtor(db_pool)
        call = await attempt(db_pool, d, None, agent_id=me.agent_id)
        async with served(db_pool) as client:
            r = await client.post(
                f"/api/v1/attempts/{call}/disposition", json={"code": code}, headers=me.auth
            )
            assert r.status == 201, await r.text()
            block_id = (await r.json())["block_id"]
        block = await db_pool.fetchrow("SELECT * FROM contact_blocks WHERE id = $1", block_id)
        assert (block["kind"], block["person_id"], block["debt_id"]) == ("cease", d.person_id, None)
        assert block["source"] == f"disposition:{me.name}"
        decision = await ComplianceGate(db_pool).check(
            person_id=d.person_id, debt_ids=(d.debt_id,), phone=d.e164, packs=("mx",),
            channel="autodialed_voice", now=datetime.now(UTC),
        )  # fmt: skip
        assert not decision.allowed
        assert Code.CEASE in {r.code for r in decision.reasons}
    other = await debtor(db_pool)
    call = await attempt(db_pool, other, None, agent_id=me.agent_id)
    async with served(db_pool) as client:
        r = await client.post(
            f"/api/v1/attempts/{call}/disposition", json={"code": "refused_to_pay"},
            headers=me.auth,
        )  # fmt: skip
        assert (await r.json())["block_id"] is None


def test_arrangement_uses_the_ivr_policy_functions() -> None:
    policy = CreditorPolicy.from_json(POLICY, creditor="acme")
    due = (TODAY + timedelta(days=10)).isoformat()
    assert arrangement({"amount_cents": 20_000, "due": due}, 150_000, policy, TODAY) == (
        "custom",
        [{"due": due, "amount_cents": 20_000}],
        20_000,
    )
    kind, instalments, total = arrangement({"plan": {"months": 3}}, 150_000, policy, TODAY)
    assert kind == "plan"
    assert total == 150_000
    assert len(instalments) == 3
    assert sum(i["amount_cents"] for i in instalments) == 150_000


async def test_promises_within_and_outside_the_policy(db_pool) -> None:
    me = await account(db_pool, "agent")
    other = await account(db_pool, "agent")
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool, balance_cents=150_000)
    call = await attempt(db_pool, d, None, agent_id=me.agent_id)
    due = (TODAY + timedelta(days=7)).isoformat()
    async with served(db_pool, clock=lambda: NOW) as client:
        refused = [
            ({"amount_cents": 500, "due": due}, "amount_cents", "between"),
            ({"amount_cents": 999_999, "due": due}, "amount_cents", "between"),
            (
                {"amount_cents": 20_000, "due": (TODAY + timedelta(days=45)).isoformat()},
                "due",
                "promise date",
            ),
            ({"amount_cents": 20_000}, "due", "required"),
            ({"plan": {"months": 12}}, "plan.months", "2 to 6 months"),
            ({"plan": {"months": 3, "first_due": "2027-06-01"}}, "plan.first_due", "first payment"),
            (
                {"amount_cents": 20_000, "due": due, "plan": {"months": 2}},
                "amount_cents",
                "not both",
            ),
        ]
        for extra, field, why in refused:
            body = {"debt_id": d.debt_id, "attempt_id": call, **extra}
            r = await client.post("/api/v1/promises", json=body, headers=me.auth)
            answer = await r.json()
            assert r.status == 422, (extra, answer)
            assert answer["field"] == field, (extra, answer)
            assert why in answer["error"], (extra, answer)
        # Not the agent's call, or no call at all.
        body = {"debt_id": d.debt_id, "attempt_id": call, "amount_cents": 20_000, "due": due}
        assert (await client.post("/api/v1/promises", json=body, headers=other.auth)).status == 403
        r = await client.post(
            "/api/v1/promises",
            headers=me.auth,
            json={"debt_id": d.debt_id, "amount_cents": 20_000, "due": due},
        )
        assert r.status == 422
        assert (await r.json())["field"] == "attempt_id"

        r = await client.post("/api/v1/promises", json=body, headers=me.auth)
        assert r.status == 201, await r.text()
        promise = await r.json()
        assert promise["kind"] == "custom"
        assert promise["total_cents"] == 20_000
        assert promise["plan"] == [{"due": due, "amount_cents": 20_000}]
        assert promise["source"] == "agent"
        assert len(promise["confirmation_code"]) == 8
        assert promise["first_due"] == due == promise["last_due"]
        r = await client.post("/api/v1/promises", json=body, headers=me.auth)
        assert r.status == 409  # one active promise per debt

        # A supervisor records a plan on another debt, without a call.
        d2 = await debtor(db_pool, balance_cents=90_000)
        r = await client.post(
            "/api/v1/promises",
            headers=sup.auth,
            json={"debt_id": d2.debt_id, "plan": {"months": 3}},
        )
        assert r.status == 201
        plan = await r.json()
        assert plan["kind"] == "plan"
        assert plan["source"] == "api"
        assert len(plan["plan"]) == 3
        assert sum(i["amount_cents"] for i in plan["plan"]) == 90_000

        listed = await (
            await client.get(f"/api/v1/promises?debt_id={d.debt_id}", headers=sup.auth)
        ).json()
        assert [p["id"] for p in listed["promises"]] == [promise["id"]]
        mine = await (await client.get("/api/v1/promises", headers=me.auth)).json()
        assert [p["id"] for p in mine["promises"]] == [promise["id"]]  # not d2's
        theirs = await (await client.get("/api/v1/promises", headers=other.auth)).json()
        assert theirs["promises"] == []
    assert await db_pool.fetchval("SELECT status FROM debts WHERE id = $1", d.debt_id) == (
        "promised"
    )
    (row,) = await audit_rows(db_pool, "promise.create", f"debt:{d.debt_id}")
    assert json.loads(row["details"])["total_cents"] == 20_000
    assert row["actor"] == me.name
    assert date.fromisoformat(due) > TODAY

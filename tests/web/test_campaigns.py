"""Campaigns through the API: create, edit, start/pause/stop, status; the OpenAPI document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.web._api_support import (
    account,
    attempt,
    audit_rows,
    campaign_row,
    debtor,
    served,
    unique,
)
from web import create_app
from web._api import API_BASE
from web._keys import API_ROUTES, IVR_SCRIPTS


def _new(code: str, **extra) -> dict:
    return {
        "code": code,
        "name": f"Campaign {code}",
        "mode": "predictive",
        "queue_name": "q1",
        "compliance_packs": ["mx"],
        "ring_timeout_s": 30,
        "abandon_target": 0.03,
        "retry_schedule": {"busy": "20m", "max_attempts": 5},
        "settings": {"language": "es", "max_lines": 50},
        "caller_id": '"Servicios Acme" <+525512345678>',
        **extra,
    }


async def test_create_edit_start_pause_stop_with_audit(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    code = unique("c")
    async with served(db_pool) as client:
        h = sup.auth
        r = await client.post("/api/v1/campaigns", json=_new(code, creditor=d.creditor), headers=h)
        assert r.status == 201, await r.text()
        created = await r.json()
        assert created["state"] == "draft"
        assert created["creditor"] == d.creditor
        assert created["retry_schedule"] == {"busy": "20m", "max_attempts": 5}
        assert (await client.post("/api/v1/campaigns", json=_new(code), headers=h)).status == 409

        r = await client.patch(
            f"/api/v1/campaigns/{code}",
            json={"name": "Renamed", "settings": {"max_lines": 80}},
            headers=h,
        )
        assert r.status == 200
        edited = await r.json()
        assert edited["name"] == "Renamed"
        assert edited["settings"] == {"max_lines": 80}
        assert edited["mode"] == "predictive"  # untouched

        states = []
        for action in ("start", "pause", "start", "stop"):
            r = await client.post(f"/api/v1/campaigns/{code}/{action}", headers=h)
            assert r.status == 200, await r.text()
            states.append((await r.json())["state"])
        assert states == ["running", "paused", "running", "stopped"]
        r = await client.post(f"/api/v1/campaigns/{code}/pause", headers=h)
        assert r.status == 409
        assert (await r.json())["field"] == "state"

        r = await client.get(f"/api/v1/campaigns/{code}", headers=h)
        assert (await r.json())["state"] == "stopped"
        listed = await (await client.get("/api/v1/campaigns", headers=h)).json()
        assert code in [c["code"] for c in listed["campaigns"]]
    assert await db_pool.fetchval("SELECT state FROM campaigns WHERE code = $1", code) == "stopped"
    subject = f"campaign:{code}"
    assert len(await audit_rows(db_pool, "campaign.create", subject)) == 1
    edits = await audit_rows(db_pool, "campaign.edit", subject)
    assert edits[0]["actor"] == sup.name
    assert json.loads(edits[0]["details"])["changes"]["name"] == {
        "from": f"Campaign {code}",
        "to": "Renamed",
    }
    for action, n in (("start", 2), ("pause", 1), ("stop", 1)):
        rows = await audit_rows(db_pool, f"campaign.{action}", subject)
        assert len(rows) == n
        assert all(r["actor"] == sup.name for r in rows)


async def test_a_second_active_campaign_on_one_queue_is_refused(db_pool) -> None:
    # Each campaign's pacer counts its queue's free members as its own agents: two active
    # campaigns on one queue would both dial for the same agents and abandon the extra calls.
    sup = await account(db_pool, "supervisor")
    queue = unique("q")
    first, second, preview, elsewhere = (unique("c") for _ in range(4))
    async with served(db_pool) as client:
        h = sup.auth
        for code, extra in ((first, {}), (second, {}), (preview, {"mode": "preview"}),
                            (elsewhere, {"queue_name": unique("q")})):  # fmt: skip
            body = {**_new(code), "queue_name": queue, **extra}
            assert (await client.post("/api/v1/campaigns", json=body, headers=h)).status == 201

        async def act(code: str, action: str) -> tuple[int, dict]:
            r = await client.post(f"/api/v1/campaigns/{code}/{action}", headers=h)
            return r.status, await r.json()

        assert (await act(first, "start"))[0] == 200
        refused = {
            "error": f"campaign {first!r} is running on queue {queue}: two active campaigns on"
            " one queue would count the same agents as free and both dial for them; stop"
            f" {first!r} or give {second!r} a queue_name of its own",
            "field": "queue_name",
        }
        assert await act(second, "start") == (409, refused)
        assert (await act(first, "pause"))[0] == 200  # paused: its agents are still its own
        assert await act(second, "start") == (409, {
            **refused, "error": refused["error"].replace("is running", "is paused")
        })  # fmt: skip
        assert (await act(first, "start"))[0] == 200  # from paused: it was active already
        assert (await act(preview, "start"))[0] == 200  # preview: the agents' own queues
        assert (await act(elsewhere, "start"))[0] == 200  # a queue of its own
        assert (await act(second, "stop"))[0] == 200  # stopping is never refused
        assert (await act(first, "stop"))[0] == 200
        assert (await act(second, "start"))[0] == 200  # the queue is free now

        async def edit(code: str, body: dict) -> int:
            r = await client.patch(f"/api/v1/campaigns/{code}", json=body, headers=h)
            return r.status

        # Moving an active campaign onto the queue, or out of preview mode there, is a start.
        assert await edit(elsewhere, {"queue_name": queue}) == 409
        assert await edit(preview, {"mode": "predictive"}) == 409
        assert await edit(elsewhere, {"name": "Renamed"}) == 200  # its queue unchanged
    state = await db_pool.fetchval("SELECT state FROM campaigns WHERE code = $1", second)
    assert state == "running"
    assert await audit_rows(db_pool, "campaign.start", f"campaign:{second}") != []


async def test_an_agentless_flow_must_be_a_script_the_ivr_answers(db_pool) -> None:
    # Its answered calls reach FastAGI with that script: an unknown one was accepted, and the
    # dialplan then hung up on every person in silence.
    admin = await account(db_pool, "admin")
    scripts = frozenset({"reminder", "inbound"})
    with_ivr = [lambda app: app.__setitem__(IVR_SCRIPTS, scripts)]
    async with served(db_pool, extensions=with_ivr) as client:
        bad = _new(unique("ag"), mode="agentless", agentless_flow="nope")
        r = await client.post("/api/v1/campaigns", json=bad, headers=admin.auth)
        body = await r.json()
        assert (r.status, body["field"]) == (422, "agentless_flow"), body
        assert "known: inbound, reminder" in body["error"]
        good = _new(unique("ag"), mode="agentless", agentless_flow="reminder")
        r = await client.post("/api/v1/campaigns", json=good, headers=admin.auth)
        assert r.status == 201, await r.text()
        r = await client.patch(
            f"/api/v1/campaigns/{good['code']}", json={"agentless_flow": "nope"},
            headers=admin.auth,
        )  # fmt: skip
        assert r.status == 422


async def test_a_bad_campaign_names_the_field(db_pool) -> None:
    admin = await account(db_pool, "admin")
    cases = [
        ({"settings": {"max_lines": -1}}, "settings.max_lines"),
        ({"settings": {"colour": "red"}}, "settings"),
        ({"retry_schedule": {"busy": "soon"}}, "retry_schedule.busy"),
        ({"mode": "agentless"}, "agentless_flow"),
        ({"compliance_packs": ["nowhere"]}, "compliance_packs"),
        ({"compliance_packs": []}, "compliance_packs"),
        ({"ring_timeout_s": 2}, "ring_timeout_s"),
        ({"creditor": "no-such-creditor"}, "creditor"),
        ({"surprise": 1}, "surprise"),
        # Each was accepted, and then every Originate failed (the AMI encoder refuses a CR or
        # LF in a header): dials ended 'lost', still counted against the debtor's call caps.
        ({"caller_id": "Demo\r\nX: y"}, "caller_id"),
        ({"trunk": "PJSIP/tr unk\nfoo"}, "trunk"),
        ({"settings": {"max_lines": 10**21}}, "settings.max_lines"),
        ({"queue_name": "preview-a101"}, "queue_name"),  # agent a101's own preview queue
        # A caller ID must show a number debtors can call back (FDCPA 1692d(6); CONDUSEF).
        ({"caller_id": '"Servicios Acme"'}, "caller_id"),
        ({"caller_id": '"Anonymous" <anonymous>'}, "caller_id"),
        ({"caller_id": "5512345678"}, "caller_id"),  # not E.164: which country?
        ({"caller_id": "+15550100000"}, "caller_id"),  # no such number
    ]
    async with served(db_pool) as client:
        for change, field in cases:
            code = unique("bad")
            r = await client.post(
                "/api/v1/campaigns", json=_new(code, **change), headers=admin.auth
            )
            body = await r.json()
            assert r.status == 422, (change, body)
            assert body["field"] == field, (change, body)
        # Edits are checked the same way, and leave the row as it was.
        _, code = await campaign_row(db_pool)
        r = await client.patch(
            f"/api/v1/campaigns/{code}",
            json={"retry_schedule": {"busy": "soon"}},
            headers=admin.auth,
        )
        body = await r.json()
        assert r.status == 422
        assert body["field"] == "retry_schedule.busy"
        assert "expected seconds or a duration" in body["error"]
        assert (
            await client.patch("/api/v1/campaigns/nope", json={"name": "x"}, headers=admin.auth)
        ).status == 404
        assert (await client.post("/api/v1/campaigns/nope/start", headers=admin.auth)).status == 404
        r = await client.post(
            "/api/v1/campaigns",
            data=b"{not json",
            headers={**admin.auth, "Content-Type": "application/json"},
        )
        assert r.status == 400


async def test_a_campaign_without_a_caller_id_number_does_not_start(db_pool) -> None:
    admin = await account(db_pool, "admin")
    code = unique("nocid")
    async with served(db_pool) as client:
        # A draft may be made before its number is known...
        r = await client.post("/api/v1/campaigns", json=_new(code, caller_id=None),
                              headers=admin.auth)  # fmt: skip
        assert r.status == 201, await r.text()
        # ...but it dials only with one: without it the trunk sends whatever it has.
        r = await client.post(f"/api/v1/campaigns/{code}/start", headers=admin.auth)
        body = await r.json()
        assert (r.status, body["field"]) == (422, "caller_id"), body
        assert "none is set" in body["error"]
        r = await client.patch(f"/api/v1/campaigns/{code}", json={"caller_id": "+525512345678"},
                               headers=admin.auth)  # fmt: skip
        assert r.status == 200, await r.text()
        r = await client.post(f"/api/v1/campaigns/{code}/start", headers=admin.auth)
        assert r.status == 200, await r.text()
    assert await db_pool.fetchval("SELECT state FROM campaigns WHERE code = $1", code) == (
        "running"
    )


async def test_status_counts_leads_attempts_and_abandonment(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    campaign_id, code = await campaign_row(db_pool, d.creditor_id, state="running")
    await db_pool.execute(
        "INSERT INTO leads (campaign_id, person_id, debt_id, state) VALUES ($1, $2, $3, 'ready')",
        campaign_id,
        d.person_id,
        d.debt_id,
    )
    now = datetime.now(UTC)
    for disposition in ("agent", "agent", "abandoned", "busy", "machine"):
        await attempt(db_pool, d, campaign_id, disposition=disposition, at=now)
    await attempt(db_pool, d, campaign_id, disposition="abandoned", at=now - timedelta(days=3))
    async with served(db_pool) as client:
        r = await client.get(f"/api/v1/campaigns/{code}/status", headers=sup.auth)
        assert r.status == 200
        s = await r.json()
    assert s["state"] == "running"
    assert s["leads"] == {"ready": 1}
    assert s["attempts_today"]["agent"] == 2
    assert s["attempts_today"]["busy"] == 1
    assert s["abandonment"]["today"] == {"abandoned": 1, "live": 3, "rate": round(1 / 3, 6)}
    assert s["abandonment"]["window"]["abandoned"] == 2
    assert s["abandonment"]["window"]["live"] == 4


async def test_openapi_lists_every_route(db_pool) -> None:
    user = await account(db_pool, "agent")
    app = create_app(db_pool)
    async with served(db_pool) as client:
        r = await client.get("/api/v1/openapi.json", headers=user.auth)
        assert r.status == 200
        doc = await r.json()
    assert isinstance(doc, dict)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": API_BASE}]
    served_routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith(API_BASE)
        and r.method != "HEAD"
    }
    documented = {
        (method.upper(), API_BASE + path) for path, ops in doc["paths"].items() for method in ops
    }
    assert documented == served_routes
    assert len(documented) == len(app[API_ROUTES]) >= 25
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    create = doc["paths"]["/campaigns"]["post"]
    assert create["x-roles"] == ["admin", "supervisor"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["code", "name"]
    assert schema["properties"]["ring_timeout_s"] == {
        "type": "integer",
        "minimum": 5,
        "maximum": 120,
    }
    upload = doc["paths"]["/campaigns/{code}/leads"]["post"]
    assert "text/csv" in upload["requestBody"]["content"]
    params = {p["name"]: p for p in doc["paths"]["/reports/daily.csv"]["get"]["parameters"]}
    assert params["date"]["required"]
    assert not params["campaign"]["required"]

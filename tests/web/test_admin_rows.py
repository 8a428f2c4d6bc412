"""Agents and creditors rows over the API and ``puente agents`` / ``puente creditors``: create,
list, edit, validation naming the field, duplicates, roles, audit, and their use by campaigns
and users (what a fresh deployment needs without SQL)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from puente.cli import main
from tests.web._api_support import PASSWORD, POLICY, account, audit_rows, served, unique
from web import create_app
from web._keys import API_ROUTES
from web._users import disable_user

NO_DATABASE = "postgresql://puente@127.0.0.1:1/none"  # connection refused
# Valid numbers that nobody else in this module uses (the IVR needs one creditor per number).
_numbers = iter(f"+5255{n:08d}" for n in range(51_234_500, 51_234_600))


def _creditor(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Banco {code}",
        "public_name": "Servicios Acme",
        "callback_number": next(_numbers),
        "currency": "MXN",
        **extra,
    }


def _agent(code: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Agente {code}", "interface": f"PJSIP/{code}", **extra}


# -- agents over the API ----------------------------------------------------------------------
async def test_agents_create_list_edit_with_audit(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    code = unique("a")
    async with served(db_pool) as http:
        r = await http.post("/api/v1/agents", json=_agent(code), headers=sup.auth)
        assert r.status == 201, await r.text()
        created = await r.json()
        assert created["code"] == code
        assert created["interface"] == f"PJSIP/{code}"
        assert created["state"] == "logged_out"
        assert created["username"] is None

        listed = await (await http.get("/api/v1/agents", headers=sup.auth)).json()
        assert created in listed["agents"]

        r = await http.patch(f"/api/v1/agents/{code}", json={"name": "Ana Ruiz"}, headers=sup.auth)
        assert r.status == 200, await r.text()
        assert (await r.json())["name"] == "Ana Ruiz"
        local = {"interface": "Local/101@agents/n"}
        r = await http.patch(f"/api/v1/agents/{code}", json=local, headers=sup.auth)
        assert r.status == 200, await r.text()
        assert (await r.json())["interface"] == "Local/101@agents/n"

        r = await http.patch(f"/api/v1/agents/{code}", json={}, headers=sup.auth)
        assert (r.status, (await r.json())["field"]) == (422, "body")
        r = await http.patch("/api/v1/agents/nobody", json={"name": "X"}, headers=sup.auth)
        assert r.status == 404
    row = await db_pool.fetchrow("SELECT name, interface FROM agents WHERE code = $1", code)
    assert tuple(row) == ("Ana Ruiz", "Local/101@agents/n")
    subject = f"agent:{code}"
    [made] = await audit_rows(db_pool, "agent.create", subject)
    assert made["actor"] == sup.name
    assert json.loads(made["details"])["values"]["interface"] == f"PJSIP/{code}"
    edits = await audit_rows(db_pool, "agent.edit", subject)
    assert [json.loads(e["details"])["changes"] for e in edits] == [
        {"name": {"from": f"Agente {code}", "to": "Ana Ruiz"}},
        {"interface": {"from": f"PJSIP/{code}", "to": "Local/101@agents/n"}},
    ]


async def test_a_remote_agents_phone_number_is_audited_masked(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    code = unique("a")
    home, mobile = "PJSIP/+5215512345678@trunk", "PJSIP/+5215587654321@trunk"
    async with served(db_pool) as http:
        r = await http.post("/api/v1/agents", json=_agent(code, interface=home), headers=sup.auth)
        assert r.status == 201, await r.text()
        r = await http.patch(f"/api/v1/agents/{code}", json={"interface": mobile},
                             headers=sup.auth)  # fmt: skip
        assert r.status == 200, await r.text()
    rows = [
        *await audit_rows(db_pool, "agent.create", f"agent:{code}"),
        *await audit_rows(db_pool, "agent.edit", f"agent:{code}"),
    ]
    text = " ".join(r["details"] for r in rows)
    assert len(rows) == 2
    assert "12345678" not in text
    assert "87654321" not in text
    assert "5678@trunk" in text  # (the last digits tell which)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interface": "PJSIP/agent 101"}, "interface"),  # a blank
        ({"interface": "PJSIP/a,b"}, "interface"),  # a comma splits dialplan arguments
        ({"interface": "PJSIP/a\r\nAction: Originate"}, "interface"),  # AMI header injection
        ({"interface": "agent101"}, "interface"),  # no technology
        ({"interface": "PJSIP/"}, "interface"),
        ({"interface": "PJSIP/a&PJSIP/b"}, "interface"),
        ({"name": ""}, "name"),
        ({"name": " Ana"}, "name"),  # Asterisk would trim it
        ({"name": "Ana\nRuiz"}, "name"),
        ({"code": "a 1"}, "code"),
        ({"code": None}, "code"),
        ({"active": False}, "active"),  # unknown field
    ],
)
async def test_agent_validation_names_the_field(db_pool, body: dict, field: str) -> None:
    admin = await account(db_pool, "admin")
    code = unique("v")
    async with served(db_pool) as http:
        r = await http.post("/api/v1/agents", json={**_agent(code), **body}, headers=admin.auth)
        assert r.status == 422, await r.text()
        assert (await r.json())["field"] == field
    assert await db_pool.fetchval("SELECT count(*) FROM agents WHERE code = $1", code) == 0
    for missing in ("code", "name", "interface"):
        async with served(db_pool) as http:
            partial = {k: v for k, v in _agent(code).items() if k != missing}
            r = await http.post("/api/v1/agents", json=partial, headers=admin.auth)
            assert (r.status, (await r.json())["field"]) == (422, missing)


async def test_agent_duplicates_are_409_naming_code_or_interface(db_pool) -> None:
    admin = await account(db_pool, "admin")
    first, second = unique("d"), unique("d")
    async with served(db_pool) as http:
        assert (
            await http.post("/api/v1/agents", json=_agent(first), headers=admin.auth)
        ).status == 201
        assert (
            await http.post("/api/v1/agents", json=_agent(second), headers=admin.auth)
        ).status == 201
        r = await http.post("/api/v1/agents", json=_agent(first, interface="PJSIP/other"),
                            headers=admin.auth)  # fmt: skip
        assert (r.status, (await r.json())["field"]) == (409, "code")
        r = await http.post("/api/v1/agents", json=_agent(unique("d"), interface=f"PJSIP/{first}"),
                            headers=admin.auth)  # fmt: skip
        body = await r.json()
        assert (r.status, body["field"]) == (409, "interface")
        assert first in body["error"]
        r = await http.patch(f"/api/v1/agents/{second}", json={"interface": f"PJSIP/{first}"},
                             headers=admin.auth)  # fmt: skip
        assert (r.status, (await r.json())["field"]) == (409, "interface")
    assert (
        await db_pool.fetchval("SELECT interface FROM agents WHERE code = $1", second)
        == f"PJSIP/{second}"
    )


async def test_an_agent_taking_calls_keeps_its_interface(db_pool) -> None:
    admin = await account(db_pool, "admin")
    code = unique("busy")
    async with served(db_pool) as http:
        agent = await (
            await http.post("/api/v1/agents", json=_agent(code), headers=admin.auth)
        ).json()
        agent_id = await db_pool.fetchval("SELECT id FROM agents WHERE code = $1", code)
        await db_pool.execute(
            "INSERT INTO agent_states (agent_id, state) VALUES ($1, 'ready')", agent_id
        )
        r = await http.patch(f"/api/v1/agents/{code}", json={"interface": "PJSIP/new"},
                             headers=admin.auth)  # fmt: skip
        body = await r.json()
        assert (r.status, body["field"]) == (409, "interface")
        assert "ready" in body["error"]
        assert "log it out" in body["error"]
        # Its name may change (the queue shows it when it next joins).
        r = await http.patch(f"/api/v1/agents/{code}", json={"name": "Ana"}, headers=admin.auth)
        assert r.status == 200
        await db_pool.execute(
            "INSERT INTO agent_states (agent_id, state) VALUES ($1, 'logged_out')", agent_id
        )
        r = await http.patch(f"/api/v1/agents/{code}", json={"interface": "PJSIP/new"},
                             headers=admin.auth)  # fmt: skip
        assert r.status == 200
    assert agent["interface"] == f"PJSIP/{code}"
    assert await db_pool.fetchval("SELECT interface FROM agents WHERE id = $1", agent_id) == (
        "PJSIP/new"
    )


async def test_an_inactive_agent_cannot_log_in_and_only_a_logged_out_one_is_deactivated(
    db_pool,
) -> None:
    sup = await account(db_pool, "supervisor")
    agent = await account(db_pool, "agent")
    code = agent.agent_code
    pause = {"state": "paused", "reason": "break"}
    async with served(db_pool) as http:
        r = await http.post(f"/api/v1/agents/{code}/state", json=pause, headers=agent.auth)
        assert r.status == 200, await r.text()
        # Paused is still in Asterisk's queues: deactivating it would leave the member there.
        r = await http.patch(f"/api/v1/agents/{code}", json={"active": False}, headers=sup.auth)
        body = await r.json()
        assert (r.status, body["field"]) == (409, "active"), body
        assert "log it out first" in body["error"]
        logout = {"state": "logged_out"}
        r = await http.post(f"/api/v1/agents/{code}/state", json=logout, headers=agent.auth)
        assert r.status == 200
        r = await http.patch(f"/api/v1/agents/{code}", json={"active": False}, headers=sup.auth)
        assert r.status == 200, await r.text()
        assert (await r.json())["active"] is False
        for body in (pause, {"state": "ready"}):
            r = await http.post(f"/api/v1/agents/{code}/state", json=body, headers=agent.auth)
            refused = await r.json()
            assert (r.status, refused["field"]) == (409, "state"), refused
            assert "inactive" in refused["error"]
        r = await http.post(f"/api/v1/agents/{code}/state", json=logout, headers=agent.auth)
        assert r.status == 200  # logging out is always allowed
        r = await http.patch(f"/api/v1/agents/{code}", json={"active": True}, headers=sup.auth)
        assert (await r.json())["active"] is True
        r = await http.post(f"/api/v1/agents/{code}/state", json=pause, headers=agent.auth)
        assert r.status == 200, await r.text()
    edits = await audit_rows(db_pool, "agent.edit", f"agent:{code}")
    assert [json.loads(e["details"])["changes"] for e in edits] == [
        {"active": {"from": True, "to": False}},
        {"active": {"from": False, "to": True}},
    ]


async def test_disabling_an_agents_user_logs_the_agent_out(db_pool) -> None:
    agent = await account(db_pool, "agent")
    async with served(db_pool) as http:
        pause = {"state": "paused", "reason": "break"}
        r = await http.post(f"/api/v1/agents/{agent.agent_code}/state", json=pause,
                            headers=agent.auth)  # fmt: skip
        assert r.status == 200, await r.text()
    assert await disable_user(db_pool, agent.name, actor="test") == {agent.agent_code: "paused"}
    state = await db_pool.fetchval(
        "SELECT state FROM agent_current_states WHERE agent_id = $1", agent.agent_id
    )
    # The campaign's leader removes a logged-out agent from its queue (dialer _seat_agents):
    # still "paused" there, the member would be counted by the pacer once unpaused by anyone.
    assert state == "logged_out"
    [entry] = await audit_rows(db_pool, "user.disable", f"user:{agent.name}")
    assert json.loads(entry["details"])["agents_logged_out"] == {agent.agent_code: "paused"}


# -- creditors over the API -------------------------------------------------------------------
_AGENCY = {
    "name": "Gestiones Integrales del Centro SA de CV",
    "address": "Av. Reforma 100, 06600 CDMX",
    "phone": "+525555550199",
    "email": "contacto@gestiones.example",
    "responsible": "Laura Méndez",
}


async def test_a_creditors_collection_agency_is_kept_checked_and_cleared(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    code = unique("cr")
    async with served(db_pool) as http:
        r = await http.post("/api/v1/creditors", json=_creditor(code, agency=_AGENCY),
                            headers=sup.auth)  # fmt: skip
        assert r.status == 201, await r.text()
        assert (await r.json())["agency"] == _AGENCY
        r = await http.patch(f"/api/v1/creditors/{code}", json={"agency": None}, headers=sup.auth)
        assert (r.status, (await r.json())["agency"]) == (200, None)  # collected in-house now
    assert await db_pool.fetchval("SELECT agency FROM creditors WHERE code = $1", code) is None
    [edit] = await audit_rows(db_pool, "creditor.edit", f"creditor:{code}")
    assert json.loads(edit["details"])["changes"]["agency"]["to"] is None


async def test_creditors_create_get_list_edit_with_audit(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    code = unique("cr")
    body = _creditor(code, currency="mxn", contact_name="Ana Ruiz", policy=POLICY)
    async with served(db_pool) as http:
        r = await http.post("/api/v1/creditors", json=body, headers=sup.auth)
        assert r.status == 201, await r.text()
        created = await r.json()
        assert created["currency"] == "MXN"  # stored upper case
        assert created["callback_number"] == body["callback_number"]
        assert created["policy"] == POLICY
        assert created["contact_name"] == "Ana Ruiz"
        r = await http.get(f"/api/v1/creditors/{code}", headers=sup.auth)
        assert (r.status, await r.json()) == (200, created)
        listed = await (await http.get("/api/v1/creditors", headers=sup.auth)).json()
        assert created in listed["creditors"]
        assert (await http.get("/api/v1/creditors/nobody", headers=sup.auth)).status == 404

        new_policy = {"second_factor": "postal_code", "discount_pct": 10}
        r = await http.patch(f"/api/v1/creditors/{code}",
                             json={"public_name": "Grupo Norte", "policy": new_policy,
                                   "contact_name": None}, headers=sup.auth)  # fmt: skip
        assert r.status == 200, await r.text()
        edited = await r.json()
        assert edited["policy"] == new_policy  # replaced whole, not merged
        assert edited["public_name"] == "Grupo Norte"
        assert edited["contact_name"] is None
        assert edited["callback_number"] == created["callback_number"]  # untouched
    row = await db_pool.fetchrow("SELECT * FROM creditors WHERE code = $1", code)
    assert (row["public_name"], row["currency"], json.loads(row["policy"])) == (
        "Grupo Norte", "MXN", new_policy,
    )  # fmt: skip
    [made] = await audit_rows(db_pool, "creditor.create", f"creditor:{code}")
    assert made["actor"] == sup.name
    [edit] = await audit_rows(db_pool, "creditor.edit", f"creditor:{code}")
    changes = json.loads(edit["details"])["changes"]
    assert set(changes) == {"public_name", "policy", "contact_name"}
    assert changes["public_name"] == {"from": "Servicios Acme", "to": "Grupo Norte"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"public_name": "Cobranzas del Norte"}, "public_name"),
        ({"public_name": "Acme Debt Services"}, "public_name"),
        ({"public_name": "Recuperación de Cartera"}, "public_name"),  # accents ignored
        ({"public_name": "NORTH COLLECTIONS"}, "public_name"),
        ({"public_name": "Gestión de Deudas"}, "public_name"),
        ({"public_name": "Cobro Rápido"}, "public_name"),
        ({"public_name": "Servicios Recupero"}, "public_name"),
        ({"public_name": "Deb\u00adt Co"}, "public_name"),  # a soft hyphen hid the word
        ({"public_name": "Cobr\u200banza SA"}, "public_name"),  # a zero-width space
        ({"public_name": ""}, "public_name"),
        ({"public_name": "Acme\u2028SA"}, "public_name"),
        ({"callback_number": "5512345678"}, "callback_number"),  # not E.164
        ({"callback_number": "+5215512345678"}, "callback_number"),  # no such Mexican number
        ({"callback_number": "+10000000000"}, "callback_number"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "XAU"}, "currency"),  # gold is not a currency a debt is in
        ({"currency": "MX"}, "currency"),
        ({"contact_name": "  "}, "contact_name"),
        ({"policy": {"instalments": {"min_months": 8, "max_months": 4}}},
         "policy.instalments.min_months"),
        ({"policy": {"second_factor": "pin"}}, "policy.second_factor"),
        ({"policy": {"holidays": ["2026-12-25", "25/12/2026"]}}, "policy.holidays[1]"),
        ({"policy": {"surprise": 1}}, "policy.surprise"),
        ({"agency": {**_AGENCY, "phone": "5555550199"}}, "agency.phone"),  # not E.164
        ({"agency": {**_AGENCY, "phone": "+525"}}, "agency.phone"),
        ({"agency": {k: v for k, v in _AGENCY.items() if k != "email"}}, "agency.email"),
        ({"agency": {**_AGENCY, "email": "no-at-sign"}}, "agency.email"),
        ({"agency": {**_AGENCY, "web": "x"}}, "agency.web"),
        ({"agency": "Gestiones"}, "agency"),
        ({"policy": []}, "policy"),
        ({"name": None}, "name"),
        ({"code": "no spaces"}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"extra": 1}, "extra"),
    ],
)  # fmt: skip
async def test_creditor_validation_names_the_field(db_pool, extra: dict, field: str) -> None:
    admin = await account(db_pool, "admin")
    code = unique("bad")
    async with served(db_pool) as http:
        r = await http.post("/api/v1/creditors", json={**_creditor(code), **extra},
                            headers=admin.auth)  # fmt: skip
        body = await r.json()
        assert r.status == 422, body
        assert body["field"] == field, body
    assert await db_pool.fetchval("SELECT count(*) FROM creditors WHERE code = $1", code) == 0


async def test_a_business_name_is_refused_on_edit_too_and_the_message_says_why(db_pool) -> None:
    admin = await account(db_pool, "admin")
    code = unique("ed")
    async with served(db_pool) as http:
        assert (await http.post("/api/v1/creditors", json=_creditor(code),
                                headers=admin.auth)).status == 201  # fmt: skip
        r = await http.patch(f"/api/v1/creditors/{code}", json={"public_name": "Deudas MX"},
                             headers=admin.auth)  # fmt: skip
        body = await r.json()
        assert (r.status, body["field"]) == (422, "public_name")
        assert "'deudas'" in body["error"]
        assert "Reg F" in body["error"]
        for missing in ("code", "name", "public_name", "callback_number", "currency"):
            partial = {k: v for k, v in _creditor(unique("m")).items() if k != missing}
            r = await http.post("/api/v1/creditors", json=partial, headers=admin.auth)
            assert (r.status, (await r.json())["field"]) == (422, missing)
    assert (
        await db_pool.fetchval("SELECT public_name FROM creditors WHERE code = $1", code)
        == "Servicios Acme"
    )


async def test_creditor_duplicates_are_409(db_pool) -> None:
    admin = await account(db_pool, "admin")
    first, second = _creditor(unique("dup")), _creditor(unique("dup"))
    async with served(db_pool) as http:
        for body in (first, second):
            assert (await http.post("/api/v1/creditors", json=body,
                                    headers=admin.auth)).status == 201  # fmt: skip
        r = await http.post("/api/v1/creditors", json={**first, "callback_number": next(_numbers)},
                            headers=admin.auth)  # fmt: skip
        assert (r.status, (await r.json())["field"]) == (409, "code")
        # One creditor per call-back number: the IVR greets callers by the number dialed.
        r = await http.post("/api/v1/creditors",
                            json=_creditor(unique("dup"), callback_number=first["callback_number"]),
                            headers=admin.auth)  # fmt: skip
        body = await r.json()
        assert (r.status, body["field"]) == (409, "callback_number")
        assert first["code"] in body["error"]
        r = await http.patch(f"/api/v1/creditors/{second['code']}",
                             json={"callback_number": first["callback_number"]},
                             headers=admin.auth)  # fmt: skip
        assert (r.status, (await r.json())["field"]) == (409, "callback_number")
        # Its own number again is no conflict.
        r = await http.patch(f"/api/v1/creditors/{second['code']}",
                             json={"callback_number": second["callback_number"]},
                             headers=admin.auth)  # fmt: skip
        assert r.status == 200


# -- roles, OpenAPI ---------------------------------------------------------------------------
async def test_agents_may_not_create_or_edit_agents_or_creditors(db_pool) -> None:
    agent = await account(db_pool, "agent")
    admin = await account(db_pool, "admin")
    creditor = _creditor(unique("r"))
    async with served(db_pool) as http:
        assert (await http.post("/api/v1/creditors", json=creditor,
                                headers=admin.auth)).status == 201  # fmt: skip
        for method, path, body in (
            ("POST", "/api/v1/agents", _agent(unique("x"))),
            ("PATCH", f"/api/v1/agents/{agent.agent_code}", {"name": "Me"}),
            ("GET", "/api/v1/creditors", None),
            ("POST", "/api/v1/creditors", _creditor(unique("x"))),
            ("GET", f"/api/v1/creditors/{creditor['code']}", None),
            ("PATCH", f"/api/v1/creditors/{creditor['code']}", {"name": "Mine"}),
        ):
            r = await http.request(method, path, json=body, headers=agent.auth)
            assert r.status == 403, (method, path, r.status)
    assert (
        await db_pool.fetchval("SELECT name FROM agents WHERE code = $1", agent.agent_code)
        == f"Agent {agent.agent_code}"
    )
    assert (
        await db_pool.fetchval("SELECT name FROM creditors WHERE code = $1", creditor["code"])
        == creditor["name"]
    )


async def test_openapi_lists_the_routes_with_their_roles(db_pool) -> None:
    user = await account(db_pool, "supervisor")
    async with served(db_pool) as http:
        doc = await (await http.get("/api/v1/openapi.json", headers=user.auth)).json()
    paths = doc["paths"]
    for path, method in (("/agents", "post"), ("/agents/{code}", "patch"),
                         ("/creditors", "get"), ("/creditors", "post"),
                         ("/creditors/{code}", "get"), ("/creditors/{code}", "patch")):  # fmt: skip
        assert paths[path][method]["x-roles"] == ["admin", "supervisor"], (path, method)
    create = paths["/creditors"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["required"] == ["code", "name", "public_name", "callback_number", "currency"]
    agent = paths["/agents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert agent["required"] == ["code", "name", "interface"]
    assert "pattern" in agent["properties"]["interface"]
    assert paths["/agents"]["get"]["x-roles"] == ["admin", "supervisor", "agent"]
    routes = {(r.method, r.path) for r in create_app(db_pool)[API_ROUTES]}
    assert {("POST", "/agents"), ("PATCH", "/agents/{code}"), ("GET", "/creditors"),
            ("PATCH", "/creditors/{code}")} <= routes  # fmt: skip


# -- the rows in use --------------------------------------------------------------------------
async def test_a_creditor_made_over_the_api_takes_a_campaign(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    creditor = _creditor(unique("use"), contact_name="Ana Ruiz", policy=POLICY)
    camp = unique("camp")
    async with served(db_pool) as http:
        assert (await http.post("/api/v1/creditors", json=creditor,
                                headers=sup.auth)).status == 201  # fmt: skip
        r = await http.post("/api/v1/campaigns", headers=sup.auth, json={
            "code": camp, "name": camp, "creditor": creditor["code"], "compliance_packs": ["mx"],
            "queue_name": unique("q"), "caller_id": '"Servicios" <+525512345678>'})  # fmt: skip
        assert r.status == 201, await r.text()
        assert (await r.json())["creditor"] == creditor["code"]
        r = await http.post(f"/api/v1/campaigns/{camp}/start", headers=sup.auth)
        assert r.status == 200, await r.text()
    assert (
        await db_pool.fetchval(
            "SELECT cr.code FROM campaigns c JOIN creditors cr ON cr.id = c.creditor_id"
            " WHERE c.code = $1",
            camp,
        )
        == creditor["code"]
    )


# -- the CLI (in process, on this module's database) ------------------------------------------
def _cli(
    monkeypatch, capsys, database_url: str, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = main(["--log-level", "WARNING", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_cli_agents_add_list_edit(monkeypatch, capsys, database_url: str) -> None:
    code = unique("cli")
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "add", code,
                        "--name", "Ana Ruiz", "--interface", "PJSIP/agent101")  # fmt: skip
    assert rc == 0, err
    assert f"agent {code} (Ana Ruiz) added" in out
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "list")
    assert rc == 0, err
    assert out.splitlines()[0].split() == ["CODE", "NAME", "INTERFACE", "USER", "STATE",
                                           "CAMPAIGN", "ACTIVE"]  # fmt: skip
    [line] = [ln for ln in out.splitlines() if ln.startswith(code + " ")]
    assert "Ana Ruiz" in line
    assert "PJSIP/agent101" in line
    assert "logged_out" in line
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "edit", code,
                        "--interface", "PJSIP/agent102")  # fmt: skip
    assert rc == 0, err
    [row] = _fetch(database_url, "SELECT interface FROM agents WHERE code = $1", code)
    assert row["interface"] == "PJSIP/agent102"
    [audit] = _fetch(database_url, "SELECT actor FROM audit_log WHERE action = 'agent.create'"
                     " AND subject = $1", f"agent:{code}")  # fmt: skip
    assert audit["actor"].startswith("cli")
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "edit", code, "--inactive")
    assert rc == 0, err
    assert f"agent {code} (Ana Ruiz, PJSIP/agent102, inactive) saved" in out
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "list")
    [line] = [ln for ln in out.splitlines() if ln.startswith(code + " ")]
    assert line.split()[-1] == "no"
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "edit", code, "--active")
    assert rc == 0, err
    assert [r["active"] for r in _fetch(database_url, "SELECT active FROM agents WHERE code = $1",
                                        code)] == [True]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "Ana", "--interface", "PJSIP/agent 1"], "--interface: does not match"),
        (["--name", "Ana", "--interface", "agent1"], "--interface: does not match"),
        (["--name", "", "--interface", "PJSIP/zz1"], "--name: at least 1 characters"),
    ],
)
def test_cli_agents_add_refuses_bad_input(monkeypatch, capsys, database_url, argv, message) -> None:
    code = unique("clibad")
    # (checked before connecting: this database URL refuses connections)
    rc, _out, err = _cli(monkeypatch, capsys, NO_DATABASE, "agents", "add", code, *argv)
    assert rc == 2
    assert err.startswith(f"puente agents add: {message}"), err
    assert "Traceback" not in err
    assert _fetch(database_url, "SELECT 1 FROM agents WHERE code = $1", code) == []


def test_cli_agents_duplicate_and_unknown(monkeypatch, capsys, database_url: str) -> None:
    code = unique("twice")
    args = ("agents", "add", code, "--name", "A", "--interface", f"PJSIP/{code}")
    assert _cli(monkeypatch, capsys, database_url, *args)[0] == 0
    rc, _, err = _cli(monkeypatch, capsys, database_url, *args)
    assert rc == 2
    assert "already exists" in err, err
    rc, _, err = _cli(monkeypatch, capsys, database_url, "agents", "edit", "ghost", "--name", "X")
    assert (rc, err.strip()) == (2, "puente agents edit: no agent 'ghost'")


def test_cli_creditors_add_with_a_policy_file_and_list(
    monkeypatch, capsys, database_url: str, tmp_path: Path
) -> None:
    code = unique("clicr")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "second_factor: dob\nsettlement_min_pct: 60\ninstalments:\n  min_months: 2\n"
        "  max_months: 6\nholidays: [2026-12-25]\n",
        encoding="utf-8",
    )
    number = next(_numbers)
    rc, out, err = _cli(monkeypatch, capsys, database_url, "creditors", "add", code,
                        "--name", "Banco Norte", "--public-name", "Norte Servicios",
                        "--callback-number", number, "--currency", "mxn",
                        "--contact-name", "Ana Ruiz", "--policy", str(policy))  # fmt: skip
    assert rc == 0, err
    assert f"creditor {code} (Banco Norte" in out
    [row] = _fetch(database_url, "SELECT * FROM creditors WHERE code = $1", code)
    assert (row["public_name"], row["callback_number"], row["currency"], row["contact_name"]) == (
        "Norte Servicios", number, "MXN", "Ana Ruiz",
    )  # fmt: skip
    assert json.loads(row["policy"]) == {
        "second_factor": "dob",
        "settlement_min_pct": 60,
        "instalments": {"min_months": 2, "max_months": 6},
        "holidays": ["2026-12-25"],
    }
    rc, out, err = _cli(monkeypatch, capsys, database_url, "creditors", "list")
    assert rc == 0, err
    [line] = [ln for ln in out.splitlines() if ln.startswith(code + " ")]
    assert "Norte Servicios" in line
    assert "MXN" in line
    assert number not in out
    assert number[1:] not in out
    assert number[-4:] in line
    rc, out, err = _cli(monkeypatch, capsys, database_url, "creditors", "edit", code,
                        "--no-contact-name", "--public-name", "Grupo Norte")  # fmt: skip
    assert rc == 0, err
    [row] = _fetch(database_url, "SELECT public_name, contact_name FROM creditors WHERE code = $1",
                   code)  # fmt: skip
    assert tuple(row) == ("Grupo Norte", None)
    agency = tmp_path / "agency.yaml"
    agency.write_text("".join(f"{k}: {v}\n" for k, v in _AGENCY.items()), encoding="utf-8")
    rc, out, err = _cli(monkeypatch, capsys, database_url, "creditors", "edit", code,
                        "--agency", str(agency))  # fmt: skip
    assert (rc, err.strip()) == (2, "puente creditors edit: --agency: agency.phone: put the "
                                 "number in quotes ('+525555550199'): unquoted, YAML reads it "
                                 "as a number")  # fmt: skip
    agency.write_text("".join(f"{k}: '{v}'\n" for k, v in _AGENCY.items()), encoding="utf-8")
    rc, out, err = _cli(monkeypatch, capsys, database_url, "creditors", "edit", code,
                        "--agency", str(agency))  # fmt: skip
    assert rc == 0, err
    [row] = _fetch(database_url, "SELECT agency FROM creditors WHERE code = $1", code)
    assert json.loads(row["agency"]) == _AGENCY
    rc, out, err = _cli(monkeypatch, capsys, database_url, "creditors", "edit", code,
                        "--no-agency")  # fmt: skip
    assert rc == 0, err
    [row] = _fetch(database_url, "SELECT agency FROM creditors WHERE code = $1", code)
    assert row["agency"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--public-name": "Cobranza Express"}, "--public-name: 'cobranza'"),
        ({"--callback-number": "+5255"}, "--callback-number: does not match"),
        ({"--callback-number": "+5215512345678"}, "--callback-number: not a valid phone number"),
        ({"--currency": "PESO"}, "--currency: does not match"),
        ({"--currency": "ABC"}, "--currency: 'ABC' is not an ISO 4217 currency"),
        ({"--policy": "MISSING"}, "--policy: cannot read"),
        ({"--policy": "BAD_YAML"}, "--policy:"),
        ({"--policy": "BAD_POLICY"}, "--policy: creditor"),
    ],
)
def test_cli_creditors_add_refuses_bad_input(
    monkeypatch, capsys, database_url: str, tmp_path: Path, change: dict, message: str
) -> None:
    code = unique("clibadcr")
    options = {"--name": "Banco", "--public-name": "Norte", "--callback-number": next(_numbers),
               "--currency": "MXN", **change}  # fmt: skip
    files = {"MISSING": tmp_path / "nope.yaml", "BAD_YAML": tmp_path / "bad.yaml",
             "BAD_POLICY": tmp_path / "policy.yaml"}  # fmt: skip
    files["BAD_YAML"].write_text("second_factor: dob\nsecond_factor: dob\n", encoding="utf-8")
    files["BAD_POLICY"].write_text("instalments:\n  max_months: 40\n", encoding="utf-8")
    if "--policy" in options:
        options["--policy"] = str(files[options["--policy"]])
    argv = [x for pair in options.items() for x in pair]
    rc, _out, err = _cli(monkeypatch, capsys, NO_DATABASE, "creditors", "add", code, *argv)
    assert rc == 2
    assert err.startswith(f"puente creditors add: {message}"), err
    assert "Traceback" not in err
    assert options["--callback-number"] not in err  # (a number is not echoed)
    assert _fetch(database_url, "SELECT 1 FROM creditors WHERE code = $1", code) == []
    if change.get("--policy") == "BAD_POLICY":
        assert "policy.instalments.max_months" in err


def test_cli_agent_made_over_the_api_is_linked_by_users_add(
    monkeypatch, capsys, database_url: str
) -> None:
    async def make() -> str:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            admin = await account(pool, "admin")
            code = unique("link")
            async with served(pool) as http:
                r = await http.post("/api/v1/agents", json=_agent(code), headers=admin.auth)
                assert r.status == 201, await r.text()
            return code
        finally:
            await pool.close()

    code = asyncio.run(make())
    name = unique("ana")
    rc, out, err = _cli(monkeypatch, capsys, database_url, "users", "add", name,
                        "--role", "agent", "--agent", code, stdin=PASSWORD + "\n")  # fmt: skip
    assert rc == 0, err
    [row] = _fetch(database_url, "SELECT u.username FROM agents a JOIN users u ON u.id = a.user_id"
                   " WHERE a.code = $1", code)  # fmt: skip
    assert row["username"] == name
    rc, out, err = _cli(monkeypatch, capsys, database_url, "agents", "list")
    [line] = [ln for ln in out.splitlines() if ln.startswith(code + " ")]
    assert name in line

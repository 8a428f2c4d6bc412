"""Do-not-call and cease entries, consents, and the compliance what-if check."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.web._api_support import account, attempt, audit_rows, campaign_row, debtor, served

AT = "2026-11-03T17:00:00Z"  # 11:00 in Mexico City, a Tuesday
NOW = datetime(2026, 11, 3, 16, 30, tzinfo=UTC)


async def _check(client, auth, d, **extra) -> dict:
    body = {
        "person_id": d.person_id,
        "debt_ids": [d.debt_id],
        "phone": d.e164,
        "channel": "voice",
        "packs": ["mx"],
        "at": AT,
        **extra,
    }
    r = await client.post("/api/v1/compliance/check", json=body, headers=auth)
    assert r.status == 200, await r.text()
    return await r.json()


async def test_blocks_deny_until_revoked(db_pool) -> None:
    agent = await account(db_pool, "agent")
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    async with served(db_pool, clock=lambda: NOW) as client:
        first = await _check(client, agent.auth, d)
        assert first["allowed"] is True
        assert first["reserved"] is False

        r = await client.post(
            "/api/v1/blocks",
            headers=agent.auth,
            json={"kind": "dnc", "e164": d.e164, "reason": "asked on call"},
        )
        assert r.status == 201
        block = await r.json()
        assert block["source"] == f"web:{agent.name}"
        assert block["channel"] == "all"
        denied = await _check(client, agent.auth, d)
        assert denied["allowed"] is False
        assert "DNC" in {reason["code"] for reason in denied["reasons"]}

        listed = await (
            await client.get(f"/api/v1/blocks?e164=%2B{d.e164[1:]}", headers=agent.auth)
        ).json()
        assert [b["id"] for b in listed["blocks"]] == [block["id"]]

        # Only supervisors lift a block; once.
        url = f"/api/v1/blocks/{block['id']}/revoke"
        assert (await client.post(url, headers=agent.auth)).status == 403
        r = await client.post(url, headers=sup.auth)
        assert r.status == 200
        assert (await r.json())["revoked_at"] is not None
        assert (await client.post(url, headers=sup.auth)).status == 409
        assert (await client.post("/api/v1/blocks/99999999/revoke", headers=sup.auth)).status == 404
        assert (await _check(client, agent.auth, d))["allowed"] is True
        assert (
            await (
                await client.get(f"/api/v1/blocks?person_id={d.person_id}", headers=sup.auth)
            ).json()
        )["blocks"] == []

        # A cease on one debt, by debt id: the person is found from it.
        r = await client.post(
            "/api/v1/blocks", headers=agent.auth, json={"kind": "cease", "debt_id": d.debt_id}
        )
        assert r.status == 201
        assert (await r.json())["person_id"] == d.person_id
        denied = await _check(client, agent.auth, d)
        assert "CEASE" in {reason["code"] for reason in denied["reasons"]}
    assert [r["actor"] for r in await audit_rows(db_pool, "block.revoke")] == [sup.name]
    created = await audit_rows(db_pool, "block.dnc")
    assert d.e164 not in created[0]["details"]  # masked in the audit details


async def test_block_requests_are_checked(db_pool) -> None:
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    other = await debtor(db_pool)
    cases = [
        ({"kind": "dnc"}, "e164"),
        ({"kind": "dnc", "e164": "5512345678"}, "e164"),
        ({"kind": "stop", "e164": d.e164}, "kind"),
        ({"kind": "dnc", "person_id": 99999999}, "person_id"),
        ({"kind": "cease", "person_id": d.person_id, "debt_id": other.debt_id}, "debt_id"),
        ({"kind": "dnc", "e164": d.e164, "channel": "fax"}, "channel"),
    ]
    async with served(db_pool) as client:
        for body, field in cases:
            r = await client.post("/api/v1/blocks", json=body, headers=agent.auth)
            assert r.status == 422, body
            assert (await r.json())["field"] == field, body


async def test_consents_by_number_or_phone_id(db_pool) -> None:
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    async with served(db_pool) as client:
        r = await client.post(
            "/api/v1/consents",
            headers=agent.auth,
            json={
                "e164": d.e164,
                "channel": "autodialed_voice",
                "granted": True,
                "source": "recorded call",
                "recorded_at": "2026-11-01T10:00:00Z",
            },
        )
        assert r.status == 201, await r.text()
        consent = await r.json()
        assert consent["phone_id"] == d.phone_id
        assert consent["granted"] is True
        r = await client.post(
            "/api/v1/consents",
            headers=agent.auth,
            json={"phone_id": d.phone_id, "channel": "sms", "granted": False, "source": "web form"},
        )
        assert r.status == 201
        for body, field in (
            ({"e164": "+529999999999", "channel": "sms", "granted": True, "source": "x"}, "e164"),
            ({"phone_id": 99999999, "channel": "sms", "granted": True, "source": "x"}, "phone_id"),
            ({"channel": "sms", "granted": True, "source": "x"}, "e164"),
            ({"e164": d.e164, "channel": "sms", "granted": "yes", "source": "x"}, "granted"),
            (
                {
                    "e164": d.e164,
                    "channel": "sms",
                    "granted": True,
                    "source": "x",
                    "recorded_at": "2999-01-01T00:00:00Z",
                },
                "recorded_at",
            ),
            (
                {
                    "e164": d.e164,
                    "channel": "sms",
                    "granted": True,
                    "source": "x",
                    "recorded_at": "2026-01-01T00:00:00",
                },
                "recorded_at",
            ),
        ):
            r = await client.post("/api/v1/consents", json=body, headers=agent.auth)
            assert r.status == 422, body
            assert (await r.json())["field"] == field, body
    rows = await db_pool.fetch(
        "SELECT channel, granted FROM consents WHERE phone_id = $1 ORDER BY id", d.phone_id
    )
    assert [(r["channel"], r["granted"]) for r in rows] == [
        ("autodialed_voice", True),
        ("sms", False),
    ]
    assert len(await audit_rows(db_pool, "consent.record", f"phone:{d.phone_id}")) == 2


async def test_compliance_check_reports_windows_and_refuses_unknown_packs(db_pool) -> None:
    user = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    async with served(db_pool) as client:
        night = await _check(client, user.auth, d, at="2026-11-04T07:00:00Z")  # 01:00 local
        assert night["allowed"] is False
        assert night["next_allowed_at"]
        assert "America/Mexico_City" in night["timezones"]
        by_id = await _check(client, user.auth, d, phone=d.phone_id)
        assert by_id["allowed"] is True
        r = await client.post(
            "/api/v1/compliance/check",
            headers=user.auth,
            json={
                "person_id": d.person_id,
                "phone": d.e164,
                "channel": "voice",
                "packs": ["atlantis"],
            },
        )
        assert r.status == 422
        assert (await r.json())["field"] == "packs"
    stored = await db_pool.fetchval(
        "SELECT count(*) FROM compliance_decisions WHERE person_id = $1", d.person_id
    )
    assert stored == 0  # a what-if stores nothing


async def test_times_at_the_calendars_edges_are_refused_by_name(db_pool) -> None:
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    check = {
        "person_id": d.person_id,
        "debt_ids": [d.debt_id],
        "phone": d.e164,
        "channel": "voice",
        "packs": ["mx"],
    }
    consent = {"e164": d.e164, "channel": "sms", "granted": True, "source": "x"}
    async with served(db_pool) as client:
        for when in (
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59+00:00",
        ):
            for path, body, field in (
                ("/api/v1/compliance/check", {**check, "at": when}, "at"),
                ("/api/v1/blocks", {"kind": "dnc", "e164": d.e164, "effective_at": when},
                 "effective_at"),
                ("/api/v1/consents", {**consent, "recorded_at": when}, "recorded_at"),
            ):  # fmt: skip
                r = await client.post(path, json=body, headers=agent.auth)
                assert r.status == 422, (path, when, await r.text())
                assert (await r.json())["field"] == field, (path, when)
        # A block dated ahead was stored and did nothing until then (2199: never).
        r = await client.post(
            "/api/v1/blocks",
            json={"kind": "dnc", "e164": d.e164, "effective_at": "2199-01-01T00:00:00+00:00"},
            headers=agent.auth,
        )
        assert r.status == 422
        assert (await r.json())["field"] == "effective_at"
        r = await client.post(
            "/api/v1/consents",
            json={**consent, "recorded_at": "0001-01-01T00:00:00Z"},
            headers=agent.auth,
        )
        assert r.status == 422
        assert (await r.json())["field"] == "recorded_at"


async def test_an_agent_lists_blocks_of_a_number_or_of_its_own_calls_masked(db_pool) -> None:
    # The whole list (every do-not-call number in full, every reason) was open to agents.
    agent = await account(db_pool, "agent")
    sup = await account(db_pool, "supervisor")
    mine, other = await debtor(db_pool), await debtor(db_pool)
    cid, _ = await campaign_row(db_pool, mine.creditor_id)
    await attempt(db_pool, mine, cid, agent_id=agent.agent_id, disposition=None)
    async with served(db_pool, clock=lambda: NOW) as client:
        for d in (mine, other):
            r = await client.post(
                "/api/v1/blocks", headers=sup.auth,
                json={"kind": "cease", "person_id": d.person_id, "e164": d.e164,
                      "reason": "attorney letter"},
            )  # fmt: skip
            assert r.status == 201
        r = await client.get("/api/v1/blocks", headers=agent.auth)
        assert r.status == 422
        r = await client.get(f"/api/v1/blocks?person_id={other.person_id}", headers=agent.auth)
        assert r.status == 403
        r = await client.get(f"/api/v1/blocks?person_id={mine.person_id}", headers=agent.auth)
        assert r.status == 200
        [block] = (await r.json())["blocks"]
        assert block["e164"] != mine.e164
        assert block["e164"].endswith(mine.e164[-4:])
        listed = await (await client.get("/api/v1/blocks", headers=sup.auth)).json()
        assert {b["e164"] for b in listed["blocks"]} >= {mine.e164, other.e164}

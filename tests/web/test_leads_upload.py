"""Lead upload: good rows load, bad rows come back with their row numbers, limits hold."""

from __future__ import annotations

import asyncio
import csv
import io
import json

from tests._triggers import fault_on, sleeping_backend
from tests.web._api_support import account, audit_rows, campaign_row, debtor, served
from web._keys import STATS

CSV = (
    "account_ref,balance,full_name,phone,country\n"
    "UP-1,1200.50,Ana Uno,+525511110001,MX\n"
    "UP-2,not money,Bea Dos,+525511110002,MX\n"
    "UP-3,300,Carla Tres,+525511110003,MX\n"
    ",10,Sin Cuenta,+525511110004,MX\n"
)


async def test_upload_loads_good_rows_and_reports_bad_ones(db_pool) -> None:
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    campaign_id, code = await campaign_row(db_pool, d.creditor_id)
    async with served(db_pool) as client:
        r = await client.post(
            f"/api/v1/campaigns/{code}/leads",
            data=CSV.encode(),
            headers={**sup.auth, "Content-Type": "text/csv"},
        )
        assert r.status == 200, await r.text()
        report = await r.json()
        assert report["rows"] == 4
        assert report["loaded"] == 2
        assert report["rejected"] == 2
        assert report["leads_added"] == 2
        problems = list(csv.DictReader(io.StringIO(report["errors_csv"])))
        assert [(p["row"], p["column"]) for p in problems] == [
            ("3", "balance"),
            ("5", "account_ref"),
        ]
        assert all(p["row_rejected"] == "yes" for p in problems)
        r = await client.get(report["errors_url"], headers=sup.auth)
        assert r.status == 200
        assert r.content_type == "text/csv"
        assert await r.text() == report["errors_csv"]
        assert (
            await client.get("/api/v1/imports/999999/errors.csv", headers=sup.auth)
        ).status == 404
    refs = await db_pool.fetch(
        "SELECT d.account_ref FROM leads l JOIN debts d ON d.id = l.debt_id"
        " WHERE l.campaign_id = $1 ORDER BY 1",
        campaign_id,
    )
    assert [r["account_ref"] for r in refs] == ["UP-1", "UP-3"]
    (row,) = await audit_rows(db_pool, "leads.import", f"campaign:{code}")
    details = json.loads(row["details"])
    assert row["actor"] == sup.name
    assert details["loaded"] == 2
    assert details["rejected"] == 2
    assert "+5255" not in row["details"]


async def test_upload_limits_and_refusals(db_pool) -> None:
    admin = await account(db_pool, "admin")
    agent = await account(db_pool, "agent")
    d = await debtor(db_pool)
    _, code = await campaign_row(db_pool, d.creditor_id)
    _, orphan = await campaign_row(db_pool, None)
    csv_headers = {**admin.auth, "Content-Type": "text/csv"}
    big = CSV.encode() + b"UP-9,1,Nombre Largo,+525511110009,MX\n" * 100
    async with served(db_pool, max_upload_bytes=2048) as client:
        url = f"/api/v1/campaigns/{code}/leads"
        r = await client.post(url, data=big, headers=csv_headers)
        assert r.status == 413

        async def chunks():  # no Content-Length: the cap holds while streaming
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post(url, data=chunks(), headers=csv_headers)
        assert r.status == 413
        r = await client.post(
            url, data=CSV.encode(), headers={**admin.auth, "Content-Type": "image/png"}
        )
        assert r.status == 415
        r = await client.post(url, data=b"a,b\x00,c\n", headers=csv_headers)
        assert r.status == 422
        r = await client.post(url, data=b"\xff\xfe\xfa", headers=csv_headers)
        assert r.status == 422
        assert "UTF-8" in (await r.json())["error"]
        r = await client.post(url, data=b"", headers=csv_headers)
        assert r.status == 422
        assert "empty" in (await r.json())["error"]
        r = await client.post(
            url, data=CSV.encode(), headers={**agent.auth, "Content-Type": "text/csv"}
        )
        assert r.status == 403
        r = await client.post("/api/v1/campaigns/none/leads", data=b"x", headers=csv_headers)
        assert r.status == 404
        r = await client.post(f"/api/v1/campaigns/{orphan}/leads", data=b"x", headers=csv_headers)
        assert r.status == 409


async def test_huge_numbers_in_a_row_never_make_a_server_error(db_pool) -> None:
    admin = await account(db_pool, "admin")
    d = await debtor(db_pool)
    _, code = await campaign_row(db_pool, d.creditor_id)
    body = (
        "account_ref,balance,full_name,phone,country,priority,days_past_due\n"
        "HUGE-1,10,Ana,+525511119991,MX,99999999999999999999,1\n"
        "HUGE-2,99999999999999999999999,Bea,+525511119992,MX,1,99999999999\n"
        "FINE-3,10,Eva,+525511119993,MX,1,1\n"
    )
    async with served(db_pool) as client:
        r = await client.post(
            f"/api/v1/campaigns/{code}/leads",
            data=body.encode(),
            headers={**admin.auth, "Content-Type": "text/csv"},
        )
        assert r.status == 200, await r.text()
        report = await r.json()
    # Each costs its own row, not the batch: the good row beside them loads.
    assert (report["loaded"], report["rejected"], report["leads_added"]) == (1, 2, 1)
    problems = list(csv.DictReader(io.StringIO(report["errors_csv"])))
    assert [(p["row"], p["column"]) for p in problems] == [("2", "priority"), ("3", "balance")]


async def test_an_upload_whose_database_connection_is_terminated_is_a_503(db_pool) -> None:
    # The server ends the import's backend (an administrator, a shutdown): the database went
    # away, not the file: 503 (try again), not 422 (fix your file).
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    _, code = await campaign_row(db_pool, d.creditor_id)
    body = "account_ref,balance,full_name,phone,country\nST-1,10,Stall Upload,+525511119999,MX\n"
    stall, when = "PERFORM pg_sleep(60)", "NEW.full_name = 'Stall Upload'"
    async with fault_on(db_pool, "persons", stall, when=when), served(db_pool) as client:
        upload = asyncio.create_task(
            client.post(
                f"/api/v1/campaigns/{code}/leads",
                data=body.encode(),
                headers={**sup.auth, "Content-Type": "text/csv"},
            )
        )
        pid = await sleeping_backend(db_pool)
        assert await db_pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        r = await asyncio.wait_for(upload, 30)
        assert r.status == 503, await r.text()
        assert "connection to the database was lost" in (await r.json())["error"]


async def test_a_node_loads_only_so_many_imports_at_once(db_pool) -> None:
    # Each import holds two of the node's database connections while it loads: one more than
    # ``imports_at_once`` is refused before its file is read, and the next one after an
    # import ends is taken again.
    sup = await account(db_pool, "supervisor")
    d = await debtor(db_pool)
    _, code = await campaign_row(db_pool, d.creditor_id)
    header = "account_ref,balance,full_name,phone,country\n"
    held = header + "HO-1,10,Hold Upload,+525511118888,MX\n"
    other = header + "HO-2,10,Otra Persona,+525511118887,MX\n"
    headers = {**sup.auth, "Content-Type": "text/csv"}
    url = f"/api/v1/campaigns/{code}/leads"
    hold, when = "PERFORM pg_sleep(1.5)", "NEW.full_name = 'Hold Upload'"
    async with (
        fault_on(db_pool, "persons", hold, when=when),
        served(db_pool, imports_at_once=1) as client,
    ):
        first = asyncio.create_task(client.post(url, data=held.encode(), headers=headers))
        await sleeping_backend(db_pool)  # the first one is loading
        r = await client.post(url, data=other.encode(), headers=headers)
        assert r.status == 429, await r.text()
        assert r.headers["Retry-After"] == "60"
        stats = client.app[STATS]  # (what the node's status line says)
        assert (stats.imports_loading, stats.imports_refused) == (1, 1)
        assert (await r.json())["error"] == (
            "1 lead imports are loading on this node (at most 1 at once): send the file"
            " again when one has finished"
        )
        done = await asyncio.wait_for(first, 30)
        assert done.status == 200, await done.text()
        assert (await done.json())["loaded"] == 1
        again = await client.post(url, data=other.encode(), headers=headers)
        assert again.status == 200, await again.text()
        assert (await again.json())["loaded"] == 1
        assert (stats.imports_loading, stats.imports_refused) == (0, 1)


async def test_the_uploads_own_errors_are_in_its_openapi_entry(db_pool) -> None:
    # A client of the API learns from the document what an upload can answer besides every
    # route's errors: too large, too many at once (with Retry-After), the database gone.
    user = await account(db_pool, "supervisor")
    async with served(db_pool) as client:
        doc = await (await client.get("/api/v1/openapi.json", headers=user.auth)).json()
    upload = doc["paths"]["/campaigns/{code}/leads"]["post"]["responses"]
    assert {"200", "413", "422", "429", "503"} <= set(upload)
    assert "imports_at_once" in upload["429"]["description"]
    error = {"$ref": "#/components/schemas/Error"}
    assert upload["429"]["content"]["application/json"]["schema"] == error
    # ...and only its own: another route does not list them.
    other = doc["paths"]["/imports/{id}/errors.csv"]["get"]["responses"]
    assert not {"413", "429", "503"} & set(other)

"""A trunk shared by campaigns: its channels bound their calls together, on every node."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path

import asyncpg
import pytest

from compliance import ComplianceGate
from dialer.selection import claim_and_gate
from dialer.trunks import TrunkError, TrunkFull, check_channels, check_name, set_channels
from puente.cli import main
from tests.dialer._floor import NOON, floor, make_campaign, poll_until, preview_request, running
from tests.web._api_support import account, served

_OPEN = """
SELECT count(*) FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id
WHERE a.state <> 'final' AND c.trunk = $1
"""


def _trunk() -> str:
    return f"PJSIP/carrier-{os.urandom(3).hex()}"


async def _on_trunk(pool: asyncpg.Pool, tmp_path: Path, trunk: str, leads: int) -> tuple[int, str]:
    cid, code = await make_campaign(pool, tmp_path, mode="predictive", leads=leads)
    await pool.execute("UPDATE campaigns SET trunk = $2 WHERE id = $1", cid, trunk)
    return cid, code


async def _claim(pool: asyncpg.Pool, campaign: tuple[int, str], want: int, trunk: str | None,
                 node: str = "n1"):  # fmt: skip
    cid, code = campaign
    return await claim_and_gate(
        pool, ComplianceGate(pool), campaign_id=cid, campaign_code=code, packs=["mx"],
        want=want, node=node, pbx="sim", now=NOON, trunk=trunk,
    )  # fmt: skip


async def _finish(pool: asyncpg.Pool, attempt: str) -> None:
    await pool.execute(
        "UPDATE call_attempts SET state = 'final', disposition = 'no_answer',"
        " finalized_at = now() WHERE id = $1::uuid",
        attempt,
    )


async def test_campaigns_on_a_trunk_share_its_channels(db_pool, tmp_path) -> None:
    trunk = _trunk()
    a = await _on_trunk(db_pool, tmp_path, trunk, 6)
    b = await _on_trunk(db_pool, tmp_path, trunk, 6)
    other_trunk = _trunk()
    other = await _on_trunk(db_pool, tmp_path, other_trunk, 6)
    # No channels set: no limit but each campaign's own.
    dials, _ = await _claim(db_pool, a, 2, trunk)
    assert len(dials) == 2
    before = await set_channels(db_pool, trunk, 3, actor="test")
    assert before is None
    dials_b, _ = await _claim(db_pool, b, 5, trunk)
    assert len(dials_b) == 1  # two of the three channels are campaign a's calls
    with pytest.raises(TrunkFull, match=rf"trunk {trunk} full: 3 of its 3 channels in use"):
        await _claim(db_pool, b, 1, trunk)
    with pytest.raises(TrunkFull):
        await _claim(db_pool, a, 1, trunk)
    claimed = "SELECT count(*) FROM leads WHERE campaign_id = $1 AND state <> 'ready'"
    assert await db_pool.fetchval(claimed, b[0]) == 1  # the refused claim took nothing
    # Another trunk is another carrier account.
    await set_channels(db_pool, other_trunk, 10, actor="test")
    dials_o, _ = await _claim(db_pool, other, 4, other_trunk)
    assert len(dials_o) == 4
    # A call ends: its channel is free for whichever campaign claims first.
    await _finish(db_pool, dials[0].attempt_id)
    dials_b2, _ = await _claim(db_pool, b, 5, trunk)
    assert len(dials_b2) == 1
    assert await db_pool.fetchval(_OPEN, trunk) == 3
    # 0 channels: the trunk is closed to every campaign on it.
    assert await set_channels(db_pool, trunk, 0, actor="test") == 3
    await _finish(db_pool, dials_b2[0].attempt_id)
    with pytest.raises(TrunkFull, match=rf"trunk {trunk} is closed"):
        await _claim(db_pool, a, 1, trunk)
    audit = await db_pool.fetch(
        "SELECT action, details->>'channels' AS channels FROM audit_log WHERE subject = $1"
        " ORDER BY id",
        f"trunk:{trunk}",
    )
    assert [(r["action"], r["channels"]) for r in audit] == [("trunk.set", "3"), ("trunk.set", "0")]


async def test_claims_from_two_nodes_at_once_never_pass_the_channels(
    db_pool, database_url: str, tmp_path
) -> None:
    trunk = _trunk()
    a = await _on_trunk(db_pool, tmp_path, trunk, 20)
    b = await _on_trunk(db_pool, tmp_path, trunk, 20)
    await set_channels(db_pool, trunk, 5, actor="test")
    other_node = await asyncpg.create_pool(database_url, min_size=4, max_size=4)
    try:
        results = await asyncio.gather(
            *(
                _claim(pool, camp, 2, trunk, node)
                for pool, node in ((db_pool, "n1"), (other_node, "n2"))
                for camp in (a, b, a, b)
            ),
            return_exceptions=True,
        )
    finally:
        await other_node.close()
    dialed = sum(len(r[0]) for r in results if not isinstance(r, BaseException))
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, TrunkFull) for r in refused), refused
    assert dialed == 5
    assert await db_pool.fetchval(_OPEN, trunk) == 5


async def test_a_full_trunk_holds_the_campaign_and_says_why(db_pool, tmp_path: Path) -> None:
    trunk = _trunk()
    cid, code = await _on_trunk(db_pool, tmp_path, trunk, 10)
    await set_channels(db_pool, trunk, 0, actor="test")
    model = {
        "seed": 5,
        "outcomes": {"human": 1.0},
        "ring_s": {"dist": "fixed", "value": 0.3},
        "talk_s": {"dist": "fixed", "value": 3.0},
        "patience_s": {"dist": "fixed", "value": 30.0},
    }
    attempts = "SELECT count(*) FROM call_attempts WHERE campaign_id = $1"
    async with floor(db_pool, model=model, agents=2) as f:
        runner = await f.runner_for(code, tick_s=0.1)
        async with running(runner, f.clients[0]):

            async def says_why() -> bool:
                return "is closed (0 channels" in runner.why

            await poll_until(says_why, 15)
            await asyncio.sleep(0.5)
            assert await db_pool.fetchval(attempts, cid) == 0
            assert runner.held() == "trunk_full"  # /metrics: puente_dialing_held
            # One channel: one call at a time, though two agents are free.
            await set_channels(db_pool, trunk, 1, actor="test")

            async def one_dialed() -> bool:
                return await db_pool.fetchval(attempts, cid) >= 1

            await poll_until(one_dialed, 15)
            peak, deadline = 0, time.monotonic() + 2.0
            while time.monotonic() < deadline:
                peak = max(peak, await db_pool.fetchval(_OPEN, trunk))
                await asyncio.sleep(0.05)
            assert peak == 1
            assert "full: 1 of its 1 channels in use" in runner.why or runner.why == "dialing"


def test_names_and_channels_are_checked() -> None:
    assert check_name("PJSIP/carrier-mx_2") == "PJSIP/carrier-mx_2"
    assert check_channels("120") == 120
    assert check_channels(0) == 0
    for bad in ("PJSIP/a b", "PJSIP/x\n", "/x", "", None):
        with pytest.raises(TrunkError, match="trunk name must be"):
            check_name(bad)
    for bad in (-1, "1.5", "ten", True, 100_001, "", None, "²", "1" * 4301):
        with pytest.raises(TrunkError, match="channels must be a whole number from 0 to 100,000"):
            check_channels(bad)


def _cli(monkeypatch, capsys, database_url: str, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("PUENTE_DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    capsys.readouterr()
    code = main(["--log-level", "WARNING", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_sets_lists_and_removes(monkeypatch, capsys, database_url: str) -> None:
    trunk = _trunk()
    rc, out, err = _cli(monkeypatch, capsys, database_url, "trunks", "set", trunk, "30")
    assert rc == 0, err
    assert f"trunk {trunk}: 30 channels" in out
    assert "(was no limit)" in out
    rc, out, err = _cli(monkeypatch, capsys, database_url, "trunks", "set", trunk, "40")
    assert rc == 0, err
    assert "(was 30)" in out
    rc, out, err = _cli(monkeypatch, capsys, database_url, "trunks", "list")
    assert rc == 0, err
    assert out.splitlines()[0].split() == ["TRUNK", "CHANNELS", "IN", "USE", "CAMPAIGNS"]
    assert [line.split()[:3] for line in out.splitlines() if line.startswith(trunk)] == [
        [trunk, "40", "0"]
    ]
    rc, out, err = _cli(monkeypatch, capsys, database_url, "trunks", "set", trunk, "-5")
    assert rc == 2
    assert "channels must be a whole number" in err
    rc, out, err = _cli(monkeypatch, capsys, database_url, "trunks", "remove", trunk)
    assert rc == 0, err
    assert "was 40 channels" in out
    rc, out, err = _cli(monkeypatch, capsys, database_url, "trunks", "remove", trunk)
    assert rc == 2
    assert f"trunk {trunk} has no channels set" in err


async def test_a_preview_request_on_a_full_trunk_is_told_so(db_pool, tmp_path: Path) -> None:
    trunk = _trunk()
    cid, code = await make_campaign(db_pool, tmp_path, mode="preview", leads=3)
    await db_pool.execute("UPDATE campaigns SET trunk = $2 WHERE id = $1", cid, trunk)
    await set_channels(db_pool, trunk, 0, actor="test")
    model = {"seed": 3, "outcomes": {"human": 1.0}}
    async with floor(db_pool, model=model, agents=1) as f:
        runner = await f.runner_for(code, tick_s=0.1)
        async with running(runner, f.clients[0]):
            request = await preview_request(db_pool, cid, "p1")

            async def answered() -> bool:
                state = await db_pool.fetchval(
                    "SELECT state FROM preview_requests WHERE id = $1", request
                )
                return state != "wanted"

            await poll_until(answered, 15)
    row = await db_pool.fetchrow("SELECT state, note FROM preview_requests WHERE id = $1", request)
    assert (row["state"], row["note"]) == ("none", f"trunk {trunk} is closed (0 channels: "
                                                   "puente trunks set)")  # fmt: skip
    assert await db_pool.fetchval("SELECT count(*) FROM call_attempts WHERE campaign_id = $1",
                                  cid) == 0  # fmt: skip


async def test_supervisors_see_the_trunks_over_the_api(db_pool, tmp_path: Path) -> None:
    trunk = _trunk()
    campaign = await _on_trunk(db_pool, tmp_path, trunk, 4)
    await set_channels(db_pool, trunk, 7, actor="test")
    (_dial,), _ = await _claim(db_pool, campaign, 1, trunk)
    sup, agent = await account(db_pool, "supervisor"), await account(db_pool, "agent")
    async with served(db_pool) as http:
        r = await http.get("/api/v1/trunks", headers=sup.auth)
        assert r.status == 200
        listed = {t["name"]: t for t in (await r.json())["trunks"]}
        assert (await http.get("/api/v1/trunks", headers=agent.auth)).status == 403
    assert listed[trunk] == {"name": trunk, "channels": 7, "in_use": 1,
                             "campaigns": [campaign[1]]}  # fmt: skip

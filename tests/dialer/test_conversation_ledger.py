"""A call an agent took is a telephone conversation in the compliance ledger: the packs'
cooldowns after one (Reg F: no call for 7 days; Colombia: one contact a day) hold for every
campaign. Nothing wrote one, and another campaign called the debtor the next day."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from compliance import ComplianceGate
from dialer.campaigns import Campaign
from dialer.results import write_result
from dialer.selection import claim_and_gate
from tests.dialer._floor import NOON, make_campaign


async def test_a_call_an_agent_took_starts_the_cooldown_after_a_conversation(
    db_pool, tmp_path: Path
) -> None:
    cid, code = await make_campaign(db_pool, tmp_path, mode="progressive", leads=1)
    gate = ComplianceGate(db_pool)
    (dial,), _ = await claim_and_gate(
        db_pool, gate, campaign_id=cid, campaign_code=code, packs=["mx"], want=1, node="n1",
        pbx="sim", now=NOON,
    )  # fmt: skip
    c = Campaign.from_row(await db_pool.fetchrow("SELECT * FROM campaigns WHERE id = $1", cid))
    assert await write_result(
        db_pool, gate, c, dial, "agent", None, amd="HUMAN", answered=True, now=NOON
    )
    outcomes = await db_pool.fetch(
        "SELECT outcome FROM compliance_outcomes WHERE attempt_id = $1::uuid", dial.attempt_id
    )
    assert [r["outcome"] for r in outcomes] == ["conversation"]
    # The next day, under a pack with a cooldown after a conversation: denied until day 8.
    decision = await gate.check(
        person_id=dial.person_id, debt_ids=[dial.debt_id], phone=dial.phone_id,
        channel="voice", packs=["us_federal"], now=NOON + timedelta(days=1),
    )  # fmt: skip
    assert not decision.allowed
    assert "COOLDOWN" in decision.codes
    assert decision.next_allowed_at is not None
    assert decision.next_allowed_at > NOON + timedelta(days=6)

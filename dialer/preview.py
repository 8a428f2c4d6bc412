"""Preview mode: the campaign's pacer serves agents' requests for their next lead.

An agent asks (``preview_requests`` row ``wanted``, written by the web API); the pacer claims
and gates one lead for it exactly as for any dial (claim, compliance reservation and the
attempt row in one transaction) and offers it (``offered``, with the attempt: the agent's
page shows its screen pop). The agent starts the call (``accepted``): the pacer originates it
to the agent's own queue ``preview-<agent code>``, so the agent who saw the account gets the
call, and tracks it as any other (``dialed``). Or the agent passes (``skipped``): the attempt
ends ``skipped``, not placed, and the lead waits its retry delay. A request that cannot be
served (no lead due, compliance denied) ends ``none`` with the reason in ``note``.

An offer lives in the pacer's memory: if the pacer goes away before the agent decides, the
attempt (never dialed) is settled by the next pacer's takeover like any other leftover, and
the request is closed. When the campaign stops serving requests (paused, stopped, or out of
preview mode), the pacer closes the open ones within ``PREVIEW_SWEEP_S`` and returns what it
had offered, undialed: a request left open would keep its agent from asking anywhere else.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dialer.selection import Dial, claim_and_gate

if TYPE_CHECKING:
    from dialer.runner import CampaignRunner

log = logging.getLogger(__name__)

PREVIEW_QUEUE_PREFIX = "preview-"
PREVIEW_QUEUE_TIMEOUT_S = 60  # the agent asked for this call: wait for them
PREVIEW_SWEEP_S = 10.0  # how soon requests are closed once the campaign stops serving them

_TODO = """
SELECT r.id, r.state, r.attempt_id::text AS attempt_id, a.code AS agent
FROM preview_requests r JOIN agents a ON a.id = r.agent_id
WHERE r.campaign_id = $1 AND r.state IN ('wanted', 'accepted', 'skipped')
ORDER BY r.id LIMIT 20
"""
_OPEN = """
SELECT id FROM preview_requests
WHERE campaign_id = $1 AND state IN ('wanted', 'offered', 'accepted', 'skipped')
"""
_SET = """
UPDATE preview_requests SET state = $2, attempt_id = coalesce($3::uuid, attempt_id),
       note = $4, updated_at = now()
WHERE id = $1
"""


def preview_queue(agent_code: str) -> str:
    return PREVIEW_QUEUE_PREFIX + agent_code


class PreviewDesk:
    """One campaign's open preview requests, served by its pacer each tick."""

    def __init__(self, runner: CampaignRunner) -> None:
        self.runner = runner
        self.offers: dict[str, Dial] = {}  # attempt id -> the dial offered, not yet decided

    async def tick(self) -> None:
        r = self.runner
        rows = await r.pool.fetch(_TODO, r.c.id)
        for row in rows:
            if row["state"] == "wanted":
                await self._offer(row["id"])
            elif row["state"] == "accepted":
                await self._call(row["id"], row["attempt_id"], row["agent"])
            else:
                await self._skip(row["id"], row["attempt_id"])

    async def close_all(self, why: str) -> int:
        """The campaign serves no requests now (not running, or no longer in preview mode):
        its open requests are closed with ``why`` (the agent may ask elsewhere; one open
        request per agent), and the leads offered go back undialed. How many were closed."""
        r = self.runner
        rows = await r.pool.fetch(_OPEN, r.c.id)
        for row in rows:
            await r.pool.execute(_SET, row["id"], "closed", None, why)
        offers, self.offers = self.offers, {}
        for d in offers.values():
            r.end_undialed(d, "skipped")  # never dialed: not placed, the ledger released
        return len(rows)

    async def _offer(self, request_id: int) -> None:
        r = self.runner
        dials, denied = await claim_and_gate(
            r.selection_pool(), r.gate, campaign_id=r.c.id, campaign_code=r.c.code, packs=r.c.packs,
            want=1, node=r.node, pbx=r.pbx, now=r.clock(), channel=r.c.channel,
        )  # fmt: skip
        r.stats.denied += len(denied)
        if not dials:
            codes = sorted({c for d in denied for c in d.decision.codes})
            note = f"compliance denied ({', '.join(codes)})" if denied else "no leads due"
            await r.pool.execute(_SET, request_id, "none", None, note)
            return
        d = dials[0]
        self.offers[d.attempt_id] = d
        await r.pool.execute(_SET, request_id, "offered", d.attempt_id, None)

    async def _call(self, request_id: int, attempt_id: str, agent: str) -> None:
        d = self.offers.pop(attempt_id, None)
        if d is None:  # offered by a pacer that is gone: its leftover attempt is settled
            await self.runner.pool.execute(
                _SET, request_id, "closed", None, "the offer expired; ask again"
            )
            return
        await self.runner.pool.execute(_SET, request_id, "dialed", None, None)
        self.runner.dial_now(d, queue=preview_queue(agent), queue_timeout_s=PREVIEW_QUEUE_TIMEOUT_S)

    async def _skip(self, request_id: int, attempt_id: str) -> None:
        d = self.offers.pop(attempt_id, None)
        await self.runner.pool.execute(_SET, request_id, "closed", None, "skipped")
        if d is not None:
            self.runner.end_undialed(d, "skipped")

"""Preview mode: the campaign's pacer serves agents' requests for their next lead.

An agent asks (``preview_requests`` row ``wanted``, written by the web API); the pacer claims
and gates one lead for it exactly as for any dial (claim, compliance reservation and the
attempt row in one transaction) and offers it (``offered``, with the attempt: the agent's
page shows its screen pop). The agent starts the call (``accepted``): the pacer checks the
dial with compliance again, as it is at that moment (the agent may have read the account for
minutes: the debtor's calling window may have closed, a cease or a do-not-call may have come
in), and checks that the offer's attempt is still open; then it originates the call to the
agent's own queue ``preview-<agent code>``, so the agent who saw the account gets the call,
and tracks it as any other (``dialed``). A dial compliance denies now is not placed: the
request ends ``none`` with the reason in ``note``, the attempt ``skipped`` (the ledger
released). Or the agent passes (``skipped``): the attempt ends ``skipped``, not placed, and
the lead waits its retry delay. A request that cannot be served (no lead due, compliance
denied) ends ``none`` with the reason in ``note``.

An offer nobody decides on within ``offer_ttl_s`` (``PREVIEW_OFFER_TTL_S``: the agent walked
away, closed the page, or their session expired) is withdrawn: the request is closed with a
note, the attempt ends ``skipped`` and the lead waits its retry delay. Until then it holds its
person (one call at a time) and its ledger reservation.

An offer lives in the pacer's memory: if the pacer goes away before the agent decides, the
attempt (never dialed) is settled by the next pacer's takeover like any other leftover, and
the request (still ``offered``, which no pacer holds now) is closed within
``PREVIEW_SWEEP_S``. When the campaign stops serving requests (paused, stopped, or out of
preview mode), the pacer closes the open ones within ``PREVIEW_SWEEP_S`` and returns what it
had offered, undialed: a request left open would keep its agent from asking anywhere else.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, NamedTuple

from dialer.selection import Dial, claim_and_gate
from dialer.trunks import TrunkFull

if TYPE_CHECKING:
    from dialer.runner import CampaignRunner

log = logging.getLogger(__name__)

PREVIEW_QUEUE_PREFIX = "preview-"
PREVIEW_QUEUE_TIMEOUT_S = 60  # the agent asked for this call: wait for them
PREVIEW_SWEEP_S = 10.0  # how soon requests are closed once the campaign stops serving them
#: How long an offer waits for the agent's decision before it is withdrawn.
PREVIEW_OFFER_TTL_S = 300.0

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
# The campaign's offered requests (by the partial index of the open requests).
_OFFERED = """
SELECT id, attempt_id::text AS attempt_id FROM preview_requests
WHERE campaign_id = $1 AND state = 'offered'
"""
_SET = """
UPDATE preview_requests SET state = $2, attempt_id = coalesce($3::uuid, attempt_id),
       note = $4, updated_at = now()
WHERE id = $1
"""
# A move from one state only: the agent decides on the same row from the web API meanwhile.
_MOVE = """
UPDATE preview_requests SET state = $3, note = $4, updated_at = now()
WHERE id = $1 AND state = $2
RETURNING id
"""
_ATTEMPT_STATE = "SELECT state FROM call_attempts WHERE id = $1::uuid"


class _Offer(NamedTuple):
    dial: Dial
    request_id: int
    at: float  # offered then (monotonic)


def preview_queue(agent_code: str) -> str:
    return PREVIEW_QUEUE_PREFIX + agent_code


class PreviewDesk:
    """One campaign's open preview requests, served by its pacer each tick."""

    def __init__(self, runner: CampaignRunner, offer_ttl_s: float = PREVIEW_OFFER_TTL_S) -> None:
        self.runner = runner
        self.offer_ttl_s = offer_ttl_s
        # attempt id -> the dial offered, not yet decided: its request, since when (monotonic)
        self.offers: dict[str, _Offer] = {}
        #: Offers accepted and being dialed (checked, marked dialed, originated): no longer
        #: offers, not yet calls; the runner's sweep leaves them alone.
        self.dialing: set[str] = set()
        self._swept_at = -PREVIEW_SWEEP_S

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
        await self._expire()
        now = time.monotonic()
        if now - self._swept_at >= PREVIEW_SWEEP_S:
            await self._close_orphans()
            self._swept_at = now

    async def close_all(self, why: str) -> int:
        """The campaign serves no requests now (not running, or no longer in preview mode):
        its open requests are closed with ``why`` (the agent may ask elsewhere; one open
        request per agent), and the leads offered go back undialed. How many were closed."""
        r = self.runner
        rows = await r.pool.fetch(_OPEN, r.c.id)
        for row in rows:
            await r.pool.execute(_SET, row["id"], "closed", None, why)
        offers, self.offers = self.offers, {}
        for o in offers.values():
            r.end_undialed(o.dial, "skipped")  # never dialed: not placed, the ledger released
        return len(rows)

    async def _offer(self, request_id: int) -> None:
        r = self.runner
        try:
            dials, denied = await claim_and_gate(
                r.selection_pool(), r.gate, campaign_id=r.c.id, campaign_code=r.c.code,
                packs=r.c.packs, want=1, node=r.node, pbx=r.pbx, now=r.clock(),
                channel=r.c.channel, trunk=r.c.trunk, margin_s=r.c.margin_s,
            )  # fmt: skip
        except TrunkFull as e:  # the agent may ask again once a call on the trunk ends
            await r.pool.execute(_SET, request_id, "none", None, str(e))
            return
        r.stats.denied += len(denied)
        if not dials:
            codes = sorted({c for d in denied for c in d.decision.codes})
            note = f"compliance denied ({', '.join(codes)})" if denied else "no leads due"
            await r.pool.execute(_SET, request_id, "none", None, note)
            return
        d = dials[0]
        self.offers[d.attempt_id] = _Offer(d, request_id, time.monotonic())
        await r.pool.execute(_SET, request_id, "offered", d.attempt_id, None)

    async def _call(self, request_id: int, attempt_id: str, agent: str) -> None:
        r = self.runner
        offer = self.offers.pop(attempt_id, None)
        if offer is None:  # offered by a pacer that is gone: its leftover attempt is settled
            await r.pool.execute(_SET, request_id, "closed", None, "the offer expired; ask again")
            return
        d = offer.dial
        self.dialing.add(attempt_id)
        try:
            try:
                why_not = await self._dial_check(d)
            except BaseException:
                # decided again next tick (the request stays accepted)
                self.offers[attempt_id] = offer._replace(at=time.monotonic())
                raise
            if why_not is not None:
                log.info(
                    "dialer %s: preview attempt %s not dialed: %s", r.c.code, attempt_id, why_not
                )
                r.end_undialed(d, "skipped")  # never dialed: not placed, the ledger released
                await r.pool.execute(_SET, request_id, "none", None, why_not)
                return
            # (a failure here leaves the attempt open and undialed, or marked dialed and not:
            # the runner's sweep ends it, as skipped or, the safe side, as lost)
            await r.pool.execute(_SET, request_id, "dialed", None, None)
            r.dial_now(d, queue=preview_queue(agent), queue_timeout_s=PREVIEW_QUEUE_TIMEOUT_S)
        finally:
            self.dialing.discard(attempt_id)

    async def _dial_check(self, d: Dial) -> str | None:
        """Why ``d`` must not be dialed now (None: dial it). The offer's attempt must still be
        open (a reconcile or another node may have settled it) and compliance must allow the
        dial now, not only when the lead was offered."""
        r = self.runner
        async with r.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            state = await conn.fetchval(_ATTEMPT_STATE, d.attempt_id)
            if state != "originating":
                return "the offer expired; ask again"
            decision = await r.gate.recheck(
                conn,
                attempt_id=d.attempt_id,
                person_id=d.person_id,
                debt_ids=(d.debt_id,),
                phone_id=d.phone_id,
                e164=d.e164,
                channel=r.c.channel,
                packs=r.c.packs,
                now=r.clock(),
                margin_s=r.c.margin_s,
            )
        if r.on_decision is not None:
            r.on_decision(decision.allowed, decision.codes)
        if decision.allowed:
            return None
        r.stats.denied += 1
        return f"compliance denied at dial time ({', '.join(sorted(set(decision.codes)))})"

    async def _skip(self, request_id: int, attempt_id: str) -> None:
        offer = self.offers.pop(attempt_id, None)
        await self.runner.pool.execute(_SET, request_id, "closed", None, "skipped")
        if offer is not None:
            self.runner.end_undialed(offer.dial, "skipped")

    async def _expire(self) -> None:
        """Offers the agent has not decided on within ``offer_ttl_s`` are withdrawn."""
        r = self.runner
        now = time.monotonic()
        old = [(a, o.request_id) for a, o in self.offers.items() if now - o.at >= self.offer_ttl_s]
        for attempt_id, request_id in old:
            note = f"the offer expired after {self.offer_ttl_s:.0f} s without a decision; ask again"
            moved = await r.pool.fetchval(_MOVE, request_id, "offered", "closed", note)
            if moved is None:
                state = await r.pool.fetchval(
                    "SELECT state FROM preview_requests WHERE id = $1", request_id
                )
                if state in ("accepted", "skipped"):
                    continue  # decided just now: served by the next tick
            offer = self.offers.pop(attempt_id, None)
            if offer is not None:
                log.info("dialer %s: preview offer %s expired", r.c.code, attempt_id)
                r.end_undialed(offer.dial, "skipped")  # never dialed: not placed

    async def _close_orphans(self) -> None:
        """Offered requests no offer of this pacer stands behind (a pacer before a restart or
        a takeover made them): closed, so that their agents may ask again. Their attempts,
        never dialed, are the takeover's to settle."""
        r = self.runner
        for row in await r.pool.fetch(_OFFERED, r.c.id):
            if row["attempt_id"] in self.offers:
                continue
            await r.pool.fetchval(
                _MOVE, row["id"], "offered", "closed", "the offer expired; ask again"
            )

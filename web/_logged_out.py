"""Logged-out agents out of every Asterisk queue, whoever logged them out.

The desktop logs an agent out in Asterisk first (``QueueRemove`` from its campaign's queue, the
inbound queue and its own preview queue: web/_agents.py), then writes the state. A logout
written without a PBX link at hand (``puente users disable``, run as its own process; a node
with ``ami.enabled = false``) reaches Asterisk only through the service: each campaign's leader
takes the agent out of that campaign's queue (dialer/runner.py ``_seat_agents``), and this
sweeper out of every other queue it is still in (the inbound queue, ``preview-<code>``, ...),
so that a person who left is never rung.

Every few seconds it reads the logged-out agents whose state is older than ``settle_s`` (a
state written just now may be the desktop's own change, under way), and leaves alone a
membership Asterisk added after the logout for ``login_under_way_s`` (the desktop logging the
agent in again adds the queues before it writes the state); when that list changed
since the last sweep, after a reconnect, or every ``full_every_s`` anyway, it asks Asterisk for
every queue's members (one ``QueueStatus``) and removes those agents' dynamic memberships.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import asyncpg

from dialer.agents import LOGIN_UNDER_WAY_S, QueueMember, leftover_removals, login_under_way
from pbx import PbxError
from pbx.ami import AmiClient
from web._agents import AMI_TIMEOUT_S

log = logging.getLogger(__name__)

# Logged-out agents whose state did not change in the last $1 seconds (either way: the demo's
# clock may write states ahead of the database's now()).
_LOGGED_OUT_SQL = """
SELECT a.code, a.name, a.interface, s.at
FROM agents a
JOIN agent_current_states s ON s.agent_id = a.id
WHERE s.state = 'logged_out'
  AND NOT s.at BETWEEN now() - make_interval(secs => $1) AND now() + make_interval(secs => $1)
"""
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class LoggedOutSweeper:
    """Removes logged-out agents from the queues Asterisk still has them in (see the module)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        ami: Callable[[], AmiClient | None],
        *,
        every_s: float = 5.0,
        full_every_s: float = 300.0,
        settle_s: float = 10.0,
        login_under_way_s: float = LOGIN_UNDER_WAY_S,
    ) -> None:
        self._pool = pool
        self._ami = ami
        self._every_s = every_s
        self._full_every_s = full_every_s
        self._settle_s = settle_s
        self._login_s = login_under_way_s
        self._swept: object = None  # what the last complete sweep saw
        self._next_full = 0.0
        self.removed_total = 0

    async def sweep(self) -> list[str]:
        """One sweep; what it removed (``"<agent> from <queue>"``)."""
        client = self._ami()
        if client is None or not client.connected:
            return []
        rows = await self._pool.fetch(_LOGGED_OUT_SQL, self._settle_s)
        seen = (client.connects_total, frozenset((r["code"], r["at"]) for r in rows))
        if not rows or (seen == self._swept and time.monotonic() < self._next_full):
            self._swept = seen
            return []
        status = await client.send_action("QueueStatus", (), timeout_s=AMI_TIMEOUT_S)
        members = [dict(ev.pairs) for ev in status.events if ev.name == "QueueMember"]
        by_interface = {r["interface"]: r for r in rows}
        logged_out = {i: QueueMember(i, r["name"]) for i, r in by_interface.items()}
        # A membership added since the logout is the desktop logging the agent in again (it
        # tells Asterisk first, then writes the state): left alone while that may be under way.
        since = {i: r["at"].timestamp() for i, r in by_interface.items()}
        now = time.time()
        left: list[dict[str, str]] = []
        under_way: list[dict[str, str]] = []
        for m in members:
            (under_way if login_under_way(m, since, now, self._login_s) else left).append(m)
        steps = leftover_removals(left, logged_out)
        # An agent who logged in again meanwhile is left where the desktop put it.
        still: set[tuple[str, object]] = set()
        if steps:
            now_rows = await self._pool.fetch(_LOGGED_OUT_SQL, self._settle_s)
            still = {(r["code"], r["at"]) for r in now_rows}
        removed, complete = [], not under_way  # (one under way is looked at again next time)
        for member, step in steps:
            row = by_interface[member.interface]
            if (row["code"], row["at"]) not in still:
                continue
            code = row["code"]  # (logs name the agent: an interface may be a number)
            result = await client.send_action(step.action, step.fields, timeout_s=AMI_TIMEOUT_S)
            if result.ok:
                removed.append(f"{code} from {step.queue}")
                log.info("agent %s is logged out: removed from queue %s", code, step.queue)
            elif result.message not in step.already:
                complete = False
                log.warning("agent %s is logged out: Asterisk refused the %s: %s", code,
                            step.what, result.message)  # fmt: skip
        self.removed_total += len(removed)
        if complete:
            self._swept, self._next_full = seen, time.monotonic() + self._full_every_s
        return removed

    async def run(self) -> None:
        """Sweep every ``every_s`` until cancelled; a failed sweep is tried again next time."""
        while True:
            try:
                async with asyncio.timeout(60):
                    await self.sweep()
            except (*_DB_ERRORS, PbxError, TimeoutError) as e:
                log.warning("logged-out agents not swept: %s", e.__class__.__name__)
            await asyncio.sleep(self._every_s)

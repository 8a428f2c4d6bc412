"""Trunks shared by campaigns: a carrier account's channels, counted across campaigns and nodes.

A campaign's ``max_lines`` bounds its own calls. Campaigns dialing through one trunk (the same
``campaigns.trunk``, on any node, through any Asterisk) share its carrier account, which takes
so many calls at once; past that the carrier refuses the call (SIP 503, cause 34): the
debtor's phone never rings and the lead's try is spent. A trunk given its channels here
(``puente trunks set PJSIP/carrier 120``, table ``trunks``, migration 0035) is shared by
them: each claim for a campaign on it (:func:`dialer.selection.claim_and_gate`) first locks the
trunk's row, then counts the attempts not yet final of every campaign on the trunk, and claims
no more leads than the channels left. The lock is held to the claim's commit, when its attempts
are written: two claims on one trunk, from two nodes, never both see the same channel free.

What counts as a channel in use is an attempt not yet ``final``: from its intent (written
before the Originate) to its result, whether it rings, talks or has hung up with its result
not yet written (the database was away). So the count errs on the side of fewer calls, never
more. A preview offer an agent has not answered yet holds its channel too.

A trunk not named in the table has no limit but its campaigns' ``max_lines``; ``0`` channels
stops every campaign on the trunk from dialing (their status says why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from db.audit import audit

#: Past this a channel count is a typo (a carrier account of 100,000 channels is not one).
MAX_CHANNELS = 100_000

#: A trunk as ``campaigns.trunk`` names it (checked by :class:`dialer.campaigns.Campaign` and
#: here; the ``trunks`` table's CHECK says the same): an Asterisk channel technology, optionally
#: ``/`` and the endpoint. The dialer dials ``<tech>/<number>@<endpoint>`` in the Originate's
#: ``Channel`` header: a CR or LF there is refused by the AMI encoder (every dial then fails,
#: its fate unknown), and a space, ``@``, ``/`` or ``,`` in the endpoint makes a channel
#: Asterisk cannot dial.
TRUNK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}(?:/[A-Za-z0-9_.:+=~-]{1,95})?")

_LOCK = "SELECT max_channels FROM trunks WHERE name = $1 FOR UPDATE"
#: A statement of its own, after the lock: in READ COMMITTED it takes a new snapshot, so it
#: sees the attempts of the claim that held the lock before us (a count in the locking
#: statement would use the snapshot taken before the wait, and miss them).
_IN_USE_OF = (
    "SELECT count(*) FROM call_attempts a JOIN campaigns c ON c.id = a.campaign_id"
    " WHERE a.state <> 'final' AND c.trunk = {trunk}"
)
_IN_USE = _IN_USE_OF.format(trunk="$1")


class TrunkError(ValueError):
    """A trunk's name or channels refused, or a trunk that is not there; the message says
    which and why."""


class TrunkFull(Exception):
    """No channel of the trunk is free: nothing was claimed."""

    def __init__(self, trunk: str, in_use: int, channels: int) -> None:
        self.trunk = trunk
        self.in_use = in_use
        self.channels = channels
        if channels == 0:
            text = f"trunk {trunk} is closed (0 channels: puente trunks set)"
        else:
            text = f"trunk {trunk} full: {in_use} of its {channels} channels in use"
        super().__init__(text)


@dataclass(frozen=True)
class TrunkUse:
    name: str
    channels: int
    in_use: int
    campaigns: tuple[str, ...]


def check_name(name: object) -> str:
    """The trunk's name as campaigns say it, or :class:`TrunkError` naming what is wrong."""
    if not isinstance(name, str) or not TRUNK_NAME.fullmatch(name):
        raise TrunkError(
            f"trunk name must be an Asterisk channel technology and endpoint like "
            f"'PJSIP/carrier' (letters, digits and _ . : + = ~ -), as the campaigns name it; "
            f"got {name!r:.80}"
        )
    return name


def check_channels(value: object) -> int:
    """A whole number of channels from 0 to :data:`MAX_CHANNELS` (text as typed is read)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (text := value.strip()).isascii() and text.isdigit():
        number = int(text) if len(text) <= 9 else MAX_CHANNELS + 1  # (int() fails past 4,300)
    if number is None or not 0 <= number <= MAX_CHANNELS:
        raise TrunkError(
            f"channels must be a whole number from 0 to {MAX_CHANNELS:,} (0 stops every "
            f"campaign on the trunk), got {value!r:.40}"
        )
    return number


async def room_on_trunk(conn: asyncpg.Connection, trunk: str) -> tuple[int, int] | None:
    """Lock ``trunk``'s row until the transaction ends and return ``(in use, channels)``;
    None when the trunk has no limit (nothing is locked then). Run it in the claim's
    transaction, before the claim: every claim on the trunk waits here for the one before."""
    channels = await conn.fetchval(_LOCK, trunk)
    if channels is None:
        return None
    in_use = await conn.fetchval(_IN_USE, trunk)
    return in_use, channels


async def set_channels(pool: asyncpg.Pool, name: str, channels: int, *, actor: str) -> int | None:
    """Give the trunk ``channels`` (audited); returns what it had before (None: no limit)."""
    name, channels = check_name(name), check_channels(channels)
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchval(_LOCK, name)
        await conn.execute(
            "INSERT INTO trunks (name, max_channels) VALUES ($1, $2) ON CONFLICT (name) DO "
            "UPDATE SET max_channels = excluded.max_channels, updated_at = now()",
            name,
            channels,
        )
        await audit(
            conn, actor, "trunk.set", f"trunk:{name}", {"channels": channels, "before": before}
        )
    return before


async def remove(pool: asyncpg.Pool, name: str, *, actor: str) -> int:
    """The trunk has no limit any more (audited); returns the channels it had."""
    name = check_name(name)
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchval("DELETE FROM trunks WHERE name = $1 RETURNING max_channels",
                                     name)  # fmt: skip
        if before is None:
            raise TrunkError(f"trunk {name} has no channels set (puente trunks list)")
        await audit(conn, actor, "trunk.remove", f"trunk:{name}", {"before": before})
    return before


async def trunk_use(pool: asyncpg.Pool) -> list[TrunkUse]:
    """Every trunk with channels set, with its calls in progress and the campaigns on it."""
    rows = await pool.fetch(
        f"""
        SELECT t.name, t.max_channels, ({_IN_USE_OF.format(trunk="t.name")}) AS in_use,
               ARRAY(SELECT c.code FROM campaigns c WHERE c.trunk = t.name ORDER BY c.code)
                 AS campaigns
        FROM trunks t ORDER BY t.name
        """
    )
    return [
        TrunkUse(r["name"], r["max_channels"], r["in_use"], tuple(r["campaigns"])) for r in rows
    ]

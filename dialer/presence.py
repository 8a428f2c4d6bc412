"""Which nodes are alive: each node's dialer holds one database session named after it.

A node follows its own calls; when it dies, another node must settle them, or its open
attempts stay open forever: their leads never come back, their lines and trunk channels stay
taken. The database is what every node shares, and a session ends when its process does (the
server notices a closed socket at once, a vanished machine at TCP keep-alive). So a node is
alive while its *presence session* is: a connection the dialer keeps out of the pool, with
``application_name`` set to :func:`session_name` of the node, visible to every node in
``pg_stat_activity``.

The test is one-sided on purpose: a node whose name two processes share, or whose session is
there but whose process hangs, counts as alive, and its calls are left alone (the safe side:
nothing is settled twice). A node that announces no presence of its own (a runner without the
dialer component, a test) settles nobody else's calls: it could not tell the living from the
dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

import asyncpg

log = logging.getLogger(__name__)

_PREFIX = "puente/"
#: PostgreSQL keeps 63 bytes of an ``application_name`` (NAMEDATALEN - 1) and, before 16,
#: replaces what is not printable ASCII: a longer or other name is told by a hash of it.
_MAX_NAME_BYTES = 63

#: How often the presence session is checked, and opened again once lost (a database restart
#: ends it): other nodes take a node absent for ``dialer.runner._DEAD_AFTER_S`` for dead.
PRESENCE_EVERY_S = 2.0
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

_LIVE_SQL = """
SELECT DISTINCT application_name FROM pg_stat_activity
WHERE datname = current_database()
  AND (application_name LIKE 'puente/%' OR application_name LIKE 'puente#%')
"""


def session_name(node: str) -> str:
    """The ``application_name`` of ``node``'s presence session: ``puente/<node>`` when that is
    printable ASCII that fits, else ``puente#<hash of the name>``."""
    name = _PREFIX + node
    if len(name) <= _MAX_NAME_BYTES and name.isascii() and name.isprintable():
        return name
    return "puente#" + hashlib.sha256(node.encode("utf-8", "surrogatepass")).hexdigest()[:40]


async def live_sessions(pool: asyncpg.Pool | asyncpg.Connection) -> frozenset[str]:
    """The presence sessions open now (their names, see :func:`session_name`)."""
    rows = await pool.fetch(_LIVE_SQL)
    return frozenset(r["application_name"] for r in rows)


class Presence:
    """This node's presence session: :meth:`ensure` opens it (again, after it was lost),
    :meth:`close` ends it (at stop: the node's calls are then anyone's to settle)."""

    def __init__(self, pool: asyncpg.Pool, node: str) -> None:
        self.pool = pool
        self.node = node
        self.name = session_name(node)
        self._conn: asyncpg.Connection | None = None

    @property
    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            return not self._conn.is_closed()
        except asyncpg.InterfaceError:  # (the pool took the broken connection back)
            return False

    async def ensure(self) -> bool:
        """Open the session if it is not; whether it is open now. Database errors propagate
        (the caller logs them and tries again later)."""
        if self.held:
            return True
        await self._drop()
        conn = await self.pool.acquire()
        try:
            await conn.execute("SELECT set_config('application_name', $1, false)", self.name)
        except BaseException:
            await self.pool.release(conn)
            raise
        self._conn = conn
        log.info("dialer: node %s present in the database (session %s)", self.node, self.name)
        return True

    async def keep(self) -> None:
        """Hold the session until cancelled: opened again within ``PRESENCE_EVERY_S`` of its
        loss (a failure to is logged once until it succeeds)."""
        failing = False
        while True:
            try:
                async with asyncio.timeout(10 * PRESENCE_EVERY_S):
                    await self.ensure()
                failing = False
            except _DB_ERRORS as e:
                if not failing:
                    log.warning("dialer: node %s cannot hold its presence session: %s",
                                self.node, e)  # fmt: skip
                failing = True
            await asyncio.sleep(PRESENCE_EVERY_S)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # (the pool resets it: its application_name goes back to the pool's)
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("RESET application_name")
            with contextlib.suppress(asyncpg.InterfaceError):  # (released already)
                await self.pool.release(conn)

    async def close(self) -> None:
        await self._drop()

"""Sessions a killed process left open are ended when the IVR starts again on the same node.

A ``kill -9`` mid-call leaves the session's row with no outcome and no end: reports and metrics
would count it as a call in progress forever. The IVR's start ends this node's open rows as
``lost`` (as the dialer calls an attempt that ended while nobody listened); the rows of other
nodes, alive and in their calls, are not touched. A database away at the start does not stop
the start: the sweep runs at the next one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid

import asyncpg
import pytest

from ivr import IvrService, IvrSettings, build_ivr
from pbx.agi import AgiSettings
from puente.wiring import AgiComponent


async def _session(
    pool: asyncpg.Pool, node: str | None, *, outcome: str | None = None
) -> uuid.UUID:
    sid = uuid.uuid4()
    await pool.execute(
        "INSERT INTO ivr_sessions (id, flow, language, entry, node, outcome, ended_at,"
        " started_at) VALUES ($1, 'collections', 'es', 'inbound', $2, $3,"
        " CASE WHEN $3::text IS NULL THEN NULL ELSE now() - interval '1 hour' END,"
        " now() - interval '2 hours')",
        sid,
        node,
        outcome,
    )
    return sid


async def _state(pool: asyncpg.Pool, sid: uuid.UUID) -> tuple[str | None, bool]:
    row = await pool.fetchrow("SELECT outcome, ended_at FROM ivr_sessions WHERE id = $1", sid)
    return row["outcome"], row["ended_at"] is not None


def _service(pool: asyncpg.Pool, node: str) -> IvrService:
    return build_ivr(pool, IvrSettings(), gate=None, node=node)


async def test_start_ends_this_nodes_open_sessions_and_no_other(
    db_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    mine = [await _session(db_pool, "sweep-a") for _ in range(2)]
    done = await _session(db_pool, "sweep-a", outcome="paid")
    theirs = await _session(db_pool, "sweep-b")
    nameless = await _session(db_pool, None)  # a row from before sessions named their node

    assert await _service(db_pool, "sweep-a").start() == 2

    for sid in mine:
        assert await _state(db_pool, sid) == ("lost", True)
    assert await _state(db_pool, done) == ("paid", True)  # already ended: kept as it was
    assert await _state(db_pool, theirs) == (None, False)  # another node's live call
    assert await _state(db_pool, nameless) == (None, False)
    assert any(
        r.levelno == logging.INFO and "2" in r.getMessage() and "lost" in r.getMessage()
        for r in caplog.records
    )
    assert await _service(db_pool, "sweep-a").start() == 0  # nothing left: a no-op


async def test_the_fastagi_component_sweeps_before_it_listens(db_pool: asyncpg.Pool) -> None:
    left = await _session(db_pool, "sweep-c")
    component = AgiComponent(AgiSettings(port=0), _service(db_pool, "sweep-c"))
    async with asyncio.TaskGroup() as tg:
        await component.start(tg)
        try:
            assert component.server.listening
            assert await _state(db_pool, left) == ("lost", True)
        finally:
            await component.stop()


async def test_a_database_away_at_the_start_does_not_stop_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{port}/none", min_size=0, max_size=1, timeout=2
    )
    try:
        component = AgiComponent(AgiSettings(port=0), _service(pool, "sweep-d"))
        async with asyncio.TaskGroup() as tg:
            await component.start(tg)
            try:
                assert component.server.listening
            finally:
                await component.stop()
    finally:
        await pool.close()
    assert any(
        r.levelno == logging.WARNING and "next start" in r.getMessage() for r in caplog.records
    )

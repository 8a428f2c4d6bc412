"""Plans as the service gets them: a prepared statement's generic plan, run and measured.

asyncpg prepares every statement, and after five executions PostgreSQL may keep a plan made
without the parameters' values (plpgsql functions cache theirs the same way). These helpers
run a statement under ``plan_cache_mode = force_generic_plan`` so a test can check that plan,
on a database big enough for the choice to matter.
"""

from __future__ import annotations

import json


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return "'{" + ",".join(str(v) for v in value) + "}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def generic_plan(pool, sql: str, types: str, *args: object) -> dict:
    """``EXPLAIN ANALYZE`` of ``sql`` as the service runs it after a few executions: a
    prepared statement with a generic plan (made without the parameters' values), which
    PostgreSQL may cache for good. Rolled back."""
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE generic_q({types}) AS {sql}")
            text = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE generic_q("
                + ", ".join(_literal(a) for a in args)
                + ")"
            )
        finally:
            await tr.rollback()
            await conn.execute("DEALLOCATE generic_q")
    return json.loads(text)[0]


def scans(node: dict) -> list[tuple[str, str | None, str | None, int]]:
    """Every node of a plan: type, relation, index and the rows it produced (per loop)."""
    out = [
        (node["Node Type"], node.get("Relation Name"), node.get("Index Name"),
         node.get("Actual Rows", 0))
    ]  # fmt: skip
    for child in node.get("Plans", []):
        out += scans(child)
    return out

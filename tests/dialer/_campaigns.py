"""A creditor and a campaign of its own, for tests that import leads into it."""

from __future__ import annotations

import os

import asyncpg


async def new_campaign(pool: asyncpg.Pool, prefix: str = "c") -> str:
    """A fresh creditor and campaign (MXN); returns the campaign's code."""
    code = f"{prefix}{os.urandom(4).hex()}"
    cred = await pool.fetchval(
        """INSERT INTO creditors (code, name, public_name, callback_number, currency)
           VALUES ($1, 'Acme Financiera', 'Acme', '+525500000000', 'MXN') RETURNING id""",
        code,
    )
    await pool.execute(
        "INSERT INTO campaigns (code, name, creditor_id) VALUES ($1, 'Test', $2)", code, cred
    )
    return code

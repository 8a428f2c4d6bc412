"""A role of its own for the service: it reads and writes rows, and nothing else.

The history Puente keeps (the compliance ledger, the audit log, do-not-call entries, consents,
overrides) refuses UPDATE, DELETE and TRUNCATE through triggers. A table's owner, or a
superuser, can disable or drop those triggers; a role that only holds row privileges cannot.
So in production the schema belongs to one role (it runs ``puente db migrate``) and the
service connects as another, given its rights by :func:`grant_service_role`
(``puente db grant ROLE``, run as the owner):

- ``CONNECT`` and ``TEMPORARY`` on the database (the lead import loads through a temporary
  table), ``USAGE`` on the schema;
- ``SELECT``, ``INSERT``, ``UPDATE`` and ``DELETE`` on every table, ``USAGE``, ``SELECT`` and
  ``UPDATE`` on every sequence; the same on the tables and sequences later migrations create
  (default privileges of the owner);
- not ``TRUNCATE`` (it skips row triggers), ``TRIGGER`` or ``REFERENCES``: revoked if some
  earlier grant gave them;
- ``analyze_lead_tables()`` (the import's fresh statistics: ANALYZE is the owner's);
- ``schema_migrations``: ``SELECT`` only (the service checks that nothing is pending; it never
  records a migration).

The service's start then applies nothing (the owner did) and runs as usual. Refused: a role
that does not exist, a superuser, the owner or a member of the owner's role (any of them could
undo the history's triggers, so the grant would protect nothing).
"""

from __future__ import annotations

import asyncpg

from db._exceptions import GrantError
from db.migrate import status

#: A role (``$1``, or the session's own when NULL): whether it is a superuser, who owns the
#: schema (NULL before the first migration) and whether the role holds the owner's rights.
_RIGHTS = """
SELECT r.rolname, r.rolsuper, o.owner,
       coalesce(pg_has_role(r.rolname, o.owner, 'USAGE'), false) AS owns
FROM pg_roles r
LEFT JOIN (SELECT pg_get_userbyid(relowner) AS owner FROM pg_class
           WHERE oid = to_regclass('schema_migrations')) o ON true
WHERE r.rolname = coalesce($1, current_user)
"""


def _could_undo_history(rights: asyncpg.Record) -> str | None:
    """Why the role of a :data:`_RIGHTS` row could disable or drop the history's triggers."""
    role, owner = rights["rolname"], rights["owner"]
    if rights["rolsuper"]:
        return f"role {role!r} is a superuser"
    if rights["owns"]:
        if owner == role:
            return f"role {role!r} owns the schema"
        return f"role {role!r} has the rights of {owner!r}, the schema's owner"
    return None


async def history_at_risk(conn: asyncpg.Connection) -> str | None:
    """Why ``conn``'s role could undo the ledger's history (it is a superuser, or has the
    schema owner's rights), or None when it holds rows only (:func:`grant_service_role`) or
    the database is not migrated yet."""
    rights = await conn.fetchrow(_RIGHTS, None)
    if rights is None or rights["owner"] is None:
        return None
    return _could_undo_history(rights)


async def grant_service_role(conn: asyncpg.Connection, role: str) -> list[str]:
    """Give ``role`` the service's rights on ``conn``'s database; the statements run.

    ``conn`` connects as the owner of the schema (the role that ran the migrations)."""
    if not role or len(role) > 63:
        raise GrantError(f"role name {role[:80]!r}: 1 to 63 characters")
    rights = await conn.fetchrow(_RIGHTS, role)
    if rights is None:
        raise GrantError(
            f"role {role!r} does not exist: create it first (CREATE ROLE {role} LOGIN PASSWORD "
            "'...'), then grant"
        )
    risk = _could_undo_history(rights)
    if rights["rolsuper"]:
        raise GrantError(
            f"{risk}: it could disable the triggers that keep the ledger's history; give the "
            "service a role without SUPERUSER"
        )
    owner = rights["owner"]
    if owner is None:
        raise GrantError("the database is not migrated: run `puente db migrate` first")
    waiting = [m for m in await status(conn) if m.state != "applied"]
    if waiting:
        m = waiting[0]
        raise GrantError(
            f"migration {m.version:04d}_{m.name} is {m.state}: the grant covers the schema as "
            "the migrations leave it (run `puente db migrate` first)"
        )
    if risk is not None:
        raise GrantError(
            f"{risk}: it could drop the ledger's triggers; give the service a role of its own"
        )
    mine = await conn.fetchrow(_RIGHTS, None)
    if not mine["owns"]:
        raise GrantError(
            f"role {mine['rolname']!r} does not own the schema ({owner!r} does): run the grant "
            f"as {owner!r}"
        )
    q, db, me = await conn.fetchrow(
        "SELECT quote_ident($1), quote_ident(current_database()), quote_ident($2)", role, owner
    )
    statements = [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {q}",
        f"GRANT USAGE ON SCHEMA public TO {q}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {q}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {q}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {q}",
        f"REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {q}",
        f"GRANT EXECUTE ON FUNCTION analyze_lead_tables() TO {q}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {me} IN SCHEMA public"
        f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {q}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {me} IN SCHEMA public"
        f" GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {q}",
    ]
    async with conn.transaction():
        for sql in statements:
            await conn.execute(sql)
    return statements

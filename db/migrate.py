"""Apply ``db/migrations/NNNN_name.sql`` in order, once each, with a checksum per file.

- Files are plain SQL, named ``NNNN_name.sql`` (four digits, unique, applied in numeric order).
- One transaction per file; a PostgreSQL advisory lock makes concurrent runners (several nodes
  starting at once) take turns; whoever comes second finds the work done.
- The SHA-256 of every applied file is recorded; editing a file after it was applied is an
  error (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from db._exceptions import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary, fixed 64-bit key for pg_advisory_xact_lock: "puente migrations".
LOCK_KEY = 0x7075656E74650001

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    sha256      text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sha256: str

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    applied_at: datetime | None
    state: str  # "applied", "pending", "modified" (checksum differs), "missing" (file gone)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in ``directory``, validated and in order."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(
                f"{path}: a migration file must be named NNNN_name.sql "
                "(four digits, lower-case letters, digits and underscores)"
            )
        version = int(m.group(1))
        if version in found:
            raise MigrationError(
                f"{path}: version {version:04d} is also used by {found[version].path.name}"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, m.group(2), path, digest)
    return [found[v] for v in sorted(found)]


async def status(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR
) -> list[MigrationStatus]:
    files = {m.version: m for m in discover(directory)}
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied = {}
    if exists:
        for r in await conn.fetch(
            "SELECT version, name, sha256, applied_at FROM schema_migrations"
        ):
            applied[r["version"]] = r
    out = []
    for v in sorted(set(files) | set(applied)):
        f, a = files.get(v), applied.get(v)
        if a is None:
            out.append(MigrationStatus(v, f.name, None, "pending"))  # type: ignore[union-attr]
        elif f is None:
            out.append(MigrationStatus(v, a["name"], a["applied_at"], "missing"))
        elif f.sha256 != a["sha256"]:
            out.append(MigrationStatus(v, f.name, a["applied_at"], "modified"))
        else:
            out.append(MigrationStatus(v, f.name, a["applied_at"], "applied"))
    return out


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration; return those applied by this call."""
    migrations = discover(directory)
    done: list[Migration] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        # (Created only when missing: a service role, which may not create tables
        # (db/grants.py), starts on a migrated database and has nothing to apply.)
        exists, readable, role = await conn.fetchrow(
            "SELECT t IS NOT NULL, has_table_privilege(t, 'SELECT'), current_user"
            " FROM (SELECT to_regclass('schema_migrations') AS t) s"
        )
        if not exists:
            await conn.execute(_BOOKKEEPING)
        elif not readable:
            raise MigrationError(
                f"role {role!r} may not read this database's schema_migrations: give it the "
                f"service's rights first (`puente db grant {role}`, as the database's owner)"
            )
    for mig in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            row = await conn.fetchrow(
                "SELECT sha256 FROM schema_migrations WHERE version = $1", mig.version
            )
            if row is not None:
                if row["sha256"] != mig.sha256:
                    raise MigrationError(
                        f"{mig.path.name} was edited after it was applied "
                        f"(recorded sha256 {row['sha256'][:12]}…, file {mig.sha256[:12]}…); "
                        "write a new migration instead"
                    )
                continue
            try:
                await conn.execute(mig.sql)
            except asyncpg.InsufficientPrivilegeError as e:
                raise MigrationError(
                    f"{mig.path.name} is not applied, and role {role!r} may not change the "
                    f"schema ({e}): apply the migrations as the database's owner (`puente db "
                    "migrate` with PUENTE_DATABASE_URL naming the owner), then start again"
                ) from e
            except asyncpg.PostgresError as e:
                raise MigrationError(f"{mig.path.name} failed: {e.__class__.__name__}: {e}") from e
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                mig.version,
                mig.name,
                mig.sha256,
            )
            done.append(mig)
    return done

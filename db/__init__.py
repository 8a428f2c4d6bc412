"""PostgreSQL: migrations, the connection pool, and the embedded local server."""

from db._exceptions import DbError, GrantError, LocalServerError, MigrationError
from db.grants import grant_service_role, history_at_risk
from db.local import LocalPostgres, LocalServerInfo
from db.migrate import Migration, MigrationStatus, discover, migrate, status
from db.pool import DatabaseSettings, create_pool

__all__ = [
    "DatabaseSettings",
    "DbError",
    "GrantError",
    "LocalPostgres",
    "LocalServerError",
    "LocalServerInfo",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "create_pool",
    "discover",
    "grant_service_role",
    "history_at_risk",
    "migrate",
    "status",
]

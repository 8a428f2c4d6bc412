"""The exception tree of :mod:`db`."""


class DbError(Exception):
    """Root of every error raised by :mod:`db`."""


class LocalServerError(DbError):
    """The embedded PostgreSQL server could not be found, initialised or started."""


class MigrationError(DbError):
    """A migration file is malformed, was edited after being applied, or failed to apply."""


class GrantError(DbError):
    """A role cannot be made the service's role (which role, and why)."""

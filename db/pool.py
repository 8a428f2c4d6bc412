"""The asyncpg connection pool and the database settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import asyncpg

from db._exceptions import DbError


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the database is and how to use it.

    ``url`` empty means: run the embedded PostgreSQL (:mod:`db.local`).
    """

    url: str = field(default="", repr=False)
    min_connections: int = 2
    max_connections: int = 20
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 10.0
    embedded_dir: str = ""

    @property
    def embedded(self) -> bool:
        return not self.url

    def validate(self) -> None:
        if not 1 <= self.max_connections <= MAX_CONNECTIONS:
            raise ValueError(
                f"max_connections {self.max_connections} must be in [1, {MAX_CONNECTIONS}]"
            )
        if not 0 <= self.min_connections <= self.max_connections:
            raise ValueError(
                f"min_connections {self.min_connections} must be in [0, max_connections"
                f" {self.max_connections}]"
            )
        for name in ("connect_timeout_s", "command_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
                raise ValueError(f"{name} {value} must be in (0, {MAX_TIMEOUT_S:.0f}]")


MAX_CONNECTIONS = 1000
MAX_TIMEOUT_S = 3600.0

# What connecting can raise besides PostgreSQL's refusals: a malformed URL
# (ClientConfigurationError, ValueError), a port past 65535 (OverflowError), a host that does not
# resolve or refuses (OSError), no answer in time.
CONNECT_ERRORS = (
    OSError, ValueError, OverflowError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError
)  # fmt: skip


def _written_password(url: str) -> str:
    """The password as written in ``url``: between the user's ``:`` and the last ``@``.

    Unlike :func:`urlsplit`'s, this one keeps an unencoded ``/``, ``?`` or ``#`` (which end
    the host part for a URL parser: the parsers then quote pieces of the password as a port,
    a query field...)."""
    rest = url.partition("://")[2]
    userinfo = rest.rpartition("@")[0]
    return userinfo.partition(":")[2]


def connect_error(e: BaseException, url: str, doing: str = "connect to") -> DbError:
    """``e`` (one of :data:`CONNECT_ERRORS`) as a :class:`DbError` naming what failed; the
    URL's password never appears in the message, nor any piece of it."""
    detail = str(e) or ("no answer in time" if isinstance(e, TimeoutError) else "")
    written = _written_password(url)
    if any(c in written for c in "/?#"):
        # Parsed as something else, the password is cut in pieces the message may quote.
        detail = "malformed URL (percent-encode any / ? # in the password)"
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or ""), written, unquote(written)} - {None, ""}:
        detail = detail.replace(secret, "<hidden>")  # type: ignore[arg-type]
    return DbError(f"cannot {doing} the database: {e.__class__.__name__}: {detail}".rstrip(": "))


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing, unless it is dirty.

    asyncpg's default runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on
    every release: one more round trip for each short transaction (a compliance decision is
    four). Puente keeps no session state on pooled connections: transaction-scoped locks only,
    no LISTEN, no SET outside a transaction; what needs session state (the pacing leader's
    lock, notifications) uses a dedicated connection. A connection released inside a
    transaction (a cancelled caller) still gets the full reset.
    """
    if conn.is_in_transaction():
        await conn.reset()


async def create_pool(url: str, settings: DatabaseSettings | None = None) -> asyncpg.Pool:
    """A pool on ``url``; connection failures are translated into :class:`DbError`."""
    s = settings or DatabaseSettings(url=url)
    try:
        s.validate()
    except ValueError as e:
        raise DbError(f"database settings: {e}") from None
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=s.min_connections,
            max_size=s.max_connections,
            timeout=s.connect_timeout_s,
            command_timeout=s.command_timeout_s,
            reset=_reset,
            # No JIT: Puente's statements are short, or periodic scans (the minute's rescore
            # of every ready lead, the wallboard) that PostgreSQL would compile anew each time:
            # 0.6 s of compilation for a 0.9 s rescore at 100,000 leads.
            server_settings={"jit": "off"},
        )
    except CONNECT_ERRORS as e:
        raise connect_error(e, url) from e
    assert pool is not None
    return pool

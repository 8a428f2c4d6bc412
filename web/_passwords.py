"""Password hashing with scrypt (the standard library's), and API/session token digests.

A stored hash reads ``scrypt$n$r$p$salt_b64$hash_b64`` (n=2**14, r=8, p=1, a 16-byte salt,
a 32-byte key); comparison is constant-time. Hashing costs about 16 MiB and tens of
milliseconds, so the async helpers run it in a thread and the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata

from web._exceptions import PasswordError

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
# Limits on the parameters a stored hash may carry (a hash edited to n=2**30 must not take the
# server's memory down).
_MAX_N = 2**20
_MAX_RP = 64
_MAXMEM = 256 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_MAXMEM,
        dklen=dklen,
    )


def untypable(text: str) -> bool:
    """True when ``text`` holds a character nobody types into a login form: a control
    character (NUL, ESC, a newline...) or a lone surrogate (undecodable bytes read from a
    terminal or a pipe)."""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def check_new_password(password: str) -> None:
    """Raise :class:`PasswordError` for a password that may not be set (never echoing it)."""
    if not isinstance(password, str):
        raise PasswordError("a password must be text")
    if untypable(password):
        raise PasswordError(
            "a password may not contain control characters or bytes that are not valid UTF-8"
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordError(f"a password has at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The storable hash of ``password`` (blocking: prefer :func:`hash_password_async`)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise PasswordError("stored password hash is not in scrypt$n$r$p$salt$hash form")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        raise PasswordError("stored password hash is malformed") from None
    power_of_two = n > 1 and n & (n - 1) == 0
    if not (power_of_two and n <= _MAX_N and 1 <= r <= _MAX_RP and 1 <= p <= _MAX_RP):
        raise PasswordError("stored password hash has out-of-range scrypt parameters")
    if not salt or not 16 <= len(key) <= 64:
        raise PasswordError("stored password hash is malformed")
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for a mismatch or a malformed hash."""
    try:
        n, r, p, salt, key = _parse(stored)
    except PasswordError:
        return False
    try:
        candidate = _scrypt(password, salt, n, r, p, len(key))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key)


# A hash of a random password: verified against when the user does not exist, so an unknown
# name takes as long to refuse as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str | None) -> bool:
    """:func:`verify_password` in a thread; ``stored=None`` (no such user) is always False,
    after the same work as a real check."""
    if stored is None:
        await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
        return False
    return await asyncio.to_thread(verify_password, password, stored)


def new_token(prefix: str) -> str:
    """A fresh random secret: ``prefix`` plus 256 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What is stored of a session or API token: its SHA-256 (the token itself never is)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

"""Login, sessions, CSRF, bearer tokens, roles, and what never reaches a log line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from yarl import URL

from tests.web._api_support import PASSWORD, account, audit_rows, served, unique
from web._passwords import (
    hash_password,
    token_digest,
    verify_password,
    verify_password_async,
)
from web._ratelimit import SlidingWindowLimiter
from web._users import add_user, disable_user, new_token, revoke_token

JSON = {"Accept": "application/json"}


# -- pure pieces ------------------------------------------------------------------------------
def test_password_hash_format_and_verify() -> None:
    stored = hash_password("s3cret-password")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 24
    assert len(key) == 44
    assert verify_password("s3cret-password", stored)
    assert not verify_password("s3cret-passwore", stored)
    assert hash_password("s3cret-password") != stored  # a fresh salt each time
    for broken in ("", "scrypt$1$8$1$AA==$AA==", "bcrypt$x", "scrypt$1073741824$8$1$AAAA$" + key):
        assert not verify_password("s3cret-password", broken)


async def test_unknown_user_costs_a_hash_and_fails() -> None:
    assert not await verify_password_async("whatever", None)


def test_sliding_window_limiter() -> None:
    lim = SlidingWindowLimiter(limit=2, window_s=60, max_keys=2)
    for t in (0.0, 1.0):
        assert lim.retry_after_s("a", t) == 0
        lim.record("a", t)
    assert lim.retry_after_s("a", 2.0) == pytest.approx(58.0)
    assert lim.retry_after_s("a", 60.5) == 0  # the first hit left the window
    lim.record("b", 3.0)
    assert lim.retry_after_s("c", 4.0) == 60  # full of live keys: refused, not grown
    assert lim.retry_after_s("c", 200.0) == 0  # old keys pruned
    assert len(lim) <= 2


# -- login ------------------------------------------------------------------------------------
async def _login(client, name: str, password: str = PASSWORD, **headers: str):
    return await client.post(
        "/login",
        data={"username": name, "password": password, "next": "/somewhere"},
        allow_redirects=False,
        headers=headers,
    )


async def test_login_sets_a_safe_cookie_and_the_session_works(db_pool) -> None:
    user = await account(db_pool, "supervisor")
    async with served(db_pool) as client:
        page = await client.get("/login")
        assert page.status == 200
        assert 'name="password"' in await page.text()
        r = await _login(client, user.name)
        assert r.status == 303
        assert r.headers["Location"] == "/somewhere"
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith("puente_session=pns_")
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie
        assert "Max-Age=28800" in cookie
        me = await client.get("/api/v1/me")
        body = await me.json()
        assert me.status == 200
        assert body["username"] == user.name
        assert body["via"] == "session"
        assert body["csrf_token"]
    stored = await db_pool.fetchval(
        "SELECT count(*) FROM web_sessions WHERE user_id = $1", user.user_id
    )
    assert stored == 1
    assert [r["subject"] for r in await audit_rows(db_pool, "auth.login", f"user:{user.name}")]


async def test_secure_cookies_when_behind_tls(db_pool) -> None:
    user = await account(db_pool, "admin")
    async with served(db_pool, secure_cookies=True) as client:
        r = await _login(client, user.name)
        assert "Secure" in r.headers["Set-Cookie"]


async def test_bad_password_unknown_user_and_disabled_user_are_refused_and_audited(
    db_pool,
) -> None:
    good = await account(db_pool, "agent")
    off = await account(db_pool, "agent")
    await disable_user(db_pool, off.name)
    async with served(db_pool) as client:
        for name, password in (
            (good.name, "wrong password"),
            ("nobody-here", PASSWORD),
            (off.name, PASSWORD),
        ):
            r = await _login(client, name, password)
            assert r.status == 401
            assert "Set-Cookie" not in r.headers
            assert "Invalid user name or password" in await r.text()
        assert (await client.get("/api/v1/me")).status == 401
        # A disabled user's token stops working too.
        assert (await client.get("/api/v1/me", headers=off.auth)).status == 401
    reasons = {(r["actor"], r["details"]) for r in await audit_rows(db_pool, "auth.login_failed")}
    text = " ".join(d for _, d in reasons)
    assert '"bad_password"' in text
    assert '"unknown_user"' in text
    assert '"disabled"' in text
    assert "nobody-here" not in str(reasons)  # a name that is no user's is not kept


async def test_login_is_rate_limited_per_user_and_per_client(db_pool) -> None:
    user = await account(db_pool, "agent")
    async with served(db_pool, login_attempts_per_min=3) as client:
        for _ in range(3):
            assert (await _login(client, user.name, "wrong password")).status == 401
        r = await _login(client, user.name)  # even the right password: over the limit
        assert r.status == 429
        assert 0 < int(r.headers["Retry-After"]) <= 60
        # The same client, another user name: the per-client limit holds as well.
        assert (await _login(client, "someone-else")).status == 429


async def test_session_expires_and_logout_revokes_it(db_pool) -> None:
    user = await account(db_pool, "agent")
    now = [datetime(2026, 11, 2, 12, tzinfo=UTC)]
    async with served(db_pool, clock=lambda: now[0], session_ttl_s=3600) as client:
        await _login(client, user.name)
        assert (await client.get("/api/v1/me")).status == 200
        now[0] += timedelta(seconds=3601)
        assert (await client.get("/api/v1/me")).status == 401
        now[0] -= timedelta(seconds=3601)
        csrf = (await (await client.get("/api/v1/me")).json())["csrf_token"]
        r = await client.post("/logout", headers={"X-CSRF-Token": csrf}, allow_redirects=False)
        assert r.status == 303
        assert r.headers["Location"] == "/login"
        assert (await client.get("/api/v1/me")).status == 401


async def test_pages_redirect_to_login_and_api_answers_401(db_pool) -> None:
    async with served(db_pool) as client:
        r = await client.get("/", allow_redirects=False)
        assert r.status == 302
        assert r.headers["Location"].startswith("/login?next=")
        r = await client.get("/api/v1/campaigns")
        assert r.status == 401
        assert "error" in await r.json()
        r = await client.get("/api/v1/me", headers={"Authorization": "Bearer pnt_forged"})
        assert r.status == 401
        r = await client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert r.status == 401
        # A public prefix does not open what lies behind it.
        for path in ("/static/../api/v1/campaigns", "/static/%2e%2e/api/v1/campaigns"):
            r = await client.get(URL(path, encoded=True), allow_redirects=False)
            assert r.status in (401, 404)


async def test_csrf_token_is_required_for_cookie_state_changes(db_pool) -> None:
    user = await account(db_pool, "supervisor")
    body = {"kind": "dnc", "e164": "+525512345678", "reason": "asked"}
    async with served(db_pool) as client:
        await _login(client, user.name)
        r = await client.post("/api/v1/blocks", json=body)
        assert r.status == 403
        assert "CSRF" in (await r.json())["error"]
        r = await client.post("/api/v1/blocks", json=body, headers={"X-CSRF-Token": "nope"})
        assert r.status == 403
        csrf = (await (await client.get("/api/v1/me")).json())["csrf_token"]
        r = await client.post("/api/v1/blocks", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status == 201
        # A form post carries it as a field.
        r = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert r.status == 303
    # Bearer calls need no CSRF token.
    async with served(db_pool) as client:
        r = await client.post("/api/v1/blocks", json=body, headers=user.auth)
        assert r.status == 201


async def test_login_with_json_accept_returns_the_csrf_token(db_pool) -> None:
    user = await account(db_pool, "agent")
    async with served(db_pool) as client:
        r = await _login(client, user.name, **JSON)
        assert r.status == 200
        body = await r.json()
        assert body["username"] == user.name
        assert len(body["csrf_token"]) > 20
        # Logging in again with a live session needs no CSRF token.
        assert (await _login(client, user.name, **JSON)).status == 200


async def test_next_never_leaves_the_site(db_pool) -> None:
    user = await account(db_pool, "agent")
    async with served(db_pool) as client:
        for target in (
            "//evil.example", "https://evil.example", "/\\evil", "javascript:x",
            # (browsers drop tabs and newlines from a URL: these are //evil.example to them)
            "/\t/evil.example", "/\n/evil.example", "/\x0b/evil.example",
        ):  # fmt: skip
            r = await client.post(
                "/login",
                data={"username": user.name, "password": PASSWORD, "next": target},
                allow_redirects=False,
            )
            assert r.headers["Location"] == "/"


async def test_bearer_token_works_until_revoked(db_pool) -> None:
    user = await account(db_pool, "admin")
    async with served(db_pool) as client:
        r = await client.post("/api/v1/tokens", json={"name": "ci"}, headers=user.auth)
        assert r.status == 201
        created = await r.json()
        token = {"Authorization": f"Bearer {created['token']}"}
        assert (await client.get("/api/v1/campaigns", headers=token)).status == 200
        listed = await (await client.get("/api/v1/tokens", headers=token)).json()
        assert "token" not in str(listed["tokens"][0].keys() - {"id", "name"})
        r = await client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=user.auth)
        assert r.status == 200
        assert (await client.get("/api/v1/campaigns", headers=token)).status == 401
        r = await client.post(f"/api/v1/tokens/{created['id']}/revoke", headers=user.auth)
        assert r.status == 409
        for name in ("a\nb", "x\x1b[31m", "y\x85"):  # control characters, as the CLI refuses
            r = await client.post("/api/v1/tokens", json={"name": name}, headers=user.auth)
            assert r.status == 422, name
            assert (await r.json())["field"] == "name"
    # Only the digest is stored.
    stored = await db_pool.fetchval(
        "SELECT token_sha256 FROM api_tokens WHERE id = $1", created["id"]
    )
    assert stored == token_digest(created["token"])
    # And the CLI's path revokes the same way.
    token_id, cli_token = await new_token(db_pool, user.name, "cli")
    assert await revoke_token(db_pool, token_id)
    async with served(db_pool) as client:
        r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {cli_token}"})
        assert r.status == 401


async def test_another_users_token_cannot_be_revoked(db_pool) -> None:
    a = await account(db_pool, "agent")
    b = await account(db_pool, "supervisor")
    token_id = await db_pool.fetchval("SELECT id FROM api_tokens WHERE user_id = $1", a.user_id)
    async with served(db_pool) as client:
        r = await client.post(f"/api/v1/tokens/{token_id}/revoke", headers=b.auth)
        assert r.status == 404


async def test_roles_are_enforced(db_pool) -> None:
    agent = await account(db_pool, "agent")
    async with served(db_pool) as client:
        r = await client.post(
            "/api/v1/campaigns", json={"code": "x1", "name": "X"}, headers=agent.auth
        )
        assert r.status == 403
        assert "admin or supervisor" in (await r.json())["error"]
        assert (await client.get("/api/v1/campaigns", headers=agent.auth)).status == 403
        assert (
            await client.get("/api/v1/reports/daily.csv?date=2026-01-01", headers=agent.auth)
        ).status == 403


async def test_user_names_and_passwords_are_checked(db_pool) -> None:
    from web import PasswordError, UserError

    with pytest.raises(PasswordError):
        await add_user(db_pool, unique("u"), "short", "agent")
    with pytest.raises(UserError):
        await add_user(db_pool, "bad name", PASSWORD, "agent")
    with pytest.raises(UserError):
        await add_user(db_pool, unique("u"), PASSWORD, "root")
    with pytest.raises(UserError, match="no agent"):
        await add_user(db_pool, unique("u"), PASSWORD, "agent", agent_code="missing")
    name = unique("u")
    await add_user(db_pool, name, PASSWORD, "agent")
    with pytest.raises(UserError, match="already exists"):
        await add_user(db_pool, name, PASSWORD, "agent")


async def test_no_password_or_token_in_any_log_line(db_pool, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = await account(db_pool, "admin")
    secret_password = "Very-Secret-Passw0rd!"
    async with served(db_pool) as client:
        await _login(client, user.name, secret_password)  # wrong password, logged as failed
        r = await _login(client, user.name)
        cookie = r.cookies["puente_session"].value
        csrf = (await (await client.get("/api/v1/me")).json())["csrf_token"]
        r = await client.post("/api/v1/tokens", json={"name": "x"}, headers=user.auth)
        new = (await r.json())["token"]
        await client.get("/api/v1/blocks?e164=%2B525512345678", headers=user.auth)
        await client.post(
            "/api/v1/blocks",
            headers={"X-CSRF-Token": csrf},
            json={"kind": "dnc", "e164": "+525512345678"},
        )
        await client.get("/api/v1/me", headers={"Authorization": "Bearer pnt_forged-token"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /login 401" in logged
    assert "GET /api/v1/me" in logged
    for secret in (
        secret_password,
        PASSWORD,
        user.token,
        cookie,
        csrf,
        new,
        "pnt_forged-token",
        "+525512345678",
        "5512345678",
    ):
        assert secret not in logged, secret


FORM_BODIES = [
    b"",
    b"\xff\xfe",
    b"--x\r\nContent-Disposition: form-data\r\n\r\n",
    b"a=%ZZ&b",
    b"username=%00&password=" + b"x" * 5000,
    b"username=a&username=b&password=c",
    b"x" * 2_000_000,
]
FORM_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "application/x-www-form-urlencoded; charset=bogus",
    "text/plain",
]


async def test_garbage_forms_never_make_a_server_error(db_pool) -> None:
    user = await account(db_pool, "admin")
    failures = []
    async with served(db_pool, login_attempts_per_min=1000) as client:
        await _login(client, user.name)  # a session: /logout and the API check its CSRF token
        for path in ("/login", "/logout", "/api/v1/blocks"):
            for body in FORM_BODIES:
                for content_type in FORM_TYPES:
                    r = await client.post(
                        path,
                        data=body,
                        headers={"Content-Type": content_type},
                        allow_redirects=False,
                    )
                    if r.status >= 500:
                        failures.append((path, body[:30], content_type, r.status))
    assert not failures


@pytest.mark.parametrize("name", ["\x00", "bob\x00", "bo\nb", "\x1b[2Jbob"])
async def test_login_with_control_characters_is_a_failed_login(db_pool, name) -> None:
    async with served(db_pool) as client:
        r = await _login(client, name, "\x00")
        assert r.status == 401
        text = await r.text()
        assert "Invalid user name or password" in text
        assert "Error" not in text  # nothing of the database's own errors


def test_new_passwords_must_be_typable() -> None:
    from web import PasswordError
    from web._passwords import check_new_password

    for bad in ("\udcff\udcfe\udcfdabcdefgh", "abc\x00defghijk", "abcdefgh\x1b", "abc\tdefgh"):
        with pytest.raises(PasswordError, match="control characters"):
            check_new_password(bad)
    check_new_password("contraseña segura")  # any printable text is fine


async def test_token_labels_are_capped_like_the_api(db_pool) -> None:
    from web import UserError

    user = await account(db_pool, "agent")
    with pytest.raises(UserError, match="at most 100"):
        await new_token(db_pool, user.name, "x" * 101)
    with pytest.raises(UserError, match="control"):
        await new_token(db_pool, user.name, "a\x00b")
    with pytest.raises(UserError, match="no user"):
        await new_token(db_pool, "bob\udcff", "ok")
    with pytest.raises(UserError):
        await add_user(db_pool, "trailing-newline\n", PASSWORD, "agent")
    assert (await new_token(db_pool, user.name, "x" * 100))[1].startswith("pnt_")

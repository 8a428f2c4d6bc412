"""Garbage in, never a server error out: every API route, every parameter, every body field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from yarl import URL

from tests.web._api_support import account, attempt, campaign_row, debtor, served, unique
from web import create_app
from web._keys import API_ROUTES

GARBAGE_TEXT = [
    "",
    "0",
    "-1",
    "1.5",
    "99999999999999999999999",
    "9223372036854775808",
    "abc",
    "%00",
    "\x00",
    "' OR 1=1 --",
    "..",
    "💩",
    "\ud800",
    "x" * 5000,
    "true",
    "null",
    "2026-02-30",
    "2026-11-02T25:00:00Z",
]
GARBAGE_JSON = [
    None,
    True,
    False,
    0,
    -1,
    2**64,
    -(2**70),
    1.5,
    1e308,
    "",
    "x" * 100_000,
    "\x00",
    "\ud800",
    "2026-02-30",
    "+5255",
    [],
    [None],
    [[[[]]]],
    {},
    {"a": {"b": [1, {"c": None}]}},
    {"\x00": 1},
]
RAW_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{",
    b'{"a":',
    b"\xff\xfe\x00",
    b"NaN",
    b'{"x": Infinity}',
    b'"just a string"',
    b"1e999999",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'"\\ud800"',
    b'{"code": "\\u0000"}',
    b"x" * (1024 * 1024 + 10),
]
CONTENT_TYPES = ["application/json", "text/csv", "text/plain", "multipart/form-data; boundary=x"]


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


async def _world(pool) -> dict[str, Any]:
    """Real records, so that garbage also reaches the handlers past their lookups."""
    admin = await account(pool, "admin")
    agent = await account(pool, "agent")
    d = await debtor(pool)
    campaign_id, code = await campaign_row(pool, d.creditor_id)
    call = await attempt(pool, d, campaign_id, agent_id=agent.agent_id, disposition=None)
    block_id = await pool.fetchval(
        "INSERT INTO contact_blocks (kind, e164, source) VALUES ('dnc', $1, 't') RETURNING id",
        d.e164,
    )
    due = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    return {
        "admin": admin,
        "agent": agent,
        "params": {
            "code": code,
            "id": str(block_id),
            "/agents/{code}/state": {"code": agent.agent_code},
            "/attempts/{id}/disposition": {"id": call},
        },
        "bodies": {
            ("POST", "/campaigns"): {"code": unique("fz"), "name": "F", "compliance_packs": ["mx"]},
            ("PATCH", "/campaigns/{code}"): {"name": "F2"},
            ("POST", "/blocks"): {"kind": "dnc", "e164": d.e164},
            ("POST", "/consents"): {
                "e164": d.e164,
                "channel": "sms",
                "granted": True,
                "source": "f",
            },
            ("POST", "/compliance/check"): {
                "person_id": d.person_id,
                "phone": d.e164,
                "channel": "voice",
                "packs": ["mx"],
            },
            ("POST", "/agents/{code}/state"): {"state": "ready"},
            ("POST", "/attempts/{id}/disposition"): {"code": "other"},
            ("POST", "/promises"): {"debt_id": d.debt_id, "amount_cents": 20_000, "due": due},
            ("POST", "/tokens"): {"name": "f"},
        },
        "csv": b"account_ref,balance,full_name,phone\nF1,1,A,+525511112222\n",
    }


def _url(path: str, params: dict[str, str], query: dict[str, str] | None = None) -> URL:
    for name, value in params.items():
        path = path.replace("{" + name + "}", URL.build(path="/" + value).raw_path[1:] or "%20")
    url = URL("/api/v1" + path, encoded=True)
    return url.update_query(query) if query else url


async def test_every_route_survives_garbage(db_pool) -> None:
    world = await _world(db_pool)
    app = create_app(db_pool)
    routes = list(app[API_ROUTES])
    assert len(routes) >= 25
    failures: list[str] = []
    sent = 0
    async with served(db_pool) as client:

        async def send(route, url: URL, body: bytes | None, ctype: str, who: str) -> None:
            nonlocal sent
            sent += 1
            headers = {**world[who].auth, "Content-Type": ctype}
            r = await client.request(route.method, url, data=body, headers=headers)
            if r.status >= 500:
                failures.append(f"{route.method} {url} [{ctype}] {body[:80]!r} -> {r.status}")
            r.release()

        for route in routes:
            own = world["params"].get(route.path, {})
            good = {n: own.get(n, world["params"].get(n, "1")) for n in route.params}
            base = world["bodies"].get((route.method, route.path), {})
            good_body = world["csv"] if route.body_type == "text/csv" else _encode(base)
            ctype = route.body_type
            # Path parameters.
            for name in route.params:
                for junk in GARBAGE_TEXT:
                    url = _url(route.path, {**good, name: junk})
                    await send(route, url, good_body, ctype, "admin")
            # Query parameters, known and unknown.
            for name in [*route.query, "unknown"]:
                for junk in GARBAGE_TEXT:
                    await send(
                        route, _url(route.path, good, {name: junk}), good_body, ctype, "admin"
                    )
            # Raw bodies, under every content type.
            for raw in RAW_BODIES:
                for content_type in CONTENT_TYPES:
                    await send(route, _url(route.path, good), raw, content_type, "admin")
            # Each declared body field (and one undeclared) set to each garbage value.
            if route.body is not None and route.body_type == "application/json":
                for field in [*route.body.get("properties", {}), "surprise"]:
                    for junk in GARBAGE_JSON:
                        body = _encode({**base, field: junk})
                        await send(route, _url(route.path, good), body, ctype, "admin")
                        await send(route, _url(route.path, good), body, ctype, "agent")
                for junk in GARBAGE_JSON:
                    await send(route, _url(route.path, good), _encode(junk), ctype, "agent")
    assert sent > 2000
    assert not failures, "\n".join(failures[:40])

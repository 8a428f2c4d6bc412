"""The aiohttp application: middlewares, the login pages, the API, and extensions.

:func:`create_app` builds it; extensions (the agent desktop, the wallboard, websockets,
``/metrics``) are callables ``setup(app)`` run once the core routes are in, so they can add
pages (``app.router``), API routes (:func:`web.add_api_routes`, listed in the OpenAPI
document), public path prefixes (``app[PUBLIC_PREFIXES]``) and startup/cleanup hooks.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from compliance import ComplianceGate
from puente.redact import mask_numbers_in
from web import (
    _agents,
    _campaigns,
    _contacts,
    _creditors,
    _imports,
    _promises,
    _reports,
    _trunks,
    _users,
)
from web._api import MAX_JSON_BYTES, ApiCall, ApiRoute, add_api_routes, error_middleware
from web._auth import CSRF_FIELD, auth_middleware, require
from web._keys import (
    API_ROUTES,
    CLOCK,
    GATE,
    LOGIN_LIMITER,
    POOL,
    PUBLIC_PREFIXES,
    SETTINGS,
    STATS,
    USER,
)
from web._login import add_login_routes
from web._openapi import openapi_document
from web._ratelimit import SlidingWindowLimiter
from web._settings import WebSettings
from web._stats import WebStats

log = logging.getLogger(__name__)

Extension = Callable[[web.Application], None]


async def openapi(call: ApiCall) -> Any:
    return openapi_document(call.app[API_ROUTES])


CORE_ROUTES: list[ApiRoute] = [
    *_campaigns.ROUTES,
    *_creditors.ROUTES,
    *_trunks.ROUTES,
    *_imports.ROUTES,
    *_contacts.ROUTES,
    *_agents.ROUTES,
    *_promises.ROUTES,
    *_reports.ROUTES,
    *_users.ROUTES,
    ApiRoute("GET", "/openapi.json", openapi, "This document (OpenAPI 3.1)", "meta",
             response="The OpenAPI document"),
]  # fmt: skip


def _utc_now() -> datetime:
    return datetime.now(UTC)


@require("admin", "supervisor", "agent")
async def index(request: web.Request) -> web.Response:
    """A minimal home page, served only when no extension provides ``/``."""
    user = request[USER]
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Puente</title></head>"
        f"<body><h1>Puente</h1><p>Signed in as {html.escape(user.username)} ({user.role}).</p>"
        '<p><a href="/api/v1/openapi.json">API (OpenAPI 3.1)</a></p>'
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(user.csrf_token or "")}">'
        '<button type="submit">Sign out</button></form></body></html>'
    )
    return web.Response(text=body, content_type="text/html")


def _has_get(app: web.Application, path: str) -> bool:
    return any(
        r.method == "GET" and r.resource is not None and r.resource.canonical == path
        for r in app.router.routes()
    )


def create_app(
    pool: asyncpg.Pool,
    settings: WebSettings | None = None,
    *,
    gate: ComplianceGate | None = None,
    extensions: Iterable[Extension] = (),
    clock: Callable[[], datetime] | None = None,
    public_prefixes: Sequence[str] = ("/static/",),
) -> web.Application:
    """The web application on ``pool``.

    ``gate`` answers ``/compliance/check`` and validates rule packs (default: a gate with
    default settings); ``clock`` gives "now" (tests); ``extensions`` are ``setup(app)``
    callables run in order after the core routes; ``public_prefixes`` are paths served
    without login (static files).
    """
    settings = settings or WebSettings()
    settings.validate()
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_JSON_BYTES
    )
    app[POOL] = pool
    app[SETTINGS] = settings
    app[GATE] = gate or ComplianceGate(pool)
    app[CLOCK] = clock or _utc_now
    app[API_ROUTES] = []
    app[PUBLIC_PREFIXES] = list(public_prefixes)
    app[LOGIN_LIMITER] = SlidingWindowLimiter(settings.login_attempts_per_min, 60.0)
    app[STATS] = WebStats()
    add_login_routes(app)
    add_api_routes(app, CORE_ROUTES)
    for setup in extensions:
        setup(app)
    if not _has_get(app, "/"):
        app.router.add_get("/", index)
    return app


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path without the query string (it may carry a phone
    number), status, duration and user. Never headers, cookies or bodies. A number in the path
    (a client's ``GET /api/v1/blocks/+5255...``, no route of ours) is masked too."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        user = request.get(USER)
        self.logger.info(
            "%s %s %s %.1fms %s %s",
            request.method,
            mask_numbers_in(request.path[:200]),
            response.status,
            time * 1000,
            request.remote or "-",
            user.username if user is not None else "-",
        )

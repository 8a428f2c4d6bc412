"""The application's shared objects, under typed keys (``app[POOL]``, ``request[USER]``).

Extensions (see :mod:`web`) read them; only :func:`web.create_app` sets them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from compliance import ComplianceGate
from web._settings import WebSettings

if TYPE_CHECKING:
    from web._api import ApiRoute
    from web._auth import User
    from web._ratelimit import SlidingWindowLimiter
    from web._stats import WebStats

POOL = web.AppKey("puente_pool", asyncpg.Pool)
SETTINGS = web.AppKey("puente_web_settings", WebSettings)
GATE = web.AppKey("puente_compliance_gate", ComplianceGate)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("puente_clock")
API_ROUTES: web.AppKey[list[ApiRoute]] = web.AppKey("puente_api_routes")
# Path prefixes anyone may fetch without logging in (static files); routes are public only
# when their handler is marked with ``web.public``.
PUBLIC_PREFIXES: web.AppKey[list[str]] = web.AppKey("puente_public_prefixes")
LOGIN_LIMITER: web.AppKey[SlidingWindowLimiter] = web.AppKey("puente_login_limiter")
STATS: web.AppKey[WebStats] = web.AppKey("puente_web_stats")
# The IVR scripts (flow entries) this node's FastAGI server answers; absent when the node runs
# no IVR (then an agentless campaign's flow cannot be checked here).
IVR_SCRIPTS: web.AppKey[frozenset[str]] = web.AppKey("puente_ivr_scripts")

# Set on every request by the authentication middleware: the user, or None (anonymous).
USER: web.RequestKey[User | None] = web.RequestKey("puente_user")


def current_user(request: web.Request) -> User | None:
    """The user the request was authenticated as (None: anonymous)."""
    return request.get(USER)

"""The web server: authenticated REST API, login pages, and the app other modules extend.

Build the application with :func:`create_app` (tests, other helpers) or run it as a service
component with :class:`WebComponent` (settings section ``[web]``: :class:`WebSettings`).

Extending the application
-------------------------
Pass ``extensions=[setup, ...]`` to :func:`create_app` (or :class:`WebComponent`); each
``setup(app)`` runs once, after the core routes and before the app starts::

    from web import ApiCall, ApiRoute, POOL, add_api_routes, public, require

    @require("admin", "supervisor")
    async def wallboard(request):               # a page: anonymous -> /login, else 403
        pool = request.app[POOL]
        ...

    async def queue_stats(call: ApiCall):       # an API route: validated, role-checked
        return {"waiting": 3}                   # -> JSON

    def setup(app):
        app.router.add_get("/wallboard", wallboard)
        add_api_routes(app, [ApiRoute("GET", "/wallboard/stats", queue_stats,
                                      "Queue statistics", "wallboard", ("supervisor",))])
        app[PUBLIC_PREFIXES].append("/static/")   # already public by default
        app.on_shutdown.append(close_websockets)  # aiohttp's drain hook

Rules every route gets from the middlewares: the user is resolved for every request
(``current_user(request)``/``request[USER]``: a :class:`User` or None); anything not marked
:func:`public` refuses anonymous requests (401 JSON under ``/api/``, a redirect to ``/login``
for pages); cookie-authenticated POST/PUT/PATCH/DELETE (websocket upgrades are GETs) need
the session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field; a page gets
it from ``GET /api/v1/me``); :class:`ApiError` subclasses raised anywhere become
``{"error", "field"}`` responses. ``app[POOL]``, ``app[SETTINGS]``, ``app[GATE]``,
``app[CLOCK]`` hold the shared objects. API routes added with :func:`add_api_routes` appear
in ``/api/v1/openapi.json``. A ``GET /`` from an extension replaces the minimal home page.
"""

from web._api import API_BASE, ApiCall, ApiRoute, add_api_routes, read_json
from web._app import AccessLogger, Extension, create_app
from web._auth import ROLES, User, csrf_exempt, public, require
from web._component import WebComponent
from web._exceptions import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PasswordError,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    UserError,
    WebError,
)
from web._keys import (
    API_ROUTES,
    CLOCK,
    GATE,
    POOL,
    PUBLIC_PREFIXES,
    SETTINGS,
    STATS,
    USER,
    current_user,
)
from web._passwords import hash_password, verify_password
from web._reports import daily_report, to_csv
from web._settings import WebSettings

__all__ = [
    "API_BASE",
    "API_ROUTES",
    "CLOCK",
    "GATE",
    "POOL",
    "PUBLIC_PREFIXES",
    "ROLES",
    "SETTINGS",
    "STATS",
    "USER",
    "AccessLogger",
    "ApiCall",
    "ApiError",
    "ApiRoute",
    "BadRequest",
    "Conflict",
    "Extension",
    "Forbidden",
    "Invalid",
    "NotFound",
    "PasswordError",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "User",
    "UserError",
    "WebComponent",
    "WebError",
    "WebSettings",
    "add_api_routes",
    "create_app",
    "csrf_exempt",
    "current_user",
    "daily_report",
    "hash_password",
    "public",
    "read_json",
    "require",
    "to_csv",
    "verify_password",
]

"""The API's declarative layer: one table of :class:`ApiRoute` both serves and documents.

Each route declares its method, path (under ``/api/v1``), the roles allowed, the schemas of its
path parameters, query parameters and JSON body (:mod:`web._schema`), and its response. The
wrapper made by :func:`add_api_routes` checks the role, converts and validates every input
before the handler runs, and turns what the handler returns into JSON; the OpenAPI document
(:mod:`web._openapi`) is generated from the same table.

Errors (:func:`error_middleware`): :class:`web.ApiError` becomes ``{"error", "field"}`` with
its status; a value PostgreSQL refuses is a 422, a unique violation a 409, a database that
cannot be reached a 503. Anything else is a bug: logged with its traceback, answered 500
without details.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from compliance import ComplianceGate
from web._auth import ROLES, User, is_api
from web._exceptions import ApiError, BadRequest, Forbidden, TooManyRequests, UnsupportedMediaType
from web._keys import API_ROUTES, CLOCK, GATE, POOL, SETTINGS, STATS, USER
from web._schema import Schema, check_schema, from_text, validate
from web._settings import WebSettings

log = logging.getLogger(__name__)

API_BASE = "/api/v1"
MAX_JSON_BYTES = 1024 * 1024
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass
class ApiCall:
    """One request, authenticated and validated, as a route's handler gets it."""

    request: web.Request
    user: User
    params: dict[str, Any]
    query: dict[str, Any]
    body: Any

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def pool(self) -> asyncpg.Pool:
        return self.request.app[POOL]

    @property
    def gate(self) -> ComplianceGate:
        return self.request.app[GATE]

    @property
    def settings(self) -> WebSettings:
        return self.request.app[SETTINGS]

    def now(self) -> datetime:
        return self.request.app[CLOCK]()


Endpoint = Callable[[ApiCall], Awaitable[Any]]


@dataclass(frozen=True)
class ApiRoute:
    """One API operation. ``handler`` returns a JSON-able value (sent with ``status``) or a
    ready :class:`aiohttp.web.StreamResponse`."""

    method: str
    path: str
    handler: Endpoint
    summary: str
    tag: str
    roles: tuple[str, ...] = ROLES
    params: Mapping[str, Schema] = field(default_factory=dict)
    query: Mapping[str, Schema] = field(default_factory=dict)
    required_query: tuple[str, ...] = ()
    body: Schema | None = None
    body_type: str = "application/json"  # or "text/csv": streamed by the handler itself
    status: int = 200
    response: str = "OK"
    response_type: str = "application/json"
    response_schema: Schema | None = None
    #: Errors of this route besides every route's (status -> when), for its OpenAPI entry.
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return API_BASE + self.path

    @property
    def operation_id(self) -> str:
        words = [w.strip("{}") for w in self.path.strip("/").replace(".", "_").split("/")]
        return self.method.lower() + "_" + "_".join(w.replace("-", "_") for w in words if w)

    def check(self) -> None:
        """Refuse a route that the wrapper could not honour (raises ``ValueError``)."""
        if self.method not in _METHODS:
            raise ValueError(f"{self.path}: method {self.method!r}")
        if not self.path.startswith("/") or set(self.roles) - set(ROLES) or not self.roles:
            raise ValueError(f"{self.path}: a path starts with / and roles are some of {ROLES}")
        names = {p.strip("{}") for p in self.path.split("/") if p.startswith("{")}
        if names != set(self.params):
            raise ValueError(f"{self.path}: path parameters {sorted(names)} need schemas")
        for where, schema in (*self.params.items(), *self.query.items()):
            check_schema(schema, f"{self.path} {where}")
        if set(self.required_query) - set(self.query):
            raise ValueError(f"{self.path}: required_query names undeclared parameters")
        if self.body is not None:
            check_schema(self.body, f"{self.path} body")
        if self.body_type not in ("application/json", "text/csv"):
            raise ValueError(f"{self.path}: body_type {self.body_type!r}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; :class:`BadRequest` when it cannot be read."""
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json, not {request.content_type[:60]!r}", "body"
        )
    raw = await request.read()  # bounded by the application's client_max_size (413)
    if not raw.strip():
        raise BadRequest("expected a JSON body", "body")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"malformed JSON: {str(e)[:120]}", "body") from None


def _wrap(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        user: User = request[USER]
        if user.role not in route.roles:
            raise Forbidden(f"{route.method} {route.path} needs the role "
                            f"{' or '.join(route.roles)}")  # fmt: skip
        params = {
            name: from_text(schema, request.match_info[name], name)
            for name, schema in route.params.items()
        }
        query: dict[str, Any] = {}
        for name, schema in route.query.items():
            values = request.query.getall(name, [])
            if len(values) > 1:
                raise ApiError(f"{name}: given {len(values)} times", name, status=422)
            if values:
                query[name] = from_text(schema, values[0], name)
            elif name in route.required_query:
                raise ApiError(f"{name}: required", name, status=422)
        body = None
        if route.body is not None and route.body_type == "application/json":
            body = await read_json(request)
            validate(route.body, body)
        result = await route.handler(ApiCall(request, user, params, query, body))
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result, status=route.status, dumps=_dumps)

    handle.__name__ = route.operation_id
    return handle


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)  # UUID, Decimal


def add_api_routes(app: web.Application, routes: list[ApiRoute]) -> None:
    """Serve ``routes`` under ``/api/v1`` and list them in the OpenAPI document.

    Call it while building the application (an extension's ``setup(app)``), not once it runs.
    """
    for route in routes:
        route.check()
        app.router.add_route(route.method, route.full_path, _wrap(route))
        app[API_ROUTES].append(route)


# -- errors -----------------------------------------------------------------------------------
def _error_response(request: web.Request, status: int, body: dict[str, str]) -> web.Response:
    if is_api(request):
        return web.json_response(body, status=status)
    return web.Response(text=body["error"] + "\n", status=status)


_DB_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
)


def _from_postgres(e: asyncpg.PostgresError) -> ApiError | None:
    """What a refused statement means for the client (None: a server fault)."""
    if isinstance(e, asyncpg.UniqueViolationError):
        return ApiError("that already exists", getattr(e, "column_name", None), status=409)
    if isinstance(e, asyncpg.ForeignKeyViolationError):
        return ApiError("a referenced record does not exist", None, status=422)
    if isinstance(
        e, asyncpg.DataError | asyncpg.CheckViolationError | asyncpg.NotNullViolationError
    ):
        return ApiError(f"a value was refused: {e.__class__.__name__}", None, status=422)
    return None


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count requests and turn every error into a response (JSON under ``/api/``)."""
    stats = request.app[STATS]
    stats.requests += 1
    try:
        response = await handler(request)
    except TooManyRequests as e:
        response = _error_response(request, e.status, e.to_dict())
        response.headers["Retry-After"] = str(e.retry_after_s)
    except ApiError as e:
        response = _error_response(request, e.status, e.to_dict())
    except HttpProcessingError as e:  # a body aiohttp could not parse (a line too long)
        status = e.code if 400 <= e.code < 500 else 400
        response = _error_response(request, status, {"error": "malformed request body"})
    except web.HTTPException as e:
        if e.status < 400 or not is_api(request):
            _count(stats, e.status)
            raise
        response = _error_response(request, e.status, {"error": e.reason})
    except asyncpg.PostgresError as e:
        found = _from_postgres(e)
        if found is None:
            log.warning("%s %s: database error: %s", request.method, request.path, e)
            response = _error_response(request, 503, {"error": "database error"})
        else:
            response = _error_response(request, found.status, found.to_dict())
    except _DB_UNREACHABLE as e:
        log.warning("%s %s: database unavailable: %s", request.method, request.path,
                    e.__class__.__name__)  # fmt: skip
        response = _error_response(request, 503, {"error": "database unavailable"})
    except Exception:  # a bug: keep serving; CancelledError is not an Exception
        log.exception("%s %s failed", request.method, request.path)
        response = _error_response(request, 500, {"error": "internal error"})
    _count(stats, response.status)
    return response


def _count(stats: Any, status: int) -> None:
    if 400 <= status < 500:
        stats.client_errors += 1
    elif status >= 500:
        stats.server_errors += 1

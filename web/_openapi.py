"""The OpenAPI 3.1 document of the API, generated from the route table (:mod:`web._api`).

OpenAPI 3.1 schemas are JSON Schema, so each route's schemas are published as they are
checked. ``x-roles`` lists the roles allowed to call an operation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from puente import __version__
from web._api import API_BASE, ApiRoute

_ERRORS = {
    "400": "The request cannot be read (malformed JSON, a missing body)",
    "401": "Not authenticated",
    "403": "Not allowed for this role, or a missing CSRF token",
    "415": "Wrong content type",
    "422": "A value is not acceptable; `field` names it",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}


def _parameters(route: ApiRoute) -> list[dict[str, Any]]:
    out = [
        {"name": name, "in": "path", "required": True, "schema": dict(schema)}
        for name, schema in route.params.items()
    ]
    out += [
        {
            "name": name,
            "in": "query",
            "required": name in route.required_query,
            "schema": dict(schema),
        }
        for name, schema in route.query.items()
    ]
    return out


def _error(text: str) -> dict[str, Any]:
    """An error response: the JSON body every error has."""
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(route: ApiRoute) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": route.response}
    if route.status != 204:
        ok["content"] = {route.response_type: {"schema": route.response_schema or {}}}
    responses: dict[str, Any] = {str(route.status): ok}
    responses.update({status: _error(text) for status, text in _ERRORS.items()})
    if route.params:
        responses["404"] = {"description": "No such record"}
    if route.method != "GET":
        responses["409"] = {"description": "Conflicts with the current state"}
    responses.update({status: _error(text) for status, text in route.errors.items()})
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "x-roles": list(route.roles),
        "parameters": _parameters(route),
        "responses": responses,
    }
    if route.body is not None:
        schema = dict(route.body) if route.body_type == "application/json" else {"type": "string"}
        op["requestBody"] = {"required": True, "content": {route.body_type: {"schema": schema}}}
    return op


def openapi_document(routes: Iterable[ApiRoute], title: str = "Puente API") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": __version__,
            "description": (
                "Authenticate with `Authorization: Bearer <token>` (`puente users token`) or "
                "the `puente_session` cookie from `POST /login`; cookie-authenticated requests "
                "that change state must send the session's CSRF token in `X-CSRF-Token`."
            ),
        },
        "servers": [{"url": API_BASE}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "puente_session"},
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }

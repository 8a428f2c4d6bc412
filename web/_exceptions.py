"""The web package's exception tree: one root, and the API's errors with their HTTP status."""

from __future__ import annotations


class WebError(Exception):
    """Root of every error of the web package."""


class PasswordError(WebError):
    """A password that cannot be set (too short, too long) or a stored hash that is malformed."""


class UserError(WebError):
    """A user operation that cannot be done as asked (unknown user, name taken, bad role)."""


class ApiError(WebError):
    """An API request that cannot be served; becomes a JSON error with ``status``.

    ``field`` names the request value at fault (``settings.max_lines``) when there is one.
    """

    status = 400

    def __init__(self, message: str, field: str | None = None, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, str]:
        out = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class BadRequest(ApiError):
    """The request cannot be read at all (malformed JSON, wrong content type)."""

    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class Invalid(ApiError):
    """A well-formed request with a value that is not acceptable (422); names the field."""

    status = 422


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

"""Errors the control API answers with: a status code and a `detail` a person can act on."""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    status_code = 400
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnauthorizedError(ApiError):
    status_code = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class ForbiddenError(ApiError):
    status_code = 403


class NotFoundError(ApiError):
    status_code = 404


class ConflictError(ApiError):
    status_code = 409


class TooManyRequestsError(ApiError):
    status_code = 429


class UnavailableError(ApiError):
    status_code = 503

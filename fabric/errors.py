"""Errors the services raise; the API and the CLI turn each into one message at their edge."""

from __future__ import annotations


class FabricError(Exception):
    """Base of every error a user can act on; `message` says what to fix."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(FabricError):
    status_code = 422


class Unauthenticated(FabricError):
    status_code = 401


class Forbidden(FabricError):
    status_code = 403


class NotFound(FabricError):
    status_code = 404


class MethodNotAllowed(FabricError):
    status_code = 405


class Conflict(FabricError):
    status_code = 409


class PayloadTooLarge(FabricError):
    status_code = 413


class QuotaExceeded(FabricError):
    status_code = 409

    def __init__(self, message: str, *, may_fit_later: bool) -> None:
        super().__init__(message)
        # True when the request could be admitted once other work ends (callers may queue it).
        self.may_fit_later = may_fit_later


class RateLimited(FabricError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

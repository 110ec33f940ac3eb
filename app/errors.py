"""Expected failures of the domain, each with a stable code and an HTTP status.

Services raise these; the HTTP mapping lives in ``app.web.errors`` only.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "validation_error"
    status = 422
    default_message = "The request is not valid."


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401
    default_message = "Authentication is required."


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    default_message = "You may not do this."


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class Conflict(DomainError):
    code = "conflict"
    status = 409


class IdempotencyMismatch(DomainError):
    code = "idempotency_mismatch"
    status = 409
    default_message = "This Idempotency-Key was used with another request."


class RequestInProgress(DomainError):
    code = "conflict"
    status = 409
    default_message = "A request with this Idempotency-Key is still being processed."


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429
    default_message = "Too many requests."


class AlreadyRunning(DomainError):
    code = "already_running"
    status = 409
    default_message = "The same operation is already running; try again when it has finished."


class LimitReached(DomainError):
    code = "limit_reached"
    status = 409
    default_message = "The limit has been reached."


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    status = 409
    default_message = "Not enough points."


class OutOfStock(DomainError):
    code = "out_of_stock"
    status = 409
    default_message = "Out of stock."


class NotEligible(DomainError):
    code = "not_eligible"
    status = 409
    default_message = "Not eligible."


class UpstreamUnavailable(DomainError):
    code = "upstream_unavailable"
    status = 503
    default_message = "WeChat is not answering; try again shortly."

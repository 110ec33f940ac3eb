"""The one place where errors become HTTP answers: the envelope of API.md."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from app.errors import DomainError
from app.outages import is_outage
from app.retry import still_contended

log = logging.getLogger("huiyuan.errors")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    body["details"] = details if details is not None else {}
    response = jsonify({"error": body})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        response = error_response(error.status, error.code, error.message, error.details)
        if error.status == 429 and "retry_after_seconds" in error.details:
            response.headers["Retry-After"] = str(error.details["retry_after_seconds"])
        return response

    @app.errorhandler(ValidationError)
    def _validation(error: ValidationError) -> Response:
        return error_response(
            422, "validation_error", "The request is not valid.", {"fields": error.messages}
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = error.description or code
        if status == 413:
            message = "The body is larger than 1 MiB."
        response = error_response(status, code, message)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The database or Redis down or not answering, or rows held locked by others past
        # every retry: the same request may well succeed in a moment.
        if is_outage(error) or still_contended(error):
            log.error("unavailable: %s: %s", type(error).__name__, error)
            response = error_response(
                503, "unavailable", "The service is unavailable for a moment; try again shortly."
            )
            response.headers["Retry-After"] = "1"
            return response
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")

"""JSON log lines, each carrying the request id of the request that wrote it, with phone
numbers masked whatever wrote them."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Mainland mobiles (11 digits from 1) and numbers with a country code (+ and 5 to 20 digits),
# not inside a longer run of digits (card numbers are 12 digits).
_PHONE = re.compile(
    r"(?<![0-9])(?:(1[3-9][0-9])[0-9]{4}([0-9]{4})|\+([0-9]{2})[0-9]{3,18})(?![0-9])"
)
access_log = logging.getLogger("huiyuan.access")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


def mask_phones(text: str) -> str:
    """138****5678 for a mainland mobile, +44****** for the others."""

    def _mask(match: re.Match[str]) -> str:
        if match.group(1):
            return f"{match.group(1)}****{match.group(2)}"
        return f"+{match.group(3)}" + "*" * (len(match.group(0)) - 3)

    return _PHONE.sub(_mask, text)


class PhoneMaskingFormatter(logging.Formatter):
    """Wraps the real formatter: the finished line (message, extras, traceback) is masked,
    so no full phone number reaches a log, whichever library wrote it."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_phones(self._inner.format(record))


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    formatter: logging.Formatter
    if json_lines:
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        )
    handler.setFormatter(PhoneMaskingFormatter(formatter))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _valid_request_id(value: str | None) -> bool:
    """Only ids that are safe to echo and to write into logs; anything else gets a fresh one."""
    return value is not None and REQUEST_ID_PATTERN.fullmatch(value) is not None


def install_request_ids(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        g.request_id = incoming if _valid_request_id(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        # The path only, never the query string: look-ups carry phone numbers there.
        access_log.info(
            "%s %s %s %sms %s",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            request.remote_addr,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": elapsed_ms,
                "client": request.remote_addr,
            },
        )
        return response

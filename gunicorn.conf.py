"""Gunicorn's settings for the API, read by gunicorn itself from the working directory
(``gunicorn wsgi:app`` in the project root). Flags on the command line override them.

Slow clients: with the gevent worker each connection is a greenlet, so hundreds of clients
trickling a body hold greenlets, not the worker's threads, and the API keeps answering.
Put nginx in front (deploy/nginx.conf) so that bodies arrive whole anyway.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any


def _number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = os.environ.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8000"
# WEB_CONCURRENCY is the usual name for the number of worker processes.
workers = _number("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
# gevent patches the standard library when the worker starts, before the app is imported:
# pymysql and redis-py are pure Python, so their sockets yield to other greenlets.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "gevent"
worker_connections = _number("GUNICORN_WORKER_CONNECTIONS", 1000)
threads = _number("GUNICORN_THREADS", 8)  # only for the gthread worker class

timeout = _number("GUNICORN_TIMEOUT", 60)  # a silent worker is killed and replaced
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", 30)  # on reload / stop
keepalive = _number("GUNICORN_KEEPALIVE", 5)  # idle keep-alive connections are closed

# Request heads are small: a line of 8 KiB, 100 header fields of 8 KiB at most.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# A worker is replaced after this many requests (with jitter, so not all at once).
max_requests = _number("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10

accesslog = None  # the app logs every request itself (app.web.logs)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "").strip() or "info"


def post_worker_init(worker: Any) -> None:
    """Gunicorn's own lines (requests it refuses before the app sees them, with their
    request line and query string) are masked like the app's: no phone number in full.
    Done in the worker, once the app is loaded, so the master never imports it."""
    from app.web.logs import PhoneMaskingFormatter

    for handler in worker.log.error_log.handlers:
        inner = handler.formatter
        if inner is not None and not isinstance(inner, PhoneMaskingFormatter):
            handler.setFormatter(PhoneMaskingFormatter(inner))

"""Gunicorn's own log lines (requests it refuses before the app sees them) go through the
same phone masking as the app's: a malformed request line that carries a phone number in
its query string is logged with the number masked."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.support import settings
from tests.support.processes import running_gunicorn

PHONE = "13912345678"


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        return conn.recv(4096)


def test_a_refused_request_line_is_logged_with_the_phone_masked(tmp_path: Path) -> None:
    log_path = tmp_path / "gunicorn.log"
    env = {
        "HUIYUAN_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'huiyuan.db'}",
        "REDIS_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_FORMAT": "text",
        "WEB_CONCURRENCY": "1",
    }
    with running_gunicorn(env, log_path) as port:
        answer = _send(
            port,
            f"GET /open/v1/members/lookup?phone={PHONE}\x01 HTTP/1.1\r\n"
            "Host: huiyuan.test\r\n\r\n".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 400")
        time.sleep(0.5)  # the worker writes its line after answering
    text = log_path.read_text(errors="replace")
    assert "Invalid request" in text  # the line was written ...
    assert "139****5678" in text
    assert PHONE not in text  # ... and never with the number in full

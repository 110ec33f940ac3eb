"""Gunicorn's own log lines (requests it refuses before the app sees them) go through the
same phone masking as the app's: a malformed request line that carries a phone number in
its query string is logged with the number masked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import settings

ROOT = Path(__file__).resolve().parents[2]
PHONE = "13912345678"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        return conn.recv(4096)


def test_a_refused_request_line_is_logged_with_the_phone_masked(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        HUIYUAN_ENV="test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'huiyuan.db'}",
        REDIS_URL="",
        SECRET_KEY=settings.SECRET_KEY,
        LOG_FORMAT="text",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "wsgi:app"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not come up"
                time.sleep(0.2)
            answer = _send(
                port,
                f"GET /open/v1/members/lookup?phone={PHONE}\x01 HTTP/1.1\r\n"
                "Host: huiyuan.test\r\n\r\n".encode(),
            )
            assert answer.startswith(b"HTTP/1.1 400")
            time.sleep(0.5)  # the worker writes its line after answering
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    text = log_path.read_text(errors="replace")
    assert "Invalid request" in text  # the line was written ...
    assert "139****5678" in text
    assert PHONE not in text  # ... and never with the number in full

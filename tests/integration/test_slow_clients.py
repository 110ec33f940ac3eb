"""Gunicorn with the shipped gunicorn.conf.py, on MariaDB and Redis: while 300 connections
trickle bodies they never finish, health checks and real API calls keep answering fast."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from tests.support import settings
from tests.support.processes import running_gunicorn
from tests.support.rows import remove_rows_since, snapshot_rows
from tests.support.wechat import MP_APPID, MP_SECRET, login_code
from wechat_hooks.simulator import SimulatorServer

pytestmark = pytest.mark.mariadb

SLOW_CLIENTS = 300
FAST_ENOUGH_SECONDS = 2.0


@pytest.fixture
def server(
    sim: SimulatorServer, engine: Engine, redis: Any, tmp_path: Path
) -> Iterator[tuple[str, int]]:
    """``gunicorn wsgi:app`` from the project root: it reads gunicorn.conf.py by itself."""
    env = {
        "HUIYUAN_ENV": "test",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL or "",
        "SECRET_KEY": settings.SECRET_KEY,
        "WECHAT_MP_APPID": MP_APPID,
        "WECHAT_MP_SECRET": MP_SECRET,
        "WECHAT_API_BASE": sim.base_url,
        "LOG_FORMAT": "text",
        "WEB_CONCURRENCY": "2",
    }
    snapshot = snapshot_rows(engine)
    try:
        with running_gunicorn(env, tmp_path / "gunicorn.log", grace_seconds=40) as port:
            yield "127.0.0.1", port
    finally:
        remove_rows_since(engine, snapshot)


def _start_slow_body(host: str, port: int) -> socket.socket:
    """A login whose head promises 4 KiB of body, of which only a few bytes ever come."""
    conn = socket.create_connection((host, port), timeout=5)
    conn.sendall(
        b"POST /mp/v1/auth/login HTTP/1.1\r\n"
        b"Host: huiyuan.test\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 4096\r\n"
        b"\r\n"
        b'{"co'
    )
    return conn


def _still_open(conn: socket.socket) -> bool:
    conn.setblocking(False)  # with a timeout set, recv would first wait for data
    try:
        return conn.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:  # open, and the server has said nothing yet
        return True
    except OSError:
        return False


def test_the_api_keeps_answering_while_hundreds_of_clients_trickle_bodies(
    server: tuple[str, int], sim: SimulatorServer
) -> None:
    host, port = server
    base = f"http://{host}:{port}"
    slow = [_start_slow_body(host, port) for _ in range(SLOW_CLIENTS)]
    stop = threading.Event()

    def trickle() -> None:  # a byte now and then on every connection: never finished
        while not stop.wait(0.5):
            for conn in slow:
                with contextlib.suppress(OSError):
                    conn.sendall(b" ")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.0)  # every slow request is now inside a worker, reading its body
        timings: list[tuple[str, int, float]] = []
        with requests.Session() as http:
            for round_ in range(10):
                code = login_code(sim, f"o-slow-clients-{round_}")
                for name, method, path, body in (
                    ("healthz", "GET", "/healthz", None),
                    ("readyz", "GET", "/readyz", None),
                    ("login", "POST", "/mp/v1/auth/login", {"code": code}),
                ):
                    started = time.monotonic()
                    answer = http.request(method, base + path, json=body, timeout=10)
                    timings.append((name, answer.status_code, time.monotonic() - started))
        still_open = sum(_still_open(conn) for conn in slow)
    finally:
        stop.set()
        trickler.join(timeout=5)
        for conn in slow:
            conn.close()

    assert {(name, status) for name, status, _ in timings} == {
        ("healthz", 200),
        ("readyz", 200),
        ("login", 200),
    }
    slowest = max(seconds for _, _, seconds in timings)
    assert slowest < FAST_ENOUGH_SECONDS, timings
    # The slow clients were still being served (held open), not turned away.
    assert still_open == SLOW_CLIENTS

"""Servers the integration tests start as real processes: free loopback ports, and
``gunicorn wsgi:app`` from the project root (it reads the shipped gunicorn.conf.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Poll ``url`` until it answers 200; fail at once if ``process`` exits meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 30) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_seconds``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def running_gunicorn(
    env_changes: dict[str, str], log_path: Path, *, grace_seconds: float = 30
) -> Iterator[int]:
    """``gunicorn wsgi:app`` on a free port with ``env_changes`` over this environment,
    its output in ``log_path``; yields the port once /healthz answers, stops it after."""
    port = free_port()
    env = dict(os.environ) | env_changes | {"GUNICORN_BIND": f"127.0.0.1:{port}"}
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
            wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
            yield port
        finally:
            stop(process, grace_seconds)

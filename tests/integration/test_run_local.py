"""bin/run-local refuses to start on a port in use, before it migrates or starts anything."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def _run_local(tmp_path: Path, **ports: int | str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'huiyuan.db'}")
    env.update({name: str(port) for name, port in ports.items()})
    return subprocess.run(
        [str(ROOT / "bin" / "run-local")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("busy_name", ["HUIYUAN_PORT", "HUIYUAN_SIM_PORT"])
def test_a_busy_port_stops_the_start_with_one_line_naming_it(
    tmp_path: Path, busy_name: str
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = int(listener.getsockname()[1])
        other = "HUIYUAN_SIM_PORT" if busy_name == "HUIYUAN_PORT" else "HUIYUAN_PORT"
        started = time.monotonic()
        result = _run_local(tmp_path, **{busy_name: busy, other: free_port()})
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 10
    assert result.stderr.strip().splitlines() == [
        f"run-local: port {busy} is in use: stop what listens there or choose another, "
        f"e.g. {busy_name}={busy + 1} make run"
    ]
    assert result.stdout == ""  # nothing claimed to be up, nothing migrated or seeded
    assert not (tmp_path / "huiyuan.db").exists()


def test_the_two_ports_must_differ(tmp_path: Path) -> None:
    port = free_port()
    result = _run_local(tmp_path, HUIYUAN_PORT=port, HUIYUAN_SIM_PORT=port)
    assert result.returncode == 1
    assert f"HUIYUAN_SIM_PORT={port} is taken by another of the stack's ports" in result.stderr
    assert not (tmp_path / "huiyuan.db").exists()


def test_a_port_must_be_a_number(tmp_path: Path) -> None:
    result = _run_local(tmp_path, HUIYUAN_PORT="80a", HUIYUAN_SIM_PORT=free_port())
    assert result.returncode == 1
    assert "HUIYUAN_PORT='80a' is not a port number" in result.stderr
    assert not (tmp_path / "huiyuan.db").exists()

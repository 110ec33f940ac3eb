"""The README's five-minute walkthrough, run as written against `make run`.

Marked `walkthrough` (deselected by default: it starts the real processes); `.ci/run`
runs it on every change. The stack runs on free ports of its own (HUIYUAN_PORT,
HUIYUAN_SIM_PORT), and the test talks only to a stack it started: the ports must be free
before it starts, and the servers that answer must be the ones writing to this run's log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.walkthrough


@dataclass(frozen=True)
class Stack:
    api: str
    sim: str
    env: dict[str, str]


def _walkthrough_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Five-minute walkthrough", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the walkthrough has a bash block"
    return match.group(1)


def _assert_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # raises if anything listens there


def _stack_env(tmp: Path, api_port: int, sim_port: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("TEST_DATABASE_URL", "TEST_REDIS_URL", "REDIS_URL", "WECHAT_API_BASE"):
        env.pop(key, None)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'huiyuan.db'}",
        HUIYUAN_PORT=str(api_port),
        HUIYUAN_SIM_PORT=str(sim_port),
        HUIYUAN_RUN_ID=uuid.uuid4().hex,
    )
    return env


def _wait_for_line(log: Path, line: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if line in log.read_text(encoding="utf-8", errors="replace"):
            return
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.3)
    raise AssertionError(f"no {line!r} in the log:\n{log.read_text(errors='replace')}")


def _assert_answered_by_this_run(stack: Stack, log: Path) -> None:
    """A request marked with a fresh token must show up in this run's log: the servers
    answering on these ports are the processes this test started, not another stack."""
    token = uuid.uuid4().hex
    requests.get(stack.api + "/healthz", headers={"X-Request-Id": token}, timeout=5)
    requests.get(f"{stack.sim}/sim/messages?run={token}", timeout=5)
    time.sleep(0.5)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert f"[{token}] GET /healthz 200" in text, "the API answering is not this run's"
    assert f"GET /sim/messages?run={token}" in text, "the simulator answering is not this run's"


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    api_port, sim_port = free_port(), free_port()
    for port in (api_port, sim_port):
        _assert_free(port)
    env = _stack_env(tmp, api_port, sim_port)
    log_path = tmp / "make-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log
        )
    try:
        _wait_for_line(log_path, f"Huiyuan is up (run {env['HUIYUAN_RUN_ID']})", process, 120)
        stack = Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}", env)
        _assert_answered_by_this_run(stack, log_path)
        text = log_path.read_text(encoding="utf-8")
        for step in ("admins create", "partners create", f"{stack.api}/docs", "walkthrough"):
            assert step in text, f"the next steps name {step!r}"
        yield stack
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_walkthrough_runs_as_written(local_stack: Stack) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _walkthrough_script()],
        cwd=ROOT,
        env=local_stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    login, card, lookup, seeded, order, ledger = (json.loads(line) for line in lines[-6:])
    assert login["is_new"] is True
    assert card["card_no"] == login["member"]["card_no"]
    assert lookup["member"]["id"] == login["member"]["id"]
    assert lookup["tier"]["name"] == "普通会员"
    assert lookup["points_balance"] == 100  # the seeded rules' sign-up bonus
    assert seeded["tier"]["name"] == "金卡"
    assert seeded["points_balance"] > 0
    assert order["member_id"] == login["member"]["id"]
    assert order["points_earned"] == 258
    assert [(e["reason_code"], e["delta"], e["balance_after"]) for e in ledger["items"]] == [
        ("order", 258, 358),
        ("signup", 100, 100),
    ]

"""The README's five-minute walkthrough, run as written against `make run`.

Marked `walkthrough` (deselected by default: it starts the real processes on the
README's ports); `.ci/run` runs it on every change.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
API = "http://127.0.0.1:8000"
SIM = "http://127.0.0.1:8200"
pytestmark = pytest.mark.walkthrough


def _walkthrough_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Five-minute walkthrough", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the walkthrough has a bash block"
    return match.group(1)


def _wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    for key in ("TEST_DATABASE_URL", "TEST_REDIS_URL", "REDIS_URL", "WECHAT_API_BASE"):
        env.pop(key, None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('stack') / 'huiyuan.db'}"
    log = (tmp_path_factory.getbasetemp() / "make-run.log").open("wb")
    process = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log
    )
    try:
        _wait_until_up(API + "/readyz")
        _wait_until_up(SIM + "/sim/messages")
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_walkthrough_runs_as_written(local_stack: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _walkthrough_script()],
        cwd=ROOT,
        env=local_stack,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    login, card, lookup, order, ledger = (json.loads(line) for line in lines[-5:])
    assert login["is_new"] is True
    assert card["card_no"] == login["member"]["card_no"]
    assert lookup["member"]["id"] == login["member"]["id"]
    assert lookup["points_balance"] == 0
    assert order["member_id"] == login["member"]["id"]
    assert order["points_earned"] == 258
    assert [(e["kind"], e["delta"], e["balance_after"]) for e in ledger["items"]] == [
        ("earn", 258, 258)
    ]

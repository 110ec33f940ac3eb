"""A disabled partner or a rotated secret is refused within seconds on every worker.

Each app below stands for a worker process: its own partner cache, the same database and
Redis, and commits for real. The change is made through one (or through the ``flask``
command in a process of its own) and observed through another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine

from app import create_app
from app.partners.services import EPOCH_CHECK_SECONDS
from tests.support import settings
from tests.support.cli import cli_output
from tests.support.config import make_config
from tests.support.rows import remove_rows_since, snapshot_rows
from tests.support.signing import PartnerKeys, open_get
from wechat_hooks.simulator import SimulatorServer

LOOKUP = "/open/v1/members/lookup?card_no=000000000000"
BOUND = EPOCH_CHECK_SECONDS + 1.0  # the documented bound, plus a loaded machine's slack
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workers(
    sim: SimulatorServer, database_url: str, engine: Engine, redis
) -> Iterator[list[Flask]]:
    snapshot = snapshot_rows(engine)
    apps = [
        create_app(make_config(sim, database_url), engine=engine, redis=redis) for _ in range(2)
    ]
    try:
        yield apps
    finally:
        remove_rows_since(engine, snapshot)


def status(app: Flask, keys: PartnerKeys) -> int:
    """404 (no such card) means the signature was accepted; 401 that it was refused."""
    return int(open_get(app.test_client(), keys, LOOKUP).status_code)


def seconds_until_refused(app: Flask, keys: PartnerKeys) -> float:
    start = time.monotonic()
    while (code := status(app, keys)) != 401:
        assert code == 404
        assert time.monotonic() - start < BOUND * 3, "never refused"
        time.sleep(0.02)
    return time.monotonic() - start


def warm(workers: list[Flask], keys: PartnerKeys) -> None:
    for worker in workers:
        assert status(worker, keys) == 404  # accepted, and cached by that worker


def test_a_partner_disabled_through_one_worker_is_refused_by_another(workers):
    one, other = workers
    made = json.loads(cli_output(one, "partners", "create", "POS"))
    keys = PartnerKeys(made["app_key"], made["app_secret"])
    warm(workers, keys)

    cli_output(one, "partners", "disable", keys.app_key)

    assert seconds_until_refused(other, keys) <= BOUND
    assert status(one, keys) == 401


def test_a_secret_rotated_through_one_worker_is_refused_by_another(workers):
    one, other = workers
    made = json.loads(cli_output(one, "partners", "create", "POS"))
    old = PartnerKeys(made["app_key"], made["app_secret"])
    warm(workers, old)

    rotated = json.loads(cli_output(one, "partners", "rotate", old.app_key))
    new = PartnerKeys(rotated["app_key"], rotated["app_secret"])

    assert seconds_until_refused(other, old) <= BOUND
    assert status(other, new) == 404
    assert status(one, new) == 404


@pytest.mark.mariadb
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs a Redis server: set TEST_REDIS_URL")
def test_the_flask_command_in_its_own_process_disables_a_partner_on_a_running_worker(workers, sim):
    worker = workers[0]
    made = json.loads(cli_output(worker, "partners", "create", "POS"))
    keys = PartnerKeys(made["app_key"], made["app_secret"])
    warm(workers, keys)
    environ = {
        **os.environ,
        "HUIYUAN_ENV": "test",
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": str(settings.REDIS_URL),
        "SECRET_KEY": settings.SECRET_KEY,
        "WECHAT_API_BASE": sim.base_url,
        "LOG_FORMAT": "text",
    }
    flask = str(Path(sys.executable).with_name("flask"))

    done = subprocess.run(
        [flask, "--app", "wsgi", "partners", "disable", keys.app_key],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert seconds_until_refused(worker, keys) <= BOUND

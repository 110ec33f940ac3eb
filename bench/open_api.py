"""Open-API benchmark: order ingestion and till redemption under gunicorn, as ratios.

    .venv/bin/python bench/open_api.py [--seconds N] [--concurrency C]

One run: a fresh MariaDB database ``huiyuan_bench`` (migrated, 10,000 demo members, a
partner, a tier ladder, points for some members); the cost and the statements of each
kind of open-API request, measured in-process on that database; then gunicorn on a free
port and a closed-loop load per scenario, one after another: the bare ``GET /healthz``,
orders, redemptions, the two replay paths, and the bare endpoint again. Every speed is
reported as a ratio to the bare endpoint (the mean of its two runs) of the same run.
The results go to ``bench/results/<date>-open-api.md`` (and the table into
``bench/README.md``); gunicorn is stopped and the database dropped whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import json
import math
import multiprocessing
import os
import platform
import queue
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python bench/open_api.py` puts bench/ first on sys.path, where this very file would
# shadow the app's `open_api` package: the project root takes its place. (The app is
# imported lazily, inside the functions that need it, after this.)
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
VENV_BIN = ROOT / ".venv" / "bin"

DB_NAME = "huiyuan_bench"
MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"
DATABASE_URL = f"mysql://{MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/14"
AVOID_PORTS = {8000, 8200}  # the dev server and the WeChat simulator of other runs
GUNICORN_ARGS = (
    *("--workers", "2", "--graceful-timeout", "10"),  # the rest from ./gunicorn.conf.py
    "--no-control-socket",  # its default path (~/.gunicorn/gunicorn.ctl) is shared by all
)

CHANNEL = "pos"
STORE = "SH0001"
FUNDED_POINTS = 5_000
IN_PROCESS_REPEATS = 40  # requests of each kind timed in-process
TIERS = (  # a ladder like a real brand's, so every order runs the tier check
    {"code": "member", "name": "会员", "rank": 0, "threshold": 0, "benefits": {}},
    {
        "code": "silver",
        "name": "银卡",
        "rank": 1,
        "threshold": 200_000,
        "benefits": {"points_multiplier_pct": 120},
    },
    {
        "code": "gold",
        "name": "金卡",
        "rank": 2,
        "threshold": 1_000_000,
        "benefits": {"points_multiplier_pct": 150},
    },
)
PRODUCTS = (
    ("LAT-001", "拿铁", "coffee"),
    ("AME-002", "美式", "coffee"),
    ("CRO-010", "可颂", "bakery"),
    ("MUG-100", "随行杯", "merchandise"),
    ("BEA-200", "咖啡豆 250g", "beans"),
)


# --- Signing and request bodies (shared by the load clients and the in-process count) ---


class Signer:
    """X-Signature as API.md defines it, written from the spec (the run checks it against
    app.partners.rules.sign once)."""

    def __init__(self, app_key: str, app_secret: str) -> None:
        self.app_key = app_key
        self._secret = app_secret.encode()

    def headers(
        self, method: str, path: str, body: bytes, nonce: str, body_hash: str | None = None
    ) -> dict[str, str]:
        timestamp = str(int(time.time()))
        digest = body_hash or hashlib.sha256(body).hexdigest()
        message = "\n".join((method, path, timestamp, nonce, digest)).encode()
        return {
            "Content-Type": "application/json",
            "X-App-Key": self.app_key,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": hmac.new(self._secret, message, hashlib.sha256).hexdigest(),
        }


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def order_body(rng: random.Random, card_no: str, external_id: str) -> bytes:
    items = []
    for _ in range(rng.randint(1, 3)):
        sku, name, category = rng.choice(PRODUCTS)
        quantity = rng.randint(1, 3)
        items.append(
            {
                "sku": sku,
                "name": name,
                "category": category,
                "brand": "Huiyuan",
                "quantity": quantity,
                "amount_cents": quantity * rng.randint(15, 120) * 100,
            }
        )
    return encode(
        {
            "channel": CHANNEL,
            "external_id": external_id,
            "member": {"card_no": card_no},
            "store_code": STORE,
            "paid_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "amount_cents": sum(item["amount_cents"] for item in items),
            "items": items,
        }
    )


def redeem_body(card_no: str, points: int, external_id: str) -> bytes:
    return encode(
        {
            "member": {"card_no": card_no},
            "points": points,
            "external_id": external_id,
            "store_code": STORE,
        }
    )


# --- Scenarios ---


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    expected: int
    must_replay: bool = False  # the answer must carry Idempotent-Replayed: true


SCENARIOS = (
    Scenario("healthz", "GET /healthz (bare JSON baseline)", 200),
    Scenario("orders", "POST /open/v1/orders, new order", 201),
    Scenario("redeem", "POST /open/v1/points/redeem, new external_id", 201),
    Scenario(
        "redeem_keyed", "POST /open/v1/points/redeem, new external_id + new Idempotency-Key", 201
    ),
    Scenario("order_replay", "POST /open/v1/orders, replay of a used (channel, external_id)", 200),
    Scenario(
        "redeem_key_replay",
        "POST /open/v1/points/redeem, replay of a used Idempotency-Key",
        201,
        must_replay=True,
    ),
    Scenario("healthz_end", "GET /healthz again, at the end (baseline)", 200),
)
BARE = ("healthz", "healthz_end")  # the baseline is their mean: it brackets the run


@dataclass(frozen=True)
class ClientJob:
    """What one client process needs; picklable, so it crosses into a spawned process."""

    scenario: str
    client: int
    port: int
    run_id: str
    app_key: str
    app_secret: str
    cards: tuple[str, ...]
    funded_cards: tuple[str, ...]
    replay_order: bytes
    replay_redeem: bytes
    replay_key: str


Request = tuple[str, str, bytes | None, dict[str, str]]


class RequestMaker:
    """The next request of one client in one scenario. Nonces are single-use, so signed
    requests are signed as they go; fixed bodies are hashed once."""

    def __init__(self, job: ClientJob) -> None:
        self.job = job
        self.signer = Signer(job.app_key, job.app_secret)
        self.rng = random.Random(f"{job.run_id}{job.scenario}{job.client}")
        self.seq = 0
        self.order_hash = hashlib.sha256(job.replay_order).hexdigest()
        self.redeem_hash = hashlib.sha256(job.replay_redeem).hexdigest()

    def _fresh(self) -> str:
        self.seq += 1
        return f"{self.job.run_id}-{self.job.scenario}-{self.job.client}-{self.seq}"

    def next(self) -> Request:
        kind = self.job.scenario
        if kind in BARE:
            return "GET", "/healthz", None, {}
        unique = self._fresh()  # the nonce, and the external id of a new order or spend
        if kind == "orders":
            body = order_body(self.rng, self.rng.choice(self.job.cards), unique)
            return self._post("/open/v1/orders", body, unique)
        if kind in ("redeem", "redeem_keyed"):
            card = self.rng.choice(self.job.funded_cards)
            body = redeem_body(card, self.rng.randint(1, 5), unique)
            request = self._post("/open/v1/points/redeem", body, unique)
            if kind == "redeem_keyed":
                request[3]["Idempotency-Key"] = unique[-64:]
            return request
        if kind == "order_replay":
            return self._post("/open/v1/orders", self.job.replay_order, unique, self.order_hash)
        if kind == "redeem_key_replay":
            request = self._post(
                "/open/v1/points/redeem", self.job.replay_redeem, unique, self.redeem_hash
            )
            request[3]["Idempotency-Key"] = self.job.replay_key
            return request
        raise ValueError(f"unknown scenario {kind}")

    def _post(self, path: str, body: bytes, nonce: str, body_hash: str | None = None) -> Request:
        return "POST", path, body, self.signer.headers("POST", path, body, nonce[-64:], body_hash)


# --- The load: closed loop, one keep-alive connection per client process ---


def client_process(job: ClientJob, warmup: float, seconds: float, ready: Any, out: Any) -> None:
    """Runs in a spawned process: wait for the common start, loop until the end, report."""
    expected = next(s for s in SCENARIOS if s.key == job.scenario)
    maker = RequestMaker(job)
    connection = http.client.HTTPConnection("127.0.0.1", job.port, timeout=30)
    start_at = ready.get()  # the parent's time.monotonic() start, shared by all clients
    while time.monotonic() < start_at:
        time.sleep(0.001)
    measure_from, stop = start_at + warmup, start_at + warmup + seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    cpu_start, sent = time.process_time(), 0
    while time.monotonic() < stop:
        method, path, body, headers = maker.next()
        began = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            outcome = _classify(
                expected, response.status, response.getheader("Idempotent-Replayed")
            )
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", job.port, timeout=30)
            outcome, data = f"connection error: {type(error).__name__}", str(error).encode()
        elapsed, sent = time.perf_counter() - began, sent + 1
        if not measure_from <= time.monotonic() <= stop:
            continue
        if outcome == "ok":
            latencies.append(elapsed)
        else:
            errors[outcome] += 1
            samples.setdefault(outcome, data[:300].decode("utf-8", "replace"))
    connection.close()
    cpu = time.process_time() - cpu_start
    out.put(
        {
            "latencies": latencies,
            "errors": dict(errors),
            "samples": samples,
            "cpu": cpu,
            "sent": sent,
        }
    )


def _classify(scenario: Scenario, status: int, replayed: str | None) -> str:
    if status != scenario.expected:
        return f"HTTP {status}"
    if scenario.must_replay and replayed != "true":
        return f"HTTP {status} without Idempotent-Replayed"
    return "ok"


@dataclass
class LoadResult:
    scenario: Scenario
    seconds: float
    latencies: list[float]
    errors: Counter[str]
    samples: dict[str, str]
    client_cpu_us: float  # client CPU per request sent, microseconds

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def run_load(
    scenario: Scenario, template: ClientJob, concurrency: int, warmup: float, seconds: float
) -> LoadResult:
    """C client processes against one scenario; only what completes after the warm-up and
    before the end counts (throughput is completed requests per measured second)."""
    context = multiprocessing.get_context("spawn")  # clients import nothing of the app
    ready, out = context.Queue(), context.Queue()
    processes = [
        context.Process(
            target=client_process,
            args=(_job_for(template, scenario.key, index), warmup, seconds, ready, out),
            daemon=True,
        )
        for index in range(concurrency)
    ]
    try:
        for process in processes:
            process.start()
        start_at = time.monotonic() + 1.5  # time for the spawned clients to import
        for _ in processes:
            ready.put(start_at)
        reports = _collect(out, processes, deadline=start_at + warmup + seconds + 120)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
    return _merge(scenario, seconds, reports)


def _collect(out: Any, processes: list[Any], deadline: float) -> list[dict[str, Any]]:
    """Every client's report; a client that died without one fails the run at once."""
    reports: list[dict[str, Any]] = []
    while len(reports) < len(processes):
        try:
            reports.append(out.get(timeout=1))
        except queue.Empty:
            crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if crashed or time.monotonic() > deadline:
                raise RuntimeError(f"load clients failed (exit codes {crashed})") from None
    return reports


def _job_for(template: ClientJob, scenario: str, client: int) -> ClientJob:
    return dataclasses.replace(template, scenario=scenario, client=client)


def _merge(scenario: Scenario, seconds: float, reports: list[dict[str, Any]]) -> LoadResult:
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    latencies: list[float] = []
    for report in reports:
        latencies.extend(report["latencies"])
        errors.update(report["errors"])
        for outcome, sample in report["samples"].items():
            samples.setdefault(outcome, sample)
    sent = sum(report["sent"] for report in reports) or 1
    cpu_us = sum(report["cpu"] for report in reports) / sent * 1e6
    return LoadResult(scenario, seconds, latencies, errors, samples, cpu_us)


# --- Database, Redis and the data set ---


def mysql_connection() -> Any:
    import pymysql

    return pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, autocommit=True, charset="utf8mb4"
    )


def create_database() -> str:
    """Drop any leftover bench database, create it afresh; answers the server version."""
    connection = mysql_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
            cursor.execute(
                f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cursor.execute("SELECT VERSION()")
            return str(cursor.fetchone()[0])
    finally:
        connection.close()


def drop_database() -> None:
    connection = mysql_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
    finally:
        connection.close()


def bench_redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)


def app_environment() -> dict[str, str]:
    """The environment of gunicorn and of the in-process app: development config (no
    HUIYUAN_ENV), the bench database, Redis db 14, JSON logs."""
    env = {name: value for name, value in os.environ.items() if name != "HUIYUAN_ENV"}
    env.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, LOG_FORMAT="json")
    return env


def build_app() -> Any:
    import logging

    from app import create_app
    from app.config import Config

    app = create_app(Config.from_env(app_environment()))
    logging.getLogger("huiyuan.access").setLevel(logging.WARNING)  # quiet in-process requests
    return app


@dataclass
class Fixture:
    app_key: str
    app_secret: str
    cards: list[str]  # every seeded member
    funded_cards: list[str]  # members with FUNDED_POINTS to spend
    unfunded_cards: list[str] = field(default_factory=list)  # no points account yet


def prepare_data(app: Any, members: int, funded: int) -> Fixture:
    """Migrate, add the tier ladder and a partner, seed members, fund some of them."""
    from sqlalchemy import select

    from app.admins.operations import CLI
    from app.members.demo import seed_members
    from app.members.models import Member
    from app.migrate import upgrade_database
    from app.partners import services as partners
    from app.tiers import services as tiers

    deps = app.extensions["huiyuan"]
    upgrade_database(deps.engine)
    for tier in TIERS:
        tiers.create_tier(uow=deps.uow(), actor=CLI, fields=dict(tier))
    credentials = partners.create_partner(  # spends by card number: an e-commerce partner
        uow=deps.uow(),
        actor=CLI,
        name="Bench POS",
        secret_key=deps.config.secret_key,
        trusted=True,
    )
    seed_members(deps.engine, count=members, seed=20_240_601)
    with deps.engine.connect() as connection:
        rows = connection.execute(select(Member.id, Member.card_no).order_by(Member.id)).all()
    fund_members(deps, [member_id for member_id, _ in rows[:funded]])
    cards = [card for _, card in rows]
    return Fixture(
        credentials.app_key, credentials.app_secret, cards, cards[:funded], cards[funded:]
    )


def fund_members(deps: Any, member_ids: list[int], batch: int = 500) -> None:
    """FUNDED_POINTS each, through the points service (a lot, a ledger entry, the account)."""
    from app.points import operations as points

    for start in range(0, len(member_ids), batch):
        with deps.uow() as uow:
            for member_id in member_ids[start : start + batch]:
                points.earn(
                    uow.session,
                    member_id=member_id,
                    points=FUNDED_POINTS,
                    kind="adjust",
                    reason_code="adjustment",
                    note="benchmark funding",
                    idempotency_key=f"bench-funding:{member_id}",
                )
            uow.commit()


# --- Statements per request, counted in-process ---


SQL, COMMIT, ROLLBACK, PING = "sql", "COMMIT", "ROLLBACK", "pre-ping"


@dataclass
class StatementCount:
    """What one request sent to MariaDB, in order, and how often it called Redis."""

    label: str
    status: int
    trace: list[tuple[str, str]]  # (SQL | COMMIT | ROLLBACK | PING, description)
    redis_calls: int
    cpu_ms: float = math.nan  # median in-process CPU time of this kind of request
    wall_ms: float = math.nan

    @property
    def statements(self) -> list[str]:
        return [text for kind, text in self.trace if kind == SQL]

    @property
    def kinds(self) -> Counter[str]:
        return Counter(statement.split(" ", 1)[0] for statement in self.statements)

    def count(self, kind: str) -> int:
        return sum(1 for seen, _ in self.trace if seen == kind)

    @property
    def round_trips(self) -> int:
        return len(self.trace)


class Recorder:
    """Engine, pool and Redis listeners that note what one request sends: every cursor
    execute, COMMIT and ROLLBACK, the pre-ping of each connection checkout
    (pool_pre_ping) and the ROLLBACK the pool sends when a connection comes back with
    its transaction still open or already committed."""

    def __init__(self, deps: Any) -> None:
        from sqlalchemy import event

        self.trace: list[tuple[str, str]] = []
        self.redis_calls = 0
        note = self.trace.append
        event.listen(deps.engine, "before_cursor_execute", self._statement)
        event.listen(deps.engine, "commit", lambda *_: note((COMMIT, "COMMIT")))
        event.listen(deps.engine, "rollback", lambda *_: note((ROLLBACK, "ROLLBACK")))
        event.listen(deps.engine.pool, "checkout", lambda *_: note((PING, "checkout: pre-ping")))
        event.listen(deps.engine.pool, "reset", self._reset)
        pool = deps.redis.connection_pool
        get_connection = pool.get_connection

        def counted_get_connection(*args: Any, **kwargs: Any) -> Any:
            self.redis_calls += 1  # a command or a whole pipeline: one round trip
            return get_connection(*args, **kwargs)

        pool.get_connection = counted_get_connection

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.trace.append((SQL, describe_statement(statement)))

    def _reset(self, _dbapi_conn: Any, _record: Any, state: Any) -> None:
        if not state.transaction_was_reset:  # the pool then sends a ROLLBACK of its own
            self.trace.append((ROLLBACK, "ROLLBACK (pool reset on check-in)"))

    def measure(self, label: str, send: Callable[[], Any]) -> StatementCount:
        self.trace.clear()
        self.redis_calls = 0
        response = send()
        return StatementCount(label, response.status_code, list(self.trace), self.redis_calls)


def describe_statement(sql: str) -> str:
    """`SELECT points_accounts … FOR UPDATE (member_id)`: the kind, the table, the columns
    it filters on."""
    flat = " ".join(sql.split())
    kind = flat.split(" ", 1)[0].upper()
    table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+`?(\w+)", flat, re.IGNORECASE)
    where = re.search(r"\bWHERE (.*?)(?: GROUP BY| ORDER BY| LIMIT| FOR UPDATE|$)", flat)
    text = f"{kind} {table.group(1) if table else flat[len(kind) :].strip()}"
    if kind == "SELECT" and "FOR UPDATE" in flat:
        text += " … FOR UPDATE"
    if where:
        columns = dict.fromkeys(re.findall(r"\w+\.(\w+)\s*(?:[<>=!]|IN\b|IS\b)", where.group(1)))
        text += f" ({', '.join(columns)})" if columns else ""
    return text


@dataclass
class InProcessCase:
    """One kind of request sent through the Flask test client; ``send(i)`` sends the i-th
    (fresh ids for new orders and spends; the same request again for the replays)."""

    label: str
    send: Callable[[int], Any]
    prime: Callable[[], Any] | None = None  # the first request a replay repeats


def in_process_cases(app: Any, fixture: Fixture, run_id: str) -> list[InProcessCase]:
    client = app.test_client()
    signer = Signer(fixture.app_key, fixture.app_secret)
    rng = random.Random(run_id)
    nonces = iter(range(10**9))
    orders, redeem = "/open/v1/orders", "/open/v1/points/redeem"

    def post(path: str, body: bytes, key: str | None = None) -> Any:
        headers = signer.headers("POST", path, body, f"{run_id}-in-process-{next(nonces)}")
        if key:
            headers["Idempotency-Key"] = key
        return client.post(path, data=body, headers=headers)

    def fresh(kind: str, i: int) -> str:
        return f"{run_id}-in-process-{kind}-{i}"

    used_order = order_body(rng, fixture.funded_cards[0], fresh("replayed-order", 0))
    keyed = redeem_body(fixture.funded_cards[0], 3, fresh("replayed-spend", 0))
    key = fresh("key", 0)
    unfunded, funded = fixture.unfunded_cards, fixture.funded_cards
    return [
        InProcessCase("GET /healthz", lambda i: client.get("/healthz")),
        InProcessCase(
            "order, member without a points account yet",
            lambda i: post(orders, order_body(rng, unfunded[i], fresh("first", i))),
        ),
        InProcessCase(
            "order, member with a points account",
            lambda i: post(orders, order_body(rng, funded[i], fresh("order", i))),
        ),
        InProcessCase(
            "order replay (same channel, external_id)",
            lambda i: post(orders, used_order),
            prime=lambda: post(orders, used_order),
        ),
        InProcessCase(
            "redemption",
            lambda i: post(redeem, redeem_body(funded[i], 3, fresh("spend", i))),
        ),
        InProcessCase(
            "redemption with a new Idempotency-Key",
            lambda i: post(
                redeem, redeem_body(funded[i], 3, fresh("keyed", i)), fresh("new-key", i)
            ),
        ),
        InProcessCase(
            "redemption, Idempotency-Key replay",
            lambda i: post(redeem, keyed, key),
            prime=lambda: post(redeem, keyed, key),
        ),
    ]


def measure_in_process(app: Any, fixture: Fixture, run_id: str) -> list[StatementCount]:
    """Time each kind of request in-process (no listeners attached: CPU and wall time of
    the app alone, one thread), then count what one more of each sends to MariaDB."""
    cases = in_process_cases(app, fixture, run_id)
    timings = {}
    for case in cases:
        if case.prime is not None:
            case.prime()
        cpu, wall = [], []
        for i in range(1, IN_PROCESS_REPEATS + 1):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            case.send(i)
            cpu.append(time.process_time() - cpu_start)
            wall.append(time.perf_counter() - wall_start)
        timings[case.label] = (statistics.median(cpu) * 1000, statistics.median(wall) * 1000)
    recorder = Recorder(app.extensions["huiyuan"])
    counts = []
    for case in cases:
        count = recorder.measure(case.label, lambda case=case: case.send(0))
        count.cpu_ms, count.wall_ms = timings[case.label]
        counts.append(count)
    return counts


def check_signer(fixture: Fixture) -> None:
    """The bench's signer must agree with the app's (a mismatch would show as 401s)."""
    from app.partners.rules import sign

    signer = Signer(fixture.app_key, fixture.app_secret)
    headers = signer.headers("POST", "/open/v1/orders", b"{}", "n")
    expected = sign(
        fixture.app_secret, "POST", "/open/v1/orders", headers["X-Timestamp"], "n", b"{}"
    )
    assert headers["X-Signature"] == expected, "bench signer disagrees with app.partners.rules"


# --- gunicorn ---


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in AVOID_PORTS:
            return port


def http_call(port: int, request: Request) -> tuple[int, dict[str, str], bytes]:
    method, path, body, headers = request
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to gunicorn's own process group (it was started in a new session), then
    SIGKILL if it has not gone within 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):  # any straggler of the group
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def gunicorn(log_path: Path) -> Iterator[int]:
    """gunicorn on a free port, logging to a file; stopped on the way out, always."""
    with log_path.open("ab") as log:
        for _ in range(3):  # a port taken between probing and binding: try another
            port = free_port()
            command = [
                str(VENV_BIN / "gunicorn"),
                *GUNICORN_ARGS,
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi:app",
            ]
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=app_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                if _wait_ready(process, port):
                    yield port
                    return
            finally:
                stop_process_group(process)
    raise RuntimeError(f"gunicorn did not start; see {log_path}")


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_call(port, ("GET", "/readyz", None, {}))[0] == 200:
                return True
        time.sleep(0.2)
    return False


def prime_replays(port: int, template: ClientJob) -> None:
    """The order and the keyed redemption the replay scenarios repeat, sent once."""
    signer = Signer(template.app_key, template.app_secret)
    for path, body, key in (
        ("/open/v1/orders", template.replay_order, None),
        ("/open/v1/points/redeem", template.replay_redeem, template.replay_key),
    ):
        headers = signer.headers("POST", path, body, f"{template.run_id}-prime-{path}")
        if key:
            headers["Idempotency-Key"] = key
        status, _, answer = http_call(port, ("POST", path, body, headers))
        if status != 201:
            raise RuntimeError(f"priming {path} answered {status}: {answer[:300]!r}")


# --- The machine and the report ---


def machine_info(mariadb_version: str) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
    mem_total = re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE)
    ram = f"{int(mem_total.group(1)) / 1024 / 1024:.1f} GiB" if mem_total else "unknown"
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout
    return {
        "nproc": nproc.strip() or str(os.cpu_count()),
        "CPU": model.group(1).strip() if model else platform.processor() or "unknown",
        "RAM": ram,
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "MariaDB": mariadb_version,
        "Redis": str(bench_redis().info("server")["redis_version"]),
    }


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def log_summary(log_path: Path) -> str:
    levels: Counter[str] = Counter()
    lines = 0
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        lines += 1
        level = re.search(r'"level": "(\w+)"|\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]', line)
        if level:
            levels[level.group(1) or level.group(2)] += 1
    shown = ", ".join(f"{name} {count}" for name, count in sorted(levels.items()))
    return f"{lines} lines ({shown or 'no levelled lines'})"


def bare_rps(results: list[LoadResult]) -> float:
    return statistics.mean(result.rps for result in results if result.scenario.key in BARE)


def ratio(result: LoadResult, bare: float) -> float:
    return result.rps / bare if bare else math.nan


def results_table(results: list[LoadResult]) -> str:
    bare = bare_rps(results)
    rows = [
        "| scenario | expected | req/s | × bare | p50 ms | p95 ms | p99 ms | errors | "
        "client CPU µs/req |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        rows.append(
            f"| {result.scenario.label} | {result.scenario.expected} | {result.rps:,.0f} | "
            f"{ratio(result, bare):.2f} | {result.percentile_ms(0.50):.1f} | "
            f"{result.percentile_ms(0.95):.1f} | {result.percentile_ms(0.99):.1f} | "
            f"{sum(result.errors.values())} | {result.client_cpu_us:.0f} |"
        )
    return "\n".join(rows)


def ratios_line(results: list[LoadResult]) -> str:
    bare = bare_rps(results)
    return "; ".join(
        f"{result.scenario.key}: {ratio(result, bare):.2f} × bare"
        for result in results
        if result.scenario.key not in BARE
    )


def statements_section(counts: list[StatementCount]) -> str:
    bare_cpu = counts[0].cpu_ms
    rows = [
        "| request | status | CPU ms | × bare CPU | wall ms | SQL statements | "
        "SELECT / INSERT / UPDATE / other | COMMIT | ROLLBACK | pre-ping | "
        "MariaDB round trips | Redis round trips |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count in counts:
        kinds = count.kinds
        other = len(count.statements) - kinds["SELECT"] - kinds["INSERT"] - kinds["UPDATE"]
        rows.append(
            f"| {count.label} | {count.status} | {count.cpu_ms:.2f} | "
            f"{count.cpu_ms / bare_cpu:.0f} | {count.wall_ms:.2f} | "
            f"**{len(count.statements)}** | {kinds['SELECT']} / {kinds['INSERT']} / "
            f"{kinds['UPDATE']} / {other} | {count.count(COMMIT)} | {count.count(ROLLBACK)} | "
            f"{count.count(PING)} | {count.round_trips} | {count.redis_calls} |"
        )
    lists = []
    for count in counts:
        if count.trace:
            numbered = "\n".join(
                f"{n}. `{text}`" if kind == SQL else f"{n}. *{text}*"
                for n, (kind, text) in enumerate(count.trace, 1)
            )
            lists.append(f"**{count.label}** (every MariaDB round trip, in order)\n\n{numbered}")
    return "\n".join(rows) + "\n\n" + "\n\n".join(lists)


def errors_section(results: list[LoadResult]) -> str:
    lines = []
    for result in results:
        for outcome, number in result.errors.most_common():
            sample = result.samples.get(outcome, "").replace("`", "'")
            lines.append(f"- {result.scenario.key}: {number} × {outcome}; e.g. `{sample}`")
    return "\n".join(lines) or "None: every counted answer had the expected status."


def cost_line(
    order: StatementCount, replay: StatementCount, bare_cpu: float, spend: StatementCount
) -> str:
    """Where an order's time goes, from the in-process numbers."""
    extra = len(order.statements) - len(replay.statements)
    per_statement = (order.cpu_ms - replay.cpu_ms) / max(extra, 1)
    waited = order.wall_ms - order.cpu_ms
    text = (
        f"- In-process, one at a time, an order takes {order.cpu_ms:.1f} ms of CPU "
        f"({order.cpu_ms / bare_cpu:.0f}× a bare request) in {order.wall_ms:.1f} ms wall, a "
        f"redemption {spend.cpu_ms:.1f} ms in {spend.wall_ms:.1f} ms. The order sends {extra} "
        f"more statements than its replay and costs {order.cpu_ms - replay.cpu_ms:.1f} ms "
        f"more CPU: about {per_statement:.1f} ms of Python per statement (SQLAlchemy ORM, the "
        f"pure-Python PyMySQL driver, flushes), so the statement count sets the cost. "
    )
    if waited > order.cpu_ms * 0.25:
        text += (
            f"The other {waited:.1f} ms of wall time is waiting: for MariaDB's answers and, "
            f"on this shared machine, for a core."
        )
    else:
        text += "Little of the wall time is spent waiting for MariaDB."
    return text


def reading(results: list[LoadResult], counts: list[StatementCount]) -> str:
    """What the numbers say, computed from them; the caveats that always hold."""
    by_key = {result.scenario.key: result for result in results}
    by_label = {count.label: count for count in counts}
    order = by_label["order, member with a points account"]
    first = by_label["order, member without a points account yet"]
    spend = by_label["redemption"]
    bare, bare_cpu = bare_rps(results), by_label["GET /healthz"].cpu_ms
    start, end = by_key["healthz"].rps, by_key["healthz_end"].rps
    slowest = min(results, key=lambda result: result.rps)
    keyed_cost = by_key["redeem"].rps / max(by_key["redeem_keyed"].rps, 1e-9)
    lines = [
        f"- Under load the bare endpoint served {start:,.0f} req/s at the start and "
        f"{end:,.0f} at the end ({abs(end - start) / max(start, end, 1e-9):.0%} apart: the "
        f"noise of this machine); against their mean, orders ran at "
        f"{ratio(by_key['orders'], bare):.2f} × bare and till redemptions at "
        f"{ratio(by_key['redeem'], bare):.2f} × bare. The slowest path is "
        f"`{slowest.scenario.key}` at {ratio(slowest, bare):.2f} × bare.",
        cost_line(order, by_label["order replay (same channel, external_id)"], bare_cpu, spend),
        f"- An order issues {len(order.statements)} SQL statements ({len(first.statements)} "
        f"for a member's first, which creates the points account), a redemption "
        f"{len(spend.statements)}. With the COMMIT, the ROLLBACKs and the pre-ping of each "
        f"connection checkout that is {order.round_trips} and {spend.round_trips} MariaDB "
        f"round trips, plus {order.redis_calls} to Redis (the nonce).",
        f"- Replays skip the domain work: the order replay runs at "
        f"{ratio(by_key['order_replay'], bare):.2f} × bare, the Idempotency-Key replay at "
        f"{ratio(by_key['redeem_key_replay'], bare):.2f} × bare. A new Idempotency-Key makes "
        f"a redemption {keyed_cost:.2f}× as expensive (the claim and the stored answer are "
        f"two more transactions).",
        f"- Caveats: the load clients share the {os.cpu_count()} cores with gunicorn, MariaDB "
        f"and Redis and spent about {by_key['healthz'].client_cpu_us:.0f} µs of CPU per bare "
        f"request, so "
        f"the bare baseline is partly client-bound and the ratios flatter the real "
        f"endpoints. The machine is shared with other work (see the load average above): "
        f"compare ratios within one run, never absolute numbers across runs.",
    ]
    return "\n".join(lines)


@dataclass
class RunInfo:
    started: datetime
    machine: dict[str, str]
    parameters: dict[str, str]
    load_before: str
    load_after: str = ""
    log: str = ""


def write_report(info: RunInfo, results: list[LoadResult], counts: list[StatementCount]) -> Path:
    machine = "\n".join(f"| {name} | {value} |" for name, value in info.machine.items())
    parameters = "\n".join(f"- {name}: {value}" for name, value in info.parameters.items())
    text = f"""# Open API benchmark, {info.started.date().isoformat()}

Run at {info.started.isoformat(timespec="seconds")} with
`.venv/bin/python bench/open_api.py {info.parameters["arguments"]}`.

## Machine

| | |
| --- | --- |
{machine}
| load average (1/5/15 min) before / after | {info.load_before} → {info.load_after} |

## Parameters

{parameters}

## Throughput and latency

{results_table(results)}

Ratios to the bare endpoint (the mean req/s of its two runs): {ratios_line(results)}.

Errors (any status other than the expected one, counted in the measured window):

{errors_section(results)}

gunicorn log: {info.log}.

## Server cost and database statements per request

Measured in-process: create_app on the bench database, the Flask test client, signed
requests, one thread. CPU and wall time are medians of {IN_PROCESS_REPEATS} requests of
each kind, timed with no listeners attached. Then one more of each is counted with a
`before_cursor_execute` listener on the engine (SQL statements), engine `commit` and
`rollback` listeners, a pool `checkout` listener (each checkout is a pre-ping round trip:
`pool_pre_ping=True`) and a pool `reset` listener (the ROLLBACK the pool sends when a
connection comes back after a COMMIT or without a transaction); Redis round trips by
counting connection checkouts of the Redis client's pool.

{statements_section(counts)}

## Reading

{reading(results, counts)}
"""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{info.started.date().isoformat()}-open-api.md"
    path.write_text(text, encoding="utf-8")
    return path


def update_readme(path: Path, results: list[LoadResult]) -> None:
    """Copy the newest table between the README's markers, if it has them."""
    if not README.exists():
        return
    start, end = "<!-- latest-results:start -->", "<!-- latest-results:end -->"
    text = README.read_text(encoding="utf-8")
    if start not in text or end not in text:
        return
    block = (
        f"{start}\nFrom [`results/{path.name}`](results/{path.name}):\n\n"
        f"{results_table(results)}\n\nRatios: {ratios_line(results)}.\n{end}"
    )
    before, rest = text.split(start, 1)
    README.write_text(before + block + rest.split(end, 1)[1], encoding="utf-8")


# --- main ---


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per scenario")
    parser.add_argument("--members", type=int, default=10_000, help="seeded members")
    parser.add_argument("--funded", type=int, default=2_000, help="members given points")
    parser.add_argument("--keep-log", action="store_true", help="keep the gunicorn log file")
    args = parser.parse_args(argv)
    least = IN_PROCESS_REPEATS + 1  # the in-process timing takes that many of each
    funded_ok = least <= args.funded <= args.members - least
    if args.seconds <= 0 or args.concurrency < 1 or not funded_ok:
        parser.error(
            f"need --seconds > 0, --concurrency >= 1, and at least {least} members funded "
            f"and {least} not"
        )
    return args


def _terminate_on_sigterm() -> None:
    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks: cleanup runs

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def step(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _terminate_on_sigterm()
    run_id = secrets.token_hex(4)
    log_path = Path(tempfile.mkstemp(prefix="huiyuan-bench-gunicorn-", suffix=".log")[1])
    app = None
    try:
        step(f"creating database {DB_NAME}")
        mariadb_version = create_database()
        bench_redis().flushdb()
        info = RunInfo(
            datetime.now().astimezone(),
            machine_info(mariadb_version),
            parameters(args),
            load_average(),
        )
        step(f"migrating, seeding {args.members:,} members, funding {args.funded:,}")
        app = build_app()
        fixture = prepare_data(app, args.members, args.funded)
        check_signer(fixture)
        step("timing requests and counting their statements in-process")
        counts = measure_in_process(app, fixture, run_id)
        results = load_phase(args, fixture, run_id, log_path)
        info.load_after, info.log = load_average(), log_summary(log_path)
        path = write_report(info, results, counts)
        update_readme(path, results)
        step(f"wrote {path.relative_to(ROOT)}")
        print(f"\n{results_table(results)}\n\nRatios: {ratios_line(results)}\n")
        return 0
    finally:
        step("cleaning up: dropping the bench database, flushing Redis db 14")
        cleanup(app)
        if args.keep_log:
            step(f"gunicorn log kept at {log_path}")
        else:
            log_path.unlink(missing_ok=True)


def cleanup(app: Any) -> None:
    """Each step on its own, so one failing does not skip the others."""
    steps: list[Callable[[], Any]] = [drop_database, lambda: bench_redis().flushdb()]
    if app is not None:
        steps.insert(0, app.extensions["huiyuan"].engine.dispose)
    for action in steps:
        try:
            action()
        except Exception as error:
            print(f"cleanup step failed: {error!r}", file=sys.stderr)


def parameters(args: argparse.Namespace) -> dict[str, str]:
    arguments = f"--seconds {args.seconds:g} --concurrency {args.concurrency}"
    if args.warmup != 2:
        arguments += f" --warmup {args.warmup:g}"
    return {
        "arguments": arguments,
        "server": f"`gunicorn {' '.join(GUNICORN_ARGS)} --bind 127.0.0.1:<free port> wsgi:app` "
        "(the shipped gunicorn.conf.py otherwise: gevent workers), "
        "HUIYUAN_ENV unset, LOG_FORMAT=json to a file, DATABASE_URL "
        f"`{DATABASE_URL}`, REDIS_URL `{REDIS_URL}`",
        "load": f"{args.concurrency} client processes, closed loop, one keep-alive "
        f"http.client connection each; {args.warmup:g} s warm-up then {args.seconds:g} s "
        "measured per scenario, scenarios one after another",
        "data": f"{args.members:,} demo members; {args.funded:,} of them with "
        f"{FUNDED_POINTS:,} points; tiers member / silver (2,000 yuan, 120%) / gold "
        "(10,000 yuan, 150%); orders of 1-3 items for random members by card_no; "
        "redemptions of 1-5 points for random funded members",
        "signing": "every signed request gets a fresh nonce and is signed by the client as it "
        "goes (bodies of the replay scenarios are built and hashed once)",
    }


def load_phase(
    args: argparse.Namespace, fixture: Fixture, run_id: str, log_path: Path
) -> list[LoadResult]:
    rng = random.Random(run_id)
    template = ClientJob(
        scenario="",
        client=0,
        port=0,
        run_id=run_id,
        app_key=fixture.app_key,
        app_secret=fixture.app_secret,
        cards=tuple(fixture.cards),
        funded_cards=tuple(fixture.funded_cards),
        replay_order=order_body(rng, rng.choice(fixture.cards), f"{run_id}-replayed-order"),
        replay_redeem=redeem_body(fixture.funded_cards[-1], 1, f"{run_id}-replayed-spend"),
        replay_key=f"{run_id}-replayed-key",
    )
    step("starting gunicorn")
    with gunicorn(log_path) as port:
        template = dataclasses.replace(template, port=port)
        prime_replays(port, template)
        results = []
        for scenario in SCENARIOS:
            step(f"load: {scenario.key} ({args.warmup:g} s warm-up + {args.seconds:g} s)")
            result = run_load(scenario, template, args.concurrency, args.warmup, args.seconds)
            errors = sum(result.errors.values())
            step(
                f"  {result.rps:,.0f} req/s, p50 {result.percentile_ms(0.5):.1f} ms, "
                f"p99 {result.percentile_ms(0.99):.1f} ms, {errors} errors"
            )
            results.append(result)
        step("stopping gunicorn")
    return results


if __name__ == "__main__":
    sys.exit(main())

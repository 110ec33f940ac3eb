"""The database or Redis down (a closed port) or hanging (a socket that accepts and never
answers): every request answers 503 ``unavailable`` in the envelope within a bound set by
the configured timeouts, never a 500, and a login does not spend the WeChat code."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app import create_app
from app.idempotency.models import IdempotencyRecord, RecordState
from tests.support.config import make_config
from tests.support.http import assert_envelope, bearer, log_in
from tests.support.signing import PartnerKeys, open_get
from tests.support.wechat import login_code, phone_code
from wechat_hooks.simulator import SimulatorServer

# One second each; a request makes at most a few attempts, so it answers well within this.
SHORT_TIMEOUTS = {
    "database_connect_timeout": 1,
    "database_read_timeout": 1,
    "database_write_timeout": 1,
    "database_pool_timeout": 1,
    "redis_connect_timeout": 1,
    "redis_socket_timeout": 1,
}
BOUND_SECONDS = 5.0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["down", "hanging"])
def dead_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port where nothing listens, or where a server accepts and never says a word."""
    if request.param == "down":
        yield _closed_port()
        return
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(512)  # the kernel completes the handshakes; nobody ever reads or writes
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def timed(call: Callable[[], Any]) -> Any:
    started = time.monotonic()
    answer = call()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_SECONDS, f"answered after {elapsed:.1f} s"
    return answer


def assert_unavailable(answer: Any) -> None:
    assert_envelope(answer, 503, "unavailable")


class TestDatabaseOutage:
    @pytest.fixture
    def outage(self, sim: SimulatorServer, dead_port: int, redis: Any) -> FlaskClient:
        url = f"mysql+pymysql://root@127.0.0.1:{dead_port}/huiyuan?charset=utf8mb4"
        app = create_app(make_config(sim, url, **SHORT_TIMEOUTS), redis=redis)
        return app.test_client()

    def test_login_is_503_and_the_code_stays_good(
        self, outage: FlaskClient, client: FlaskClient, sim: SimulatorServer
    ) -> None:
        code = login_code(sim, "o-outage-login")

        assert_unavailable(timed(lambda: outage.post("/mp/v1/auth/login", json={"code": code})))

        # WeChat never saw the code: once the database is back, the same code logs in.
        answer = client.post("/mp/v1/auth/login", json={"code": code})
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["is_new"] is True

    def test_phone_binding_is_503_and_the_phone_code_stays_good(
        self, outage: FlaskClient, client: FlaskClient, sim: SimulatorServer
    ) -> None:
        token = log_in(client, sim, "o-outage-phone")["token"]
        code = phone_code(sim, "13812345678")

        assert_unavailable(
            timed(
                lambda: outage.post("/mp/v1/auth/phone", json={"code": code}, headers=bearer(token))
            )
        )

        answer = client.post("/mp/v1/auth/phone", json={"code": code}, headers=bearer(token))
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["phone_masked"] == "138****5678"

    def test_member_reads_and_writes_are_503(
        self, outage: FlaskClient, client: FlaskClient, sim: SimulatorServer
    ) -> None:
        token = log_in(client, sim, "o-outage-me")["token"]

        for call in (
            lambda: outage.get("/mp/v1/me", headers=bearer(token)),
            lambda: outage.get("/mp/v1/card", headers=bearer(token)),
            lambda: outage.patch("/mp/v1/me", json={"city": "杭州"}, headers=bearer(token)),
            lambda: outage.patch(
                "/mp/v1/me",
                json={"city": "杭州"},
                headers=bearer(token) | {"Idempotency-Key": "k-outage"},
            ),
        ):
            assert_unavailable(timed(call))

    def test_open_api_and_admin_calls_are_503(
        self, outage: FlaskClient, partner: PartnerKeys
    ) -> None:
        assert_unavailable(
            timed(lambda: open_get(outage, partner, "/open/v1/members/lookup?card_no=1"))
        )
        assert_unavailable(
            timed(
                lambda: outage.post(
                    "/admin/v1/auth/login",
                    json={"username": "ops", "password": "a long password here"},
                )
            )
        )

    def test_readyz_names_the_database(self, outage: FlaskClient) -> None:
        answer = timed(lambda: outage.get("/readyz"))
        assert answer.status_code == 503
        assert answer.get_json()["failed"] == ["database"]


class TestRedisOutage:
    @pytest.fixture
    def outage(
        self,
        sim: SimulatorServer,
        database_url: str,
        dead_port: int,
        engine: Engine,
        session_factory: sessionmaker[Session],
    ) -> Iterator[Flask]:
        config = make_config(
            sim, database_url, redis_url=f"redis://127.0.0.1:{dead_port}/0", **SHORT_TIMEOUTS
        )
        app = create_app(config, engine=engine, session_factory=session_factory)
        yield app
        app.extensions["huiyuan"].redis.close()

    def test_a_signed_open_api_call_is_503(self, outage: Flask, partner: PartnerKeys) -> None:
        client = outage.test_client()
        # The partner is found in the database; its nonce cannot be recorded in Redis.
        answer = timed(lambda: open_get(client, partner, "/open/v1/members/lookup?card_no=1"))
        assert_unavailable(answer)


@pytest.fixture
def redis_down_app(
    sim: SimulatorServer, database_url: str, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[Flask]:
    """The service with Redis down, on the test database."""
    config = make_config(
        sim, database_url, redis_url=f"redis://127.0.0.1:{_closed_port()}/0", **SHORT_TIMEOUTS
    )
    app = create_app(config, engine=engine, session_factory=session_factory)
    yield app
    app.extensions["huiyuan"].redis.close()


def test_a_keyed_request_that_dies_in_flight_leaves_its_key_free(
    sim: SimulatorServer, redis_down_app: Flask, session: Session, client: FlaskClient
) -> None:
    token = log_in(client, sim, "o-outage-key")["token"]
    code = phone_code(sim, "13812340001")
    headers = bearer(token) | {"Idempotency-Key": "k-outage"}

    # The access token cannot be read from Redis: the request dies in flight. Its answer
    # was to commit with its effect, so nothing of it is left, the key included.
    died = redis_down_app.test_client().post(
        "/mp/v1/auth/phone", json={"code": code}, headers=headers
    )
    assert_unavailable(died)
    records = select(IdempotencyRecord).where(IdempotencyRecord.key == "k-outage")
    assert session.scalars(records).all() == []

    retry = client.post("/mp/v1/auth/phone", json={"code": code}, headers=headers)
    assert retry.status_code == 200, retry.get_json()
    assert retry.get_json()["phone_masked"] == "138****0001"
    assert "Idempotent-Replayed" not in retry.headers
    again = client.post("/mp/v1/auth/phone", json={"code": code}, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_data() == retry.get_data()
    session.expire_all()
    (record,) = session.scalars(records).all()
    assert (record.state, record.status_code) == (RecordState.DONE, 200)


@pytest.mark.mariadb
def test_rows_held_locked_past_every_retry_answer_503_and_then_work(
    sim: SimulatorServer, database_url: str, engine: Engine, redis: Any
) -> None:
    """Another transaction holds the member's points account longer than every attempt's
    lock wait: the check-in is 503 ``unavailable`` with Retry-After, not a 500, changes
    nothing, and succeeds once the rows are free."""
    from sqlalchemy import text

    from tests.support.rows import remove_rows_since, snapshot_rows

    snapshot = snapshot_rows(engine)
    # A read timeout of 3 s makes each lock wait give up after 2 s.
    app = create_app(make_config(sim, database_url, database_read_timeout=3), redis=redis)
    try:
        client = app.test_client()
        token = log_in(client, sim, "o-contended")["token"]
        member_id = client.get("/mp/v1/me", headers=bearer(token)).get_json()["id"]
        with engine.connect() as holder:
            # The account row, created (or found) and held exclusively, uncommitted.
            holder.execute(
                text(
                    "INSERT INTO points_accounts (member_id, balance, debt, updated_at)"
                    " VALUES (:m, 0, 0, UTC_TIMESTAMP())"
                    " ON DUPLICATE KEY UPDATE member_id = member_id"
                ),
                {"m": member_id},
            )
            held = client.post("/mp/v1/checkins", headers=bearer(token))
            holder.rollback()

        assert_envelope(held, 503, "unavailable")
        assert held.headers["Retry-After"] == "1"
        with engine.connect() as reader:
            checkins = reader.scalar(
                text("SELECT COUNT(*) FROM checkins WHERE member_id = :m"), {"m": member_id}
            )
        assert checkins == 0
        assert client.post("/mp/v1/checkins", headers=bearer(token)).status_code == 200
    finally:
        app.extensions["huiyuan"].engine.dispose()
        remove_rows_since(engine, snapshot)

"""What every floor shares: plain PyMySQL connections, the signed-request check, answers.

A floor is the least a hot path can do and still leave the rows the app leaves: the same
signature check against the partner's secret, the same nonce claim in Redis, then the
rows in one transaction, with plain statements on a plain connection. It is the bound
the app's path is measured against (the target is a share of the floor's rate), so it
does nothing the rows do not need:

- connections come from a per-process list, with no pre-ping and no reset on return (a
  connection that failed is dropped, not returned); READ COMMITTED like the app's;
- what changes a few times a year (the partner and its decrypted secret, settings
  documents, the tier ladder) is read once per process and kept: the bench never
  changes them while it measures;
- every answer is logged as one JSON line, as the app logs its requests, so both write
  the same volume of logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pymysql
import redis
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, Response, g, request

from bench.floors import protocol

DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - the app's development default
RETENTION = timedelta(hours=24)  # how long an answered Idempotency-Key is kept
MISMATCH = "This Idempotency-Key was used with another request."


class Refused(Exception):
    """An error answer, shaped as the app shapes them: ``{"error": {code, message, details}}``."""

    def __init__(
        self, status: int, code: str, message: str, *, stored: bool = True, **details: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.stored = stored  # kept as an Idempotency-Key's answer (the app stores 4xx)

    def document(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class RaceLost(Exception):
    """The transaction met a change made meanwhile (a merge): it runs again, whole."""


def unauthorized(message: str, **details: Any) -> Refused:
    return Refused(401, "unauthorized", message, **details)


@dataclass(frozen=True)
class FloorConfig:
    """The environment the app reads, read the same way (a subset of ``app.config``)."""

    mysql: Mapping[str, Any]
    redis_url: str
    secret_key: str
    timezone: str
    clock_skew_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FloorConfig:
        env = os.environ if env is None else env
        url = urlsplit(env["DATABASE_URL"])
        mysql = {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 3306,
            "user": url.username or "root",
            "password": url.password or "",
            "database": url.path.lstrip("/"),
        }
        return cls(
            mysql=mysql,
            redis_url=env["REDIS_URL"],
            secret_key=env.get("SECRET_KEY") or DEV_SECRET_KEY,
            timezone=env.get("TIMEZONE") or "Asia/Shanghai",
            clock_skew_seconds=int(env.get("OPEN_API_CLOCK_SKEW_SECONDS") or 300),
        )


class Pool:
    """Connections kept per process. Under gevent a greenlet switches only on I/O, so
    taking from and giving back to a list needs no lock."""

    def __init__(self, settings: Mapping[str, Any], keep: int = 32) -> None:
        self.settings, self.keep = dict(settings), keep
        self._idle: list[pymysql.connections.Connection[Any]] = []

    def _connect(self) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            **self.settings,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=5,
            read_timeout=30,
            write_timeout=30,
            init_command="SET SESSION tx_isolation = 'READ-COMMITTED', "
            "SESSION innodb_lock_wait_timeout = 20",
        )

    @contextmanager
    def connection(self) -> Iterator[pymysql.connections.Connection[Any]]:
        """A connection whose transaction the caller ends (commit or rollback); one that
        raised is closed instead of returned."""
        conn = self._idle.pop() if self._idle else self._connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if len(self._idle) < self.keep:
            self._idle.append(conn)
        else:
            conn.close()


def _fernet(secret_key: str) -> Fernet:
    """The key partner secrets are encrypted under (API.md: encrypted at rest)."""
    digest = hashlib.sha256(b"partner-secrets|" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@dataclass(frozen=True)
class Partner:
    id: int
    app_key: str
    secret: str
    trusted: bool
    channels: tuple[str, ...] | None

    def may_use_channel(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


class Floor:
    """The collaborators of a floor app: config, pool, Redis, what is read once."""

    def __init__(self, config: FloorConfig) -> None:
        self.config = config
        self.pool = Pool(config.mysql)
        self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=3)
        self._partners: dict[str, Partner | None] = {}
        self._once: dict[str, Any] = {}

    def once(self, name: str, load: Callable[[Any], Any]) -> Any:
        """``load(cursor)`` the first time ``name`` is asked for in this process."""
        if name not in self._once:
            with self.pool.connection() as conn, conn.cursor() as cursor:
                self._once[name] = load(cursor)
                conn.rollback()
        return self._once[name]

    def partner(self, app_key: str) -> Partner | None:
        if app_key not in self._partners:
            self._partners[app_key] = self.once(f"partner:{app_key}", self._load_partner(app_key))
        return self._partners[app_key]

    def _load_partner(self, app_key: str) -> Callable[[Any], Partner | None]:
        def load(cursor: Any) -> Partner | None:
            cursor.execute(
                "SELECT id, secret_encrypted, trusted, channels FROM partners "
                "WHERE app_key = %s AND active",
                (app_key,),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            try:
                secret = _fernet(self.config.secret_key).decrypt(row[1].encode()).decode()
            except InvalidToken:
                return None
            listed = json.loads(row[3]) if row[3] is not None else None  # SQL or JSON null
            channels = tuple(listed) if listed is not None else None
            return Partner(int(row[0]), app_key, secret, bool(row[2]), channels)

        return load

    def verify_signed(self) -> Partner:
        """The signed request's partner, its nonce claimed: 401 otherwise (API.md)."""
        headers = request.headers
        app_key, timestamp, nonce, signature = (headers.get(n, "") for n in protocol.SIGNED_HEADERS)
        if not (app_key and timestamp and nonce and signature):
            raise unauthorized("X-App-Key, X-Timestamp, X-Nonce and X-Signature are required.")
        if not (timestamp.isdigit() and len(timestamp) <= 12) or len(nonce) > 64:
            raise unauthorized("X-Timestamp must be unix seconds and X-Nonce at most 64 chars.")
        window = self.config.clock_skew_seconds
        if abs(int(time.time()) - int(timestamp)) > window:
            raise unauthorized(
                "X-Timestamp is outside the allowed window.", reason="stale_timestamp"
            )
        partner = self.partner(app_key)
        if partner is None:
            raise unauthorized("Unknown app key.", reason="unknown_app_key")
        raw = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        body = request.get_data(cache=True)
        expected = protocol.sign(partner.secret, request.method, raw, timestamp, nonce, body)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise unauthorized("The signature does not match.", reason="bad_signature")
        pipe = self.redis.pipeline()  # one round trip, as the app's claim
        pipe.zadd(protocol.NONCE_KEY_PREFIX + app_key, {nonce: int(timestamp)}, nx=True)
        pipe.expire(protocol.NONCE_KEY_PREFIX + app_key, window * 2)
        added, _ = pipe.execute()
        if not added:
            raise unauthorized("This nonce was already used.", reason="replayed_nonce")
        return partner


RETRIED = frozenset({1062, 1205, 1213})  # duplicate key (a twin won), lock wait, deadlock
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Done:
    """What a transaction answers: a JSON document (or stored text), its status, and
    whether it wrote anything (committed) or only read (rolled back)."""

    document: Any
    status: int
    write: bool
    text: str | None = None  # a stored answer, replayed byte for byte
    replayed: bool = False


def run_transaction(pool: Pool, work: Callable[[Any], Done], attempts: int = 4) -> Done:
    """``work(cursor)`` in one transaction, committed when it wrote; rolled back on a
    refusal. A lost race (a twin's duplicate key, a deadlock, a lock wait) runs it again
    whole, in a fresh transaction, where it meets the winner's rows (as app.retry)."""
    for attempt in range(attempts):
        refused: Refused | None = None
        with pool.connection() as conn:
            cursor = conn.cursor()
            try:
                done = work(cursor)
            except Refused as error:
                conn.rollback()
                refused = error
            except (pymysql.err.MySQLError, RaceLost) as error:
                lost = isinstance(error, RaceLost) or (error.args and error.args[0] in RETRIED)
                if not (lost and attempt < attempts - 1):
                    raise
                conn.rollback()
                continue
            else:
                if done.write:
                    conn.commit()
                else:
                    conn.rollback()
        if refused is not None:
            raise refused
        return done
    raise AssertionError("unreachable: the last attempt raises")


def keyed(floor: Floor, partner: Partner, work: Callable[[Any], Done]) -> Done:
    """``work`` once per Idempotency-Key (when the request has one), as the app does it: in
    one transaction the key is looked up (a key seen before answers its stored answer),
    claimed by inserting its record, the work done and the answer written on the record;
    a refusal is stored too, in a transaction of its own."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return run_transaction(floor.pool, work)
    if not (0 < len(key) <= 64 and key.isascii() and key.isprintable()):
        raise Refused(422, "validation_error", "Idempotency-Key must be 1 to 64 printable ASCII.")
    scope = f"open:{partner.app_key}"
    body = request.get_data(cache=True)
    digest = protocol.request_hash(request.method, request.path, request.query_string, body)

    def store(cursor: Any, status: int, text: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        cursor.execute(
            "INSERT INTO idempotency_records (scope, `key`, request_hash, state, status_code, "
            "response_body, created_at, expires_at) VALUES (%s, %s, %s, 'done', %s, %s, %s, %s)",
            (scope, key, digest, status, text, now, now + RETENTION),
        )

    def once(cursor: Any) -> Done:
        cursor.execute(
            "SELECT request_hash, state, status_code, response_body FROM idempotency_records "
            "WHERE scope = %s AND `key` = %s",
            (scope, key),
        )
        row = cursor.fetchone()
        if row is not None:
            if row[0] != digest:
                raise Refused(409, "idempotency_mismatch", MISMATCH, stored=False)
            if row[1] != "done":
                raise Refused(
                    409, "conflict", "The request with this key is in progress.", stored=False
                )
            return Done(None, int(row[2]), write=False, text=row[3], replayed=True)
        now = datetime.now(UTC).replace(tzinfo=None)
        cursor.execute(  # the claim: a twin's INSERT waits on this row until we end
            "INSERT INTO idempotency_records (scope, `key`, request_hash, state, created_at, "
            "expires_at) VALUES (%s, %s, %s, 'pending', %s, %s)",
            (scope, key, digest, now, now + RETENTION),
        )
        claim = cursor.lastrowid
        done = work(cursor)
        text = done.text or protocol.answer_text(done.document)
        cursor.execute(
            "UPDATE idempotency_records SET state = 'done', status_code = %s, response_body = %s "
            "WHERE id = %s",
            (done.status, text, claim),
        )
        return Done(done.document, done.status, write=True, text=text)

    try:
        return run_transaction(floor.pool, once)
    except Refused as error:
        refusal = error
        if refusal.stored and refusal.status < 500:

            def store_refusal(cursor: Any) -> Done:
                store(cursor, refusal.status, protocol.answer_text(refusal.document()))
                return Done(None, refusal.status, write=True)

            run_transaction(floor.pool, store_refusal)
        raise


def respond(done: Done) -> Response:
    headers = {"Idempotent-Replayed": "true"} if done.replayed else None
    text = done.text if done.text is not None else protocol.answer_text(done.document)
    return Response(text, done.status, headers, mimetype="application/json")


def answer(document: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(protocol.answer_text(document), status, headers, mimetype="application/json")


def json_body() -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise Refused(400, "bad_request", "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise Refused(422, "validation_error", "The body must be a JSON object.")
    return body


def make_flask(name: str, floor: Floor) -> Flask:
    """A Flask app with the endpoints every server of the bench has, refusals answered as
    the app answers them, and one JSON log line per request."""
    app = Flask(name)
    app.extensions["floor"] = floor

    @app.get("/healthz")
    def healthz() -> Response:
        return answer({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        floor.once("ready", lambda cursor: cursor.execute("SELECT 1"))
        floor.redis.ping()
        return answer({"status": "ok"}, 200)

    @app.errorhandler(Refused)
    def refused(error: Refused) -> Response:
        return answer(error.document(), error.status)

    @app.before_request
    def started() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_line(response: Response) -> Response:
        elapsed = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1)
        line: dict[str, Any] = {"level": "INFO", "logger": "floor.access"}
        line["method"] = request.method
        line |= {"path": request.path, "status": response.status_code, "duration_ms": elapsed}
        sys.stderr.write(json.dumps(line) + "\n")
        return response

    return app

"""What one request costs, in-process: CPU, and every round trip to MariaDB and Redis.

Counting happens on the wire, not in an ORM: ``pymysql.Connection._execute_command``
is where every statement, COMMIT, ROLLBACK and ping leaves the process, whoever sent it
(SQLAlchemy's pool pre-ping and reset, the session, or a floor's plain cursor), and a
Redis command or a whole pipeline leaves through one ``send_packed_command``. So the app
and its floor are counted by the same rule, and nothing an ORM does behind the scenes is
missed. CPU is timed separately, with nothing patched, as the median of many requests.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql.connections
import redis.connection
from pymysql.constants import COMMAND

SQL, COMMIT, ROLLBACK, PING, OTHER = "sql", "COMMIT", "ROLLBACK", "ping", "other"


def _top_level(sql: str) -> tuple[str, int]:
    """The statement with every parenthesised part shown as ``(…)``, and how many of
    those parts were subqueries."""
    kept, depth, subqueries = [], 0, 0
    for n, char in enumerate(sql):
        if char == "(":
            if depth == 0:
                kept.append("(…)")
                subqueries += sql[n + 1 : n + 8].upper().startswith("SELECT")
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            kept.append(char)
    return "".join(kept), subqueries


def describe_statement(sql: str) -> str:
    """``SELECT points_accounts … FOR UPDATE (member_id)``: the kind, the table (and the
    tables it joins), the columns it filters on, and how many subqueries it carries;
    enough to read a request's statements as a list."""
    whole = " ".join(sql.split())
    flat, subqueries = _top_level(whole)
    kind = flat.split(" ", 1)[0].upper()
    named = r"\b(?:FROM|INTO|UPDATE)\s+`?(\w+)"
    table = re.search(named, flat, re.IGNORECASE)
    inner = None if table else re.search(named, whole, re.IGNORECASE)  # FROM (SELECT ...)
    if table:
        text = f"{kind} {table.group(1)}"
    elif inner:
        text = f"{kind} {inner.group(1)} (derived table)"
    else:
        text = f"{kind} {flat[len(kind) :].strip()[:60]}"
    joined = re.findall(r"\bJOIN\s+`?(\w+)", flat, re.IGNORECASE)
    if joined:
        text += "".join(f" ⋈ {name}" for name in joined)
    upper = flat.upper()
    if kind == "SELECT" and "FOR UPDATE" in upper:
        text += " … FOR UPDATE"
    if kind == "INSERT" and "ON DUPLICATE KEY" in upper:
        text += " … ON DUPLICATE KEY UPDATE"
    where = re.search(
        r"\bWHERE (.*?)(?: GROUP BY| ORDER BY| LIMIT| FOR UPDATE|$)", flat, re.IGNORECASE
    )
    if where:
        pattern = r"(?:\w+\.)?`?(\w+)`?\s*(?:[<>=!]|IN\b|IS\b)"
        columns = dict.fromkeys(re.findall(pattern, where.group(1), re.IGNORECASE))
        text += f" ({', '.join(columns)})" if columns else ""
    if subqueries:
        text += f" + {subqueries} subquer{'y' if subqueries == 1 else 'ies'}"
    return text


@dataclass
class Trace:
    """Every round trip of one request, in order: (kind, description)."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    redis: int = 0

    @property
    def statements(self) -> list[str]:
        return [text for kind, text in self.calls if kind == SQL]

    def count(self, kind: str) -> int:
        return sum(1 for seen, _ in self.calls if seen == kind)

    @property
    def kinds(self) -> Counter[str]:
        return Counter(statement.split(" ", 1)[0] for statement in self.statements)

    @property
    def round_trips(self) -> int:
        return len(self.calls)


class WireCounter:
    """Patches the two choke points for as long as it is active; one request at a time."""

    def __init__(self) -> None:
        self.trace = Trace()

    def reset(self) -> Trace:
        done, self.trace = self.trace, Trace()
        return done

    @contextmanager
    def active(self) -> Iterator[WireCounter]:
        mysql_class: Any = pymysql.connections.Connection
        redis_class: Any = redis.connection.AbstractConnection
        execute, send = mysql_class._execute_command, redis_class.send_packed_command
        counter = self

        def counted_execute(conn: Any, command: int, sql: Any) -> Any:
            counter.trace.calls.append(_classify(command, sql))
            return execute(conn, command, sql)

        def counted_send(conn: Any, *args: Any, **kwargs: Any) -> Any:
            counter.trace.redis += 1
            return send(conn, *args, **kwargs)

        mysql_class._execute_command = counted_execute
        redis_class.send_packed_command = counted_send
        try:
            yield self
        finally:
            mysql_class._execute_command = execute
            redis_class.send_packed_command = send


def _classify(command: int, sql: Any) -> tuple[str, str]:
    if command == COMMAND.COM_PING:
        return PING, "ping (pool pre-ping)"
    if command != COMMAND.COM_QUERY:
        return OTHER, f"command {command}"
    text = sql.decode("utf-8", "replace") if isinstance(sql, (bytes, bytearray)) else str(sql)
    word = text.strip().upper()
    if word == "COMMIT":
        return COMMIT, "COMMIT"
    if word == "ROLLBACK":
        return ROLLBACK, "ROLLBACK"
    return SQL, describe_statement(text)


@dataclass
class Cost:
    """One kind of request, in-process: median CPU and wall time, and one typical trace."""

    label: str
    status: int
    cpu_ms: float
    wall_ms: float
    trace: Trace
    repeats: int
    statuses: dict[int, int]


Send = Callable[[int], int]  # sends the i-th request of its kind; answers the status
COUNTED = 5  # requests counted after the timed ones


def measure(label: str, send: Send, *, repeats: int, counted: int = COUNTED) -> Cost:
    """Time ``repeats`` requests with nothing patched (CPU of the process, one thread),
    then count ``counted`` more and keep the trace of median length: a once-a-second
    cache check lands in some requests and not others."""
    cpu: list[float] = []
    wall: list[float] = []
    statuses: Counter[int] = Counter()
    for i in range(repeats):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        statuses[send(i)] += 1
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    counter, traces = WireCounter(), []
    with counter.active():
        for i in range(repeats, repeats + counted):
            counter.reset()
            statuses[send(i)] += 1
            traces.append(counter.reset())
    traces.sort(key=lambda trace: (trace.round_trips, trace.redis))
    return Cost(
        label=label,
        status=statuses.most_common(1)[0][0],
        cpu_ms=statistics.median(cpu) * 1000,
        wall_ms=statistics.median(wall) * 1000,
        trace=traces[len(traces) // 2],
        repeats=repeats,
        statuses=dict(statuses),
    )

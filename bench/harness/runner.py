"""One benchmark run: a suite's scenarios against the bare endpoint, the floor and the app.

A suite (``bench/open_api`` is the first) prepares its data, names its two servers (the
app, ``wsgi:app``, and its floor) and declares its scenarios; this module does the rest,
the same way for every hot path:

1. both servers start (``bench.harness.server``); each scenario's priming requests are
   sent (the first order a replay repeats ...);
2. the suite's row check runs: the same logical requests through the app and through the
   floor must leave the same rows, or the run stops before measuring anything;
3. in-process, each scenario's requests are timed (median CPU) and counted (statements,
   COMMIT/ROLLBACK/ping, Redis) for the app and for the floor;
4. wrk is shown not to be the bottleneck: the bare endpoint with the configured number of
   wrk threads and with another, interleaved; wrk's own CPU is recorded on every run;
5. ``rounds`` rounds per scenario, interleaved bare, floor, app, bare, floor, app ...; each
   run is a warm-up and a measured wrk run on requests signed just before it, with the CPU
   of the server's workers, MariaDB and Redis read around the measured run;
6. the suite's invariants are re-checked.

Only ratios within a run mean anything on a shared machine: each scenario's app is
compared with the bare endpoint and with its floor measured in the same rounds.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import statistics
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from bench.harness import counting, server, wrk
from bench.harness.database import Invariants
from bench.harness.server import Answer, Server, ServerSpec
from bench.harness.wrk import HttpRequest, WrkResult

TARGETS = ("bare", "floor", "app")


def step(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class Expect:
    """The answer every request of a scenario must get."""

    status: int
    header: tuple[str, str] | None = None  # e.g. ("Idempotent-Replayed", "true")

    def met_by(self, answer: Answer) -> bool:
        return answer.status == self.status and (
            self.header is None or answer.header(self.header[0]) == self.header[1]
        )

    def __str__(self) -> str:
        return f"{self.status}" + (f" + {self.header[0]}: {self.header[1]}" if self.header else "")


Make = Callable[[str, str, int], HttpRequest]  # (server "app" | "floor", batch, i) -> request
Prime = Callable[[str], Sequence[tuple[HttpRequest, Expect]]]  # per server, sent once


@dataclass(frozen=True)
class Scenario:
    """One kind of request, declared: how to make the i-th request of a batch for a server
    (every call a new request: fresh nonce, fresh ids), what it must answer, and what the
    app's rate is judged against."""

    key: str
    label: str
    make: Make
    expect: Expect
    versus: Literal["floor", "bare"]  # replays are judged against bare, the rest the floor
    target: float  # the share of that rate the app should reach
    max_rate: float  # more than any server could answer: files hold 2x this per second
    prime: Prime | None = None


@dataclass(frozen=True)
class Options:
    seconds: float = 10.0
    warmup: float = 2.0
    rounds: int = 3
    threads: int = 1  # one wrk thread keeps up on 2 cores; a second only takes their CPU
    connections: int = 16
    repeats: int = 40  # in-process requests timed per scenario and server


class Suite(ABC):
    """What a hot path's benchmark provides; everything else is the harness's."""

    name: str  # results/<date>-<name>.md
    title: str
    signing_window: float = math.inf  # seconds a signed request stays valid

    @abstractmethod
    def prepare(self) -> dict[str, str]:
        """Create the database and the data; answers versions for the report."""

    @abstractmethod
    def servers(self) -> Sequence[ServerSpec]:
        """The app (named "app") and its floor (named "floor")."""

    @abstractmethod
    def scenarios(self) -> Sequence[Scenario]: ...

    @abstractmethod
    def check(self, servers: Mapping[str, Server]) -> list[str]:
        """Send the same logical requests to both servers and compare the rows they leave;
        raise on any difference. Answers the report's lines on what was compared."""

    @abstractmethod
    def senders(self) -> Mapping[str, Callable[[HttpRequest], Answer]]:
        """In-process senders (a Flask test client each) for "app" and "floor"."""

    @abstractmethod
    def invariants(self) -> Invariants: ...

    @abstractmethod
    def cleanup(self) -> None:
        """Drop what ``prepare`` made; runs whatever happened."""

    def bare(self) -> HttpRequest:
        return HttpRequest("GET", "/healthz")

    def parameters(self) -> dict[str, str]:
        """What the report says of the data and the requests."""
        return {}

    def reading(self, results: Sequence[ScenarioResult]) -> list[str]:
        """What the numbers say, computed from them (the report's "Reading")."""
        return []


@dataclass
class Run:
    """One measured wrk run on one server: what it answered, what each process spent."""

    target: str
    round: int
    wrk: WrkResult
    cpu: dict[str, float]  # seconds in the measured run: server, mariadb, redis, wrk
    generated: int
    warm_unexpected: int

    def per_request_us(self, who: str) -> float:
        return self.cpu[who] / self.wrk.requests * 1e6 if self.wrk.requests else math.nan


@dataclass
class ScenarioResult:
    scenario: Scenario
    runs: list[Run] = field(default_factory=list)
    costs: dict[str, counting.Cost] = field(default_factory=dict)  # "app", "floor"

    def of(self, target: str) -> list[Run]:
        return [run for run in self.runs if run.target == target]

    def median(self, target: str, value: Callable[[Run], float]) -> float:
        values = [value(run) for run in self.of(target)]
        return statistics.median(values) if values else math.nan

    def median_rps(self, target: str) -> float:
        return self.median(target, lambda run: run.wrk.rps)

    def ratio(self, target: str, versus: str) -> float:
        base = self.median_rps(versus)
        return self.median_rps(target) / base if base else math.nan

    @property
    def app_ratio(self) -> float:
        return self.ratio("app", self.scenario.versus)

    @property
    def problems(self) -> list[str]:
        found = []
        for run in self.runs:
            status = 200 if run.target == "bare" else self.scenario.expect.status
            unexpected = run.wrk.unexpected(status)
            if run.wrk.exhausted:
                found.append(
                    f"{run.target} round {run.round} RAN OUT of requests after "
                    f"{run.generated:,}: raise max_rate of {self.scenario.key}"
                )
            if unexpected or run.warm_unexpected:
                found.append(
                    f"{run.target} round {run.round}: {unexpected} unexpected answers "
                    f"(statuses {run.wrk.statuses}), {run.warm_unexpected} in the warm-up"
                )
        return found


@dataclass
class Outcome:
    results: list[ScenarioResult]
    bare_cost: counting.Cost
    proof: dict[int, list[Run]]  # wrk threads -> the bare endpoint's runs
    check: list[str]
    invariants: Invariants
    commands: dict[str, str]  # server name -> command line
    logs: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.invariants.holds and not any(r.problems for r in self.results)


def _cpu_now(servers: Mapping[str, Server]) -> dict[str, float]:
    def total(name: str) -> float:
        return sum(server.process_cpu(pid)[0] for pid in server.pids_named(name))

    sample = {"mariadb": total("mariadbd"), "redis": total("redis-server")}
    sample |= {name: each.cpu_seconds() for name, each in servers.items()}
    return sample


class Measurer:
    """The wrk runs: requests written to a scratch directory just before each run."""

    def __init__(self, suite: Suite, options: Options, servers: Mapping[str, Server]) -> None:
        self.suite, self.options, self.servers = suite, options, servers
        self.directory = Path(tempfile.mkdtemp(prefix="huiyuan-bench-"))
        self.script = wrk.write_script(self.directory)
        self.files = 0

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _write(
        self, scenario: Scenario | None, target: str, batch: str, seconds: float, threads: int
    ) -> wrk.RequestFile:
        self.files += 1
        host = f"127.0.0.1:{self.servers['app' if target == 'bare' else target].port}"
        if scenario is None or target == "bare":
            made: Sequence[HttpRequest] = [self.suite.bare()]
            return wrk.write_requests(self.directory, f"r{self.files}", made, threads, host)
        count = math.ceil(2 * scenario.max_rate * seconds)
        lazily = (scenario.make(target, batch, i) for i in range(count))
        return wrk.write_requests(self.directory, f"r{self.files}", lazily, threads, host)

    def run(
        self,
        scenario: Scenario | None,
        target: str,
        round_no: int,
        threads: int | None = None,
        tag: str = "",
    ) -> Run:
        """A warm-up and a measured run; ``tag`` (the scenario's place in the suite) goes
        into every batch name, so no two scenarios make the same nonce or external id."""
        options, threads = self.options, threads or self.options.threads
        name = "app" if target == "bare" else target
        header = scenario.expect.header if scenario is not None and target != "bare" else None
        status = 200 if scenario is None or target == "bare" else scenario.expect.status
        signed_at = time.time()
        warm = self._write(scenario, target, f"{tag}w{round_no}", options.warmup, threads)
        measured = self._write(scenario, target, f"{tag}m{round_no}", options.seconds, threads)
        url = self.servers[name].url
        try:
            warm_unexpected = 0
            if options.warmup > 0:
                warmed = wrk.run_wrk(
                    url,
                    warm,
                    script=self.script,
                    seconds=options.warmup,
                    connections=options.connections,
                    header=header,
                )
                warm_unexpected = warmed.unexpected(status) + warmed.exhausted
            age = time.time() - signed_at + options.seconds + 5
            if age > self.suite.signing_window:
                raise RuntimeError(f"requests signed {age:.0f} s before the run ends: too old")
            before = _cpu_now(self.servers)
            result = wrk.run_wrk(
                url,
                measured,
                script=self.script,
                seconds=options.seconds,
                connections=options.connections,
                header=header,
            )
            after = _cpu_now(self.servers)
        finally:
            warm.remove()
            measured.remove()
        cpu = {"server": after[name] - before[name], "wrk": result.wrk_cpu}
        cpu |= {who: after[who] - before[who] for who in ("mariadb", "redis")}
        return Run(target, round_no, result, cpu, measured.count, warm_unexpected)


def _prime(suite: Suite, servers: Mapping[str, Server]) -> None:
    for scenario in suite.scenarios():
        if scenario.prime is not None:
            step(f"priming {scenario.key}: what its replays repeat, on both servers")
        for name in ("floor", "app"):
            for request, expect in scenario.prime(name) if scenario.prime else ():
                answered = servers[name].call(request)
                if not expect.met_by(answered):
                    raise RuntimeError(
                        f"priming {scenario.key} on {name}: expected {expect}, got "
                        f"{answered.status} {answered.body[:300]!r}"
                    )


def _in_process(suite: Suite, results: list[ScenarioResult], repeats: int) -> counting.Cost:
    senders = suite.senders()
    bare_request = suite.bare()
    bare = counting.measure(
        "GET /healthz", lambda _: senders["app"](bare_request).status, repeats=repeats
    )
    for tag, result in enumerate(results):
        scenario = result.scenario
        for name in ("floor", "app"):
            count = repeats + counting.COUNTED
            made = [scenario.make(name, f"{tag}i", i) for i in range(count)]
            send = senders[name]
            cost = counting.measure(
                f"{scenario.key} ({name})",
                lambda i, made=made, send=send: send(made[i]).status,  # type: ignore[misc]
                repeats=repeats,
            )
            if set(cost.statuses) != {scenario.expect.status}:
                raise RuntimeError(
                    f"in-process {scenario.key} on {name} answered {cost.statuses}, "
                    f"expected {scenario.expect.status}"
                )
            result.costs[name] = cost
    return bare


def execute(suite: Suite, options: Options, log_dir: Path) -> Outcome:
    """Everything between ``prepare`` and the report (see the module's docstring)."""
    servers: dict[str, Server] = {}
    with contextlib.ExitStack() as stack:
        for spec in suite.servers():
            step(f"starting {spec.name}: gunicorn {spec.wsgi}")
            log_path = log_dir / f"{spec.name}.log"
            servers[spec.name] = stack.enter_context(server.serve(spec, log_path))
        _prime(suite, servers)
        step("row check: the same requests through the app and the floor")
        check = suite.check(servers)
        results = [ScenarioResult(scenario) for scenario in suite.scenarios()]
        step(f"in-process: {options.repeats} requests timed and 5 counted per scenario")
        bare_cost = _in_process(suite, results, options.repeats)
        measurer = Measurer(suite, options, servers)
        stack.callback(measurer.close)
        proof: dict[int, list[Run]] = {}
        counts = (options.threads, 2 if options.threads == 1 else 1)
        for round_no in range(1, options.rounds + 1):
            for threads in counts:  # interleaved, as the scenarios' rounds are
                run = measurer.run(None, "bare", round_no, threads=threads)
                proof.setdefault(threads, []).append(run)
                step(f"wrk proof round {round_no}, -t{threads}: bare {run.wrk.rps:,.0f} req/s")
        for tag, result in enumerate(results):
            for round_no in range(1, options.rounds + 1):
                for target in TARGETS:
                    run = measurer.run(result.scenario, target, round_no, tag=str(tag))
                    result.runs.append(run)
                    step(
                        f"{result.scenario.key} round {round_no} {target}: "
                        f"{run.wrk.rps:,.0f} req/s, {run.per_request_us('server'):,.0f} µs "
                        f"server CPU/req, statuses {run.wrk.statuses}"
                    )
        step("re-checking the invariants of every member touched")
        invariants = suite.invariants()
        commands = {name: each.command_line() for name, each in servers.items()}
    logs = {name: _log_summary(log_dir / f"{name}.log") for name in servers}
    return Outcome(results, bare_cost, proof, check, invariants, commands, logs)


def _log_summary(path: Path) -> str:
    lines, errors = 0, 0
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            lines += 1
            errors += '"level": "ERROR"' in line or "[ERROR]" in line or "Traceback" in line
    return f"{lines:,} lines, {errors} error lines"

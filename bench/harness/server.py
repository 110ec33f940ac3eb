"""gunicorn as the project ships it, started and stopped by a benchmark.

Every server of a run (the app, a floor) is ``gunicorn <module:app>`` started from the
project root, so gunicorn reads the repository's ``gunicorn.conf.py`` (gevent workers,
keep-alive, limits) exactly as in production; only the worker count, the bind address and
the control socket are given on the command line. The control socket is disabled because
its default path is shared by every gunicorn of the machine (tests, other runs).

gunicorn runs in its own session (process group), and the group is stopped on the way
out whatever happened: SIGTERM, then SIGKILL for anything left, so no worker outlives
the run. The CPU a server spends is read from ``/proc``: the workers' own time plus the
time of workers the master has already reaped (a recycled worker's CPU is not lost).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.wrk import HttpRequest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
AVOID_PORTS = frozenset({8000, 8200})  # the dev server and the WeChat simulator of `make run`
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerSpec:
    """What to serve: ``module:app`` for gunicorn, and the environment it runs in."""

    name: str
    wsgi: str
    env: Mapping[str, str]
    workers: int = 2
    ready_path: str = "/readyz"

    def command(self, port: int) -> list[str]:
        return [
            str(GUNICORN),
            *("--workers", str(self.workers)),
            "--no-control-socket",
            *("--graceful-timeout", "10"),  # stops sooner at the end; no effect under load
            *("--bind", f"127.0.0.1:{port}"),
            self.wsgi,
        ]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class Server:
    """A running gunicorn: its port, its master's pid and its log."""

    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, request: HttpRequest, timeout: float = 30) -> Answer:
        """One request on a fresh connection (checks and priming, not load)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = dict(request.headers)
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU (user + system) of the live workers and of those already reaped."""
        total = sum(process_cpu(pid)[0] for pid in self.worker_pids())
        return total + process_cpu(self.process.pid)[1]

    def command_line(self) -> str:
        shown = self.spec.command(0)
        shown[0] = "gunicorn"
        return " ".join(shown).replace("127.0.0.1:0", "127.0.0.1:<free port>")


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (gunicorn's workers)."""
    found: list[int] = []
    task_children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        found = [int(part) for part in task_children.read_text().split()]
    if found:
        return found
    for entry in Path("/proc").iterdir():  # kernels without the children file
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return found


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces): field 3 on."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of its reaped children); zeros once it has gone."""
    try:
        fields = _stat_fields(pid)
    except (OSError, ValueError):
        return 0.0, 0.0
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime
    reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICK  # cutime, cstime
    return own, reaped


def pids_named(name: str) -> list[int]:
    """Processes whose command name is ``name`` (mariadbd, redis-server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in AVOID_PORTS:
            return port


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after 15 s, and SIGKILL to any
    straggler of the group in any case."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def serve(spec: ServerSpec, log_path: Path, timeout: float = 60) -> Iterator[Server]:
    """The server on a free port, logging to ``log_path``, ready when this yields (its
    ready path answered 200 and every worker is up); stopped on the way out, always."""
    with log_path.open("ab") as log:
        for _ in range(3):  # a port taken between probing and binding: try another
            port = free_port()
            process = subprocess.Popen(
                spec.command(port),
                cwd=ROOT,
                env=dict(spec.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                server = Server(spec, port, process, log_path)
                if _wait_ready(server, timeout):
                    yield server
                    return
            finally:
                stop_process_group(process)
    raise RuntimeError(f"{spec.name}: gunicorn did not start; see {log_path}")


def _wait_ready(server: Server, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    ready = HttpRequest("GET", server.spec.ready_path)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(OSError, http.client.HTTPException):
            answered = server.call(ready, timeout=5).status == 200
            # A worker that has not loaded the app yet does not accept; the checks and
            # warm-ups that follow give every worker time to, before anything is measured.
            if answered and len(server.worker_pids()) >= server.spec.workers:
                return True
        time.sleep(0.2)
    return False

"""Load by wrk, from requests built and signed ahead of time.

A Python load client spends more CPU per request than a cheap endpoint does, so it, not the
server, would set the baseline. wrk (C, epoll) does not, but it cannot sign: every signed
request carries a single-use nonce and an HMAC over its body. So each request of a round is
built beforehand, complete (request line, headers with their signature, body), and
written to one file per wrk thread; the Lua script below only hands them out. Threads
never share a file, so no request is sent twice.

The script counts the answers by status in ``response()`` (and, when the scenario asks,
those missing an expected header) and ``done()`` reports every thread's counts as one JSON
line, read back here. A thread whose file runs out stops and says so: that round did not
measure what it claims, and the harness reports it as such.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

WRK = "/usr/bin/wrk"
RESULT_MARK = "BENCH-RESULT "

LUA = r"""
-- Serves requests signed ahead of time: one file per thread, records "<length>\n<bytes>".
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local prefix = args[1]
  cycle = args[2] == "cycle"
  header_name = (args[3] or "") ~= "" and args[3]:lower() or nil
  header_value = args[4]
  requests, count = {}, 0
  local f = assert(io.open(prefix .. "." .. id, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local len = tonumber(data:sub(pos, nl - 1))
    count = count + 1
    requests[count] = data:sub(nl + 1, nl + len)
    pos = nl + 1 + len
  end
  served, exhausted, missing, statuses = 0, 0, 0, {}
end

function request()
  served = served + 1
  if served > count then
    if cycle then
      served = 1
    else
      exhausted = exhausted + 1
      served = count
      wrk.thread:stop()
    end
  end
  return requests[served]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if header_name then
    local seen = nil
    for name, value in pairs(headers) do
      if name:lower() == header_name then seen = value end
    end
    if seen ~= header_value then missing = missing + 1 end
  end
end

function done(summary, latency, requests)
  local merged, served_total, exhausted_total, missing_total = {}, 0, 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
    served_total = served_total + thread:get("served")
    exhausted_total = exhausted_total + thread:get("exhausted")
    missing_total = missing_total + thread:get("missing")
  end
  local statuses = {}
  for status, n in pairs(merged) do
    table.insert(statuses, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"statuses":{%s},"served":%d,' ..
    '"exhausted":%d,"missing_header":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, table.concat(statuses, ","), served_total,
    exhausted_total, missing_total, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class HttpRequest:
    """One complete request; ``raw`` is what goes on the wire."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def raw(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method not in ("GET", "HEAD"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(frozen=True)
class RequestFile:
    """The per-thread files of one wrk run (``<prefix>.1`` ... ``<prefix>.<threads>``)."""

    prefix: Path
    threads: int
    count: int
    cycle: bool  # a fixed request served again and again (the bare endpoint)

    def remove(self) -> None:
        for thread in range(1, self.threads + 1):
            Path(f"{self.prefix}.{thread}").unlink(missing_ok=True)


def write_requests(
    directory: Path, name: str, requests: Iterable[HttpRequest], threads: int, host: str
) -> RequestFile:
    """Request i goes to thread i mod ``threads``: the partition that keeps every thread's
    requests its own. A single request is served by every thread, cycled."""
    prefix = directory / name
    count = 0
    with contextlib.ExitStack() as files:
        handles = [
            files.enter_context(Path(f"{prefix}.{n}").open("wb")) for n in range(1, threads + 1)
        ]
        for count, request in enumerate(requests, 1):
            raw = request.raw(host)
            handles[(count - 1) % threads].write(b"%d\n%s" % (len(raw), raw))
    cycle = count == 1
    if cycle:  # one fixed request: every thread gets a copy
        first = Path(f"{prefix}.1").read_bytes()
        for n in range(2, threads + 1):
            Path(f"{prefix}.{n}").write_bytes(first)
    return RequestFile(prefix, threads, count, cycle)


@dataclass
class WrkResult:
    """One wrk run: what was answered, how fast, and what wrk itself cost."""

    requests: int  # responses received within the run
    duration: float  # seconds
    statuses: dict[int, int]
    exhausted: int  # requests asked for after a thread's file ran out
    missing_header: int
    errors: dict[str, int]
    latency_ms: dict[str, float]
    wrk_cpu: float  # seconds of CPU wrk used (user + system)
    threads: int
    connections: int
    extra: dict[str, float] = field(default_factory=dict)  # filled by the runner

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0

    def unexpected(self, status: int) -> int:
        """Answers that are not ``status``, or lack the expected header."""
        others = sum(n for code, n in self.statuses.items() if code != status)
        return others + self.missing_header


def write_script(directory: Path) -> Path:
    path = directory / "serve.lua"
    path.write_text(LUA, encoding="utf-8")
    return path


def run_wrk(
    url: str,
    requests: RequestFile,
    *,
    script: Path,
    seconds: float,
    connections: int,
    header: tuple[str, str] | None = None,
) -> WrkResult:
    """wrk against ``url`` for ``seconds``, serving ``requests``; its CPU from wait4."""
    name, value = header or ("", "")
    command = [
        WRK,
        *("-t", str(requests.threads), "-c", str(connections), "-d", f"{seconds:g}s"),
        *("--timeout", "10s", "-s", str(script), url, "--"),
        *(str(requests.prefix), "cycle" if requests.cycle else "once", name, value),
    ]
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # wrk ends itself after ``seconds``
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {text[-2000:]}")
    line = next((ln for ln in text.splitlines() if ln.startswith(RESULT_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result line: {text[-2000:]}")
    data = json.loads(line[len(RESULT_MARK) :])
    latency = {key: value / 1000 for key, value in data["latency_us"].items()}
    return WrkResult(
        requests=int(data["requests"]),
        duration=data["duration_us"] / 1e6,
        statuses={int(code): int(n) for code, n in data["statuses"].items()},
        exhausted=int(data["exhausted"]),
        missing_header=int(data["missing_header"]),
        errors={key: int(n) for key, n in data["errors"].items()},
        latency_ms=latency,
        wrk_cpu=usage.ru_utime + usage.ru_stime,
        threads=requests.threads,
        connections=connections,
    )


def wrk_version() -> str:
    done = subprocess.run([WRK, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].split(" [")[0].strip()

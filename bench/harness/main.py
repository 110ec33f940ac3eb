"""Run a suite from start to end: prepare, measure, report, and clean up whatever happens.

SIGTERM and SIGHUP unwind like Ctrl-C, through the ``finally`` blocks, so the servers'
process groups are stopped and the scratch database is dropped even when the run is
killed. The exit status says whether the run is valid: 0 only when every answer was the
expected one, no request file ran out and the invariants held.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from types import FrameType

from bench.harness import report
from bench.harness.runner import Options, Outcome, Suite, execute, step
from bench.harness.wrk import wrk_version


def add_options(parser: argparse.ArgumentParser) -> None:
    defaults = Options()
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="measured s")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="warm-up s")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="rounds/scenario")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="wrk threads")
    parser.add_argument("--connections", type=int, default=defaults.connections, help="wrk -c")
    parser.add_argument(
        "--repeats", type=int, default=defaults.repeats, help="in-process requests timed"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")


def options_from(args: argparse.Namespace) -> Options:
    if args.seconds <= 0 or args.rounds < 1 or args.threads < 1 or args.connections < args.threads:
        raise SystemExit("need --seconds > 0, --rounds >= 1, --connections >= --threads >= 1")
    return Options(
        seconds=args.seconds,
        warmup=args.warmup,
        rounds=args.rounds,
        threads=args.threads,
        connections=args.connections,
        repeats=args.repeats,
    )


def _raise_on_signal() -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def run_suite(suite: Suite, options: Options, command: str, *, keep_logs: bool = False) -> int:
    _raise_on_signal()
    started = datetime.now().astimezone()
    load_before = report.load_average()
    log_dir = Path(tempfile.mkdtemp(prefix=f"huiyuan-bench-{suite.name}-logs-"))
    try:
        step(f"preparing {suite.title}")
        versions = suite.prepare() | {"wrk": wrk_version()}
        outcome = execute(suite, options, log_dir)
        info = report.machine(versions)
        path = write_results(
            suite,
            options=options,
            outcome=outcome,
            info=info,
            started=started,
            command=command,
            load_before=load_before,
        )
        report.update_readme(path, outcome)
        step(f"wrote {path.relative_to(report.BENCH_DIR.parent)}; README table updated")
        print(f"\n{report.summary_table(outcome.results)}\n")
        if not outcome.ok:
            print(report.problems(outcome), file=sys.stderr)
        return 0 if outcome.ok else 1
    finally:
        step("cleaning up: servers stopped, scratch database dropped, Redis db flushed")
        try:
            suite.cleanup()
        except Exception as error:  # the other steps still run
            print(f"cleanup failed: {error!r}", file=sys.stderr)
        if keep_logs:
            step(f"server logs kept in {log_dir}")
        else:
            for log in log_dir.glob("*.log"):
                log.unlink(missing_ok=True)
            log_dir.rmdir()


def write_results(
    suite: Suite,
    *,
    options: Options,
    outcome: Outcome,
    info: dict[str, str],
    started: datetime,
    command: str,
    load_before: str,
) -> Path:
    machine = "\n".join(f"| {name} | {value} |" for name, value in info.items())
    servers = "\n".join(f"  - {name}: `{line}`" for name, line in outcome.commands.items())
    logs = "; ".join(f"{name}: {summary}" for name, summary in outcome.logs.items())
    params = "\n".join(f"- {name}: {value}" for name, value in suite.parameters().items())
    check = "\n".join(f"- {line}" for line in outcome.check)
    reading = "\n".join(f"- {line}" for line in suite.reading(outcome.results))
    text = f"""# {suite.title}, {started.date().isoformat()}

Run at {started.isoformat(timespec="seconds")} with `{command}`.

## Machine

| | |
| --- | --- |
{machine}
| load average (1/5/15 min) before / after | {load_before} → {report.load_average()} |

## How it ran

- servers, both from the project root so gunicorn reads `gunicorn.conf.py` (gevent):
{servers}
- load: wrk `-t{options.threads} -c{options.connections}`; per scenario {options.rounds}
  rounds, interleaved bare, floor, app; each run {options.warmup:g} s of warm-up then
  {options.seconds:g} s measured, on requests built and signed just before it (files of
  2 × the scenario's highest plausible rate × seconds, one per wrk thread); bare is the
  app's `GET /healthz`
- CPU under load: the server's worker processes (`/proc/<pid>/stat`, reaped workers
  included), MariaDB and Redis, read around each measured run, divided by the requests
  answered; wrk's own CPU from `wait4`
{params}
- logs: {logs}

## Results (medians of {options.rounds} rounds)

{report.summary_table(outcome.results)}

## Reading

{reading}

## Cost per request

In-process: the median CPU of {options.repeats} requests of each kind through a Flask test
client, one thread, nothing patched; then 5 more counted and the median trace kept.
{report.kinds_note()} Under load: the medians of the rounds.

{report.cost_table(outcome)}

## wrk is not the bottleneck

{report.wrk_section(outcome, options)}

## Problems

{report.problems(outcome)}

## Row check (before any load)

{check}

## Invariants (after the load)

The points invariants {outcome.invariants.summary()}.

## Every run

{report.rounds_table(outcome)}

## Statements per request, in order

{report.statement_lists(outcome)}
"""
    report.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = report.RESULTS_DIR / f"{started.date().isoformat()}-{suite.name}.md"
    path.write_text(text, encoding="utf-8")
    return path

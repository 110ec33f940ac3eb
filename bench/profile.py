"""Where a hot path's CPU goes: one scenario of the open-API suite, in-process, profiled.

    .venv/bin/python -m bench.profile order_new [--count 2000] [--server app] [--html F]
    .venv/bin/python -m bench.profile redeem --cprofile 40     # on CPU time, by function
    .venv/bin/python -m bench.profile redeem --compare         # app against floor, CPU

Prepares the suite's data (a small pool by default), primes replay scenarios, sends
``--count`` requests of the scenario through a Flask test client on the chosen server
(``app`` or ``floor``) under pyinstrument (wall clock) or cProfile (CPU), and prints the
median CPU per request and where it went; ``--compare`` times app and floor in interleaved
batches instead. Use it before changing a hot path and again after: the bench's own
numbers say how fast, this says why.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import statistics
import sys
import time
from typing import Any

from pyinstrument import Profiler

from bench.open_api.suite import OpenApiSuite


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("scenario", help="a scenario key, e.g. order_new, redeem, key_replay")
    parser.add_argument("--count", type=int, default=2000, help="requests profiled")
    parser.add_argument("--server", choices=("app", "floor"), default="app")
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument("--no-profile", action="store_true", help="only the median CPU")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="no profile: app and floor in interleaved batches, median CPU of each and the ratio",
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        metavar="N",
        help="cProfile on CPU time instead: the N costliest functions by own time and by total",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    suite = OpenApiSuite(
        members=options.members,
        funded=options.members // 5,
        lots=options.members // 5,
        max_requests=0,
    )
    try:
        suite.prepare()
        by_key = {scenario.key: scenario for scenario in suite.scenarios()}
        scenario = by_key.get(options.scenario)
        if scenario is None:
            print(f"no scenario {options.scenario!r}; one of {', '.join(by_key)}", file=sys.stderr)
            return 2
        if options.compare:
            return _compare(suite, scenario, options.count)
        return _profile(suite, scenario, options)
    finally:
        suite.cleanup()


def _profile(suite: OpenApiSuite, scenario: Any, options: argparse.Namespace) -> int:
    send = suite.senders()[options.server]
    for request, expect in scenario.prime(options.server) if scenario.prime else ():
        answer = send(request)
        if not expect.met_by(answer):
            raise RuntimeError(f"priming answered {answer.status} {answer.body[:200]!r}")
    for request in [scenario.make(options.server, "warm", i) for i in range(200)]:
        send(request)
    made = [scenario.make(options.server, "prof", i) for i in range(options.count)]
    wall = None if options.no_profile or options.cprofile else Profiler(interval=0.0002)
    on_cpu = cProfile.Profile(time.process_time) if options.cprofile else None
    cpu: list[float] = []
    with contextlib.ExitStack() as profiling:
        if wall is not None:
            wall.start()
            profiling.callback(wall.stop)
        if on_cpu is not None:
            on_cpu.enable()
            profiling.callback(on_cpu.disable)
        for request in made:
            start = time.process_time()
            answer = send(request)
            cpu.append(time.process_time() - start)
            if not scenario.expect.met_by(answer):
                raise RuntimeError(f"answered {answer.status} {answer.body[:200]!r}")
    if on_cpu is not None:
        for order in ("tottime", "cumulative"):
            pstats.Stats(on_cpu).sort_stats(order).print_stats(options.cprofile)
    if wall is not None:
        print(wall.output_text(unicode=True, color=False, show_all=False))
        if options.html:
            with open(options.html, "w", encoding="utf-8") as out:
                out.write(wall.output_html())
    print(
        f"{options.scenario} on {options.server}: median CPU "
        f"{statistics.median(cpu) * 1000:.2f} ms per request over {len(cpu)}"
        + (" (profiled: slower than unprofiled)" if wall or on_cpu else ""),
        file=sys.stderr,
    )
    return 0


def _compare(suite: OpenApiSuite, scenario: Any, count: int) -> int:
    """App and floor in ten interleaved batches on this noisy machine: medians and ratio."""
    senders = suite.senders()
    cpu: dict[str, list[float]] = {"app": [], "floor": []}
    for name in cpu:
        for request, _expect in scenario.prime(name) if scenario.prime else ():
            senders[name](request)
    batch = max(1, count // 10)
    for round_ in range(11):
        for name, send in senders.items():
            made = [scenario.make(name, f"c{round_}", i) for i in range(batch)]
            for request in made:
                start = time.process_time()
                answer = send(request)
                elapsed = time.process_time() - start
                if not scenario.expect.met_by(answer):
                    raise RuntimeError(f"{name} answered {answer.status} {answer.body[:200]!r}")
                if round_:  # the first round warms both up
                    cpu[name].append(elapsed)
    app, floor = (statistics.median(cpu[name]) * 1000 for name in ("app", "floor"))
    print(
        f"{scenario.key}: app {app:.2f} ms, floor {floor:.2f} ms of CPU per request "
        f"(median of {len(cpu['app'])} each): app = {app / floor:.2f} x floor"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a hot path's CPU goes: one scenario of the open-API suite, in-process, profiled.

    .venv/bin/python -m bench.profile order_new [--count 2000] [--server app] [--html F]

Prepares the suite's data (a small pool by default), primes replay scenarios, sends
``--count`` requests of the scenario through a Flask test client on the chosen server
(``app`` or ``floor``) under pyinstrument, and prints the median CPU per request and the
call tree. Use it before changing a hot path and again after: the bench's own numbers say
how fast, this says why.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time

from pyinstrument import Profiler

from bench.open_api.suite import OpenApiSuite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("scenario", help="a scenario key, e.g. order_new, redeem, key_replay")
    parser.add_argument("--count", type=int, default=2000, help="requests profiled")
    parser.add_argument("--server", choices=("app", "floor"), default="app")
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument("--no-profile", action="store_true", help="only the median CPU")
    parser.add_argument(
        "--cprofile", type=int, metavar="N",
        help="cProfile on CPU time instead: the N costliest functions by own time and by total",
    )
    options = parser.parse_args(argv)

    suite = OpenApiSuite(
        members=options.members, funded=options.members // 5, lots=options.members // 5,
        max_requests=0,
    )
    try:
        suite.prepare()
        by_key = {scenario.key: scenario for scenario in suite.scenarios()}
        scenario = by_key.get(options.scenario)
        if scenario is None:
            parser.error(f"no scenario {options.scenario!r}; one of {', '.join(by_key)}")
        send = suite.senders()[options.server]
        for request, expect in scenario.prime(options.server) if scenario.prime else ():
            answer = send(request)
            if not expect.met_by(answer):
                raise RuntimeError(f"priming answered {answer.status} {answer.body[:200]!r}")
        warm = [scenario.make(options.server, "warm", i) for i in range(200)]
        made = [scenario.make(options.server, "prof", i) for i in range(options.count)]
        for request in warm:
            send(request)
        cpu: list[float] = []
        profiler = Profiler(interval=0.0002) if not (options.no_profile or options.cprofile) else None
        on_cpu = cProfile.Profile(time.process_time) if options.cprofile else None
        if profiler:
            profiler.start()
        if on_cpu:
            on_cpu.enable()
        for request in made:
            start = time.process_time()
            answer = send(request)
            cpu.append(time.process_time() - start)
            if not scenario.expect.met_by(answer):
                raise RuntimeError(f"answered {answer.status} {answer.body[:200]!r}")
        if on_cpu:
            on_cpu.disable()
            for order in ("tottime", "cumulative"):
                pstats.Stats(on_cpu).sort_stats(order).print_stats(options.cprofile)
        if profiler:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            if options.html:
                with open(options.html, "w", encoding="utf-8") as out:
                    out.write(profiler.output_html())
        print(
            f"{options.scenario} on {options.server}: median CPU "
            f"{statistics.median(cpu) * 1000:.2f} ms per request over {len(cpu)}"
            + (" (profiled: slower than unprofiled)" if profiler or on_cpu else ""),
            file=sys.stderr,
        )
        return 0
    finally:
        suite.cleanup()


if __name__ == "__main__":
    sys.exit(main())

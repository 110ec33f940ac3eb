"""The results file of a run and the table copied into bench/README.md.

A number from this machine means little without the machine: it has 2 cores, shares
them with other work, and runs MariaDB, Redis, wrk and the servers together. So every
results file starts with the machine, the versions, the load average before and after and
the exact command, and states speeds as ratios within the run (to the bare endpoint and
to the floor measured in the same interleaved rounds), next to the costs that explain
them: statements, round trips and CPU per request, in-process and under load.
"""

from __future__ import annotations

import math
import os
import platform
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.harness.counting import COMMIT, OTHER, PING, ROLLBACK, SQL, Cost
from bench.harness.runner import TARGETS, Options, Outcome, Run, ScenarioResult

BENCH_DIR = Path(__file__).resolve().parents[1]
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
START, END = "<!-- latest-results:start -->", "<!-- latest-results:end -->"


def machine(versions: dict[str, str]) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
    total = re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE)
    return {
        "nproc": str(os.cpu_count()),
        "CPU": model.group(1).strip() if model else platform.processor() or "unknown",
        "RAM": f"{int(total.group(1)) / 1024 / 1024:.1f} GiB" if total else "unknown",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        **versions,
    }


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def _num(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(results: Sequence[ScenarioResult]) -> str:
    """Medians of the rounds; the app's ratio to what its scenario is judged against."""
    rows = []
    for result in results:
        scenario = result.scenario
        met = result.app_ratio >= scenario.target
        rows.append(
            [
                scenario.label,
                str(scenario.expect),
                *(_num(result.median_rps(target)) for target in TARGETS),
                _num(result.ratio("app", "bare"), 3),
                _num(result.ratio("app", "floor"), 2),
                _num(result.ratio("floor", "bare"), 3),
                f"≥ {scenario.target:g} × {scenario.versus}",
                f"{'yes' if met else '**no**'} ({result.app_ratio:.2f})",
            ]
        )
    header = ["scenario", "answer", "bare req/s", "floor req/s", "app req/s", "app ÷ bare"]
    header += ["app ÷ floor", "floor ÷ bare", "target", "met"]
    return _table(header, rows, right_from=2)


def _kinds(cost: Cost) -> str:
    kinds = cost.trace.kinds
    other = len(cost.trace.statements) - sum(kinds[k] for k in ("SELECT", "INSERT", "UPDATE"))
    return f"{kinds['SELECT']} / {kinds['INSERT']} / {kinds['UPDATE']} / {other}"


def cost_table(outcome: Outcome) -> str:
    """Per request: in-process CPU (median) and round trips; CPU under load (median of the
    rounds: the workers' CPU in the measured window / requests answered)."""
    rows = []
    bare = outcome.bare_cost
    bare_runs = [run for result in outcome.results for run in result.of("bare")]
    rows.append(_cost_row("GET /healthz", "bare", bare, bare_runs))
    for result in outcome.results:
        for name in ("floor", "app"):
            rows.append(_cost_row(result.scenario.key, name, result.costs[name], result.of(name)))
    header = ["scenario", "server", "CPU ms in-process", "CPU ms under load"]
    header += ["MariaDB CPU ms under load", "SQL statements", "SELECT / INSERT / UPDATE / other"]
    header += ["COMMIT", "ROLLBACK", "ping", "MariaDB round trips", "Redis round trips"]
    return _table(header, rows, right_from=2)


def _cost_row(label: str, name: str, cost: Cost, runs: Sequence[Run]) -> list[str]:
    def under_load(who: str) -> float:
        values = sorted(run.per_request_us(who) / 1000 for run in runs)
        return values[len(values) // 2] if values else math.nan

    trace = cost.trace
    return [
        label,
        name,
        _num(cost.cpu_ms, 2),
        _num(under_load("server"), 2),
        _num(under_load("mariadb"), 2),
        f"**{len(trace.statements)}**",
        _kinds(cost),
        str(trace.count(COMMIT)),
        str(trace.count(ROLLBACK)),
        str(trace.count(PING)),
        str(trace.round_trips),
        str(trace.redis),
    ]


def rounds_table(outcome: Outcome) -> str:
    rows = []
    for result in outcome.results:
        for run in result.runs:
            statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(run.wrk.statuses.items()))
            rows.append(
                [
                    result.scenario.key,
                    run.target,
                    str(run.round),
                    _num(run.wrk.rps),
                    _num(run.wrk.latency_ms["p50"], 1),
                    _num(run.wrk.latency_ms["p99"], 1),
                    statuses + (" (ran out)" if run.wrk.exhausted else ""),
                    f"{run.generated:,}",
                    *(_num(run.per_request_us(who)) for who in ("server", "mariadb", "redis")),
                    _num(run.per_request_us("wrk")),
                ]
            )
    header = ["scenario", "server", "round", "req/s", "p50 ms", "p99 ms", "answers"]
    header += ["requests made", "server µs/req", "MariaDB µs/req", "Redis µs/req", "wrk µs/req"]
    return _table(header, rows, right_from=2)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan


def wrk_section(outcome: Outcome, options: Options) -> str:
    """The measured case that wrk does not set the limit: the bare endpoint (the fastest
    server of the run) with wrk's thread count and with another, interleaved; and wrk's
    own CPU in every run."""
    lines, rates = [], {}
    for threads, runs in sorted(outcome.proof.items()):
        rates[threads] = _median([run.wrk.rps for run in runs])
        core = _median([run.cpu["wrk"] / run.wrk.duration * 100 for run in runs])
        lines.append(
            f"- bare `GET /healthz`, wrk `-t{threads} -c{options.connections}`, "
            f"{len(runs)} runs: median {rates[threads]:,.0f} req/s "
            f"({', '.join(f'{run.wrk.rps:,.0f}' for run in runs)}); wrk used {core:.0f}% of "
            f"one core ({_median([run.per_request_us('wrk') for run in runs]):.1f} µs per "
            f"request), the app's workers "
            f"{_median([run.per_request_us('server') for run in runs]):.0f} µs per request."
        )
    if len(rates) == 2:
        fewer, more = min(rates), max(rates)
        gain = rates[more] / rates[fewer]
        if gain > 1.1:
            verdict = f"more: with {fewer} thread(s) wrk was part of the limit."
        else:
            verdict = f"no more, so wrk with {fewer} thread(s) is not what limits the fastest "
            verdict += "server of the run"
            verdict += (
                " (fewer, in fact: the extra thread competes with the servers for the cores)."
                if gain < 0.9
                else "."
            )
        lines.append(f"- {more} wrk threads answered {gain:.2f}× the rate of {fewer}: {verdict}")
    all_runs = [run for result in outcome.results for run in result.runs]
    if all_runs:
        shares = sorted(run.cpu["wrk"] / max(run.cpu["server"], 1e-9) for run in all_runs)
        busiest = max(all_runs, key=lambda run: run.cpu["wrk"] / run.wrk.duration)
        lines.append(
            f"- Over all {len(all_runs)} measured runs wrk's CPU was a median "
            f"{shares[len(shares) // 2]:.0%} of the server workers' CPU (at most "
            f"{shares[-1]:.0%}); its busiest run used "
            f"{busiest.cpu['wrk'] / busiest.wrk.duration:.0%} of one core."
        )
    return "\n".join(lines)


def statement_lists(outcome: Outcome) -> str:
    blocks = []
    for result in outcome.results:
        for name in ("app", "floor"):
            cost = result.costs[name]
            items = []
            for n, (kind, text) in enumerate(cost.trace.calls, 1):
                plain = kind == SQL
                items.append(f"{n}. `{text}`" if plain else f"{n}. *{text}*")
            if cost.trace.redis:
                items.append(f"(and {cost.trace.redis} Redis round trip(s))")
            title = f"**{result.scenario.key}, {name}** ({cost.trace.round_trips} round trips)"
            blocks.append(title + "\n\n" + "\n".join(items))
    return "\n\n".join(blocks)


def problems(outcome: Outcome) -> str:
    found = [f"- {r.scenario.key}: {p}" for r in outcome.results for p in r.problems]
    if not outcome.invariants.holds:
        found.append(f"- invariants: {outcome.invariants.summary()}")
    return "\n".join(found) or "None: every answer was the expected one, no file ran out."


def readme_block(path: Path, outcome: Outcome) -> str:
    return (
        f"{START}\nFrom [`results/{path.name}`](results/{path.name}) (medians of the rounds; "
        "CPU and round trips per request):\n\n"
        f"{summary_table(outcome.results)}\n\n{cost_table(outcome)}\n{END}"
    )


def update_readme(path: Path, outcome: Outcome) -> None:
    """Copy the newest tables between the README's markers, if it has them."""
    if not README.exists():
        return
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return
    before, rest = text.split(START, 1)
    README.write_text(before + readme_block(path, outcome) + rest.split(END, 1)[1], "utf-8")


def kinds_note() -> str:
    return (
        f"Round trips count everything sent to MariaDB: SQL statements, {COMMIT}, {ROLLBACK}, "
        f"{PING} (the pool's pre-ping) and any {OTHER} command, counted on the wire "
        "(`pymysql.Connection._execute_command`), so the app's ORM and the floor's cursor "
        "are counted alike; Redis round trips are `send_packed_command` calls (a pipeline "
        "is one)."
    )


def statuses_seen(outcome: Outcome) -> Counter[int]:
    seen: Counter[int] = Counter()
    for result in outcome.results:
        for run in result.runs:
            seen.update(run.wrk.statuses)
    return seen

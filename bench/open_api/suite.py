"""The open-API suite: order ingestion and till redemption against their floor.

What the harness needs from a hot path, for ``POST /open/v1/orders`` and
``POST /open/v1/points/redeem``: the data (``data``), the two servers (the app as shipped,
``wsgi:app``, and ``bench.floors.open_api``), the scenarios (``scenarios``), the row check
(``check``), in-process senders and the points invariants.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gunicorn

from bench.floors.kit import FloorConfig
from bench.floors.open_api import create_app as create_floor
from bench.harness.database import Invariants, Scratch, points_invariants
from bench.harness.runner import Scenario, ScenarioResult, Suite
from bench.harness.server import Answer, Server, ServerSpec
from bench.harness.wrk import HttpRequest
from bench.open_api import check, data
from bench.open_api.scenarios import Requests, scenarios

SECRET_KEY = "bench-only-secret-key-" + "x" * 24  # the app's and the floor's: decrypts secrets
SKEW_SECONDS = 300  # the app's default OPEN_API_CLOCK_SKEW_SECONDS


class OpenApiSuite(Suite):
    name = "open-api"
    title = "Open API benchmark: order ingestion and till redemption"
    signing_window = SKEW_SECONDS

    def __init__(self, *, members: int, funded: int, lots: int, max_requests: int) -> None:
        self.members, self.funded, self.lots = members, funded, lots
        self.scratch = Scratch()
        self.run = secrets.token_hex(4)
        self.env = self.scratch.environment(
            SECRET_KEY=SECRET_KEY,
            OPEN_API_CLOCK_SKEW_SECONDS=str(SKEW_SECONDS),
            GUNICORN_MAX_REQUESTS=str(max_requests),
        )
        self.max_requests = max_requests
        self.app: Any = None
        self.fixture: data.Fixture | None = None
        self.requests: Requests | None = None
        self._scenarios: list[Scenario] = []

    def prepare(self) -> dict[str, str]:
        version = self.scratch.create()
        self.app = data.build_app(self.scratch, self.env)
        self.fixture = data.prepare(
            self.app, self.scratch, members=self.members, funded=self.funded, lots=self.lots
        )
        self.requests = Requests(self.fixture, self.run)
        self._check_signer()
        self._scenarios = scenarios(self.requests)
        redis_version = str(self.scratch.redis().info("server")["redis_version"])
        return {"MariaDB": version, "Redis": redis_version, "gunicorn": gunicorn.__version__}

    def _check_signer(self) -> None:
        """The bench's signer must agree with the app's, or every request is a 401."""
        from app.partners.rules import sign
        from bench.floors import protocol

        ours = protocol.sign("secret", "POST", "/open/v1/orders", "1700000000", "n", b"{}")
        theirs = sign("secret", "POST", "/open/v1/orders", "1700000000", "n", b"{}")
        if ours != theirs:
            raise RuntimeError("bench.floors.protocol.sign disagrees with app.partners.rules")

    def servers(self) -> Sequence[ServerSpec]:
        return [
            ServerSpec("app", "wsgi:app", self.env),
            ServerSpec("floor", "bench.floors.open_api:create_app()", self.env),
        ]

    def scenarios(self) -> Sequence[Scenario]:
        return self._scenarios

    def check(self, servers: Mapping[str, Server]) -> list[str]:
        assert self.requests is not None and self.fixture is not None
        with self.scratch.cursor() as cursor:
            return check.run_check(self.requests, servers, cursor, self.fixture.check_members)

    def senders(self) -> Mapping[str, Callable[[HttpRequest], Answer]]:
        app_client = self.app.test_client()
        floor_client = create_floor(FloorConfig.from_env(self.env)).test_client()
        sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - as long as the senders

        def sender(client: Any, quiet: bool) -> Callable[[HttpRequest], Answer]:
            def send(request: HttpRequest) -> Answer:
                quieted = contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext()
                with quieted:
                    response = client.open(
                        request.path,
                        method=request.method,
                        headers=list(request.headers),
                        data=request.body,
                    )
                return Answer(response.status_code, dict(response.headers), response.data)

            return send

        return {"app": sender(app_client, False), "floor": sender(floor_client, True)}

    def invariants(self) -> Invariants:
        assert self.fixture is not None
        with self.scratch.cursor() as cursor:
            return points_invariants(cursor, entries_after=self.fixture.entries_after)

    def cleanup(self) -> None:
        try:
            if self.app is not None:
                self.app.extensions["huiyuan"].engine.dispose()
        finally:
            self.scratch.drop()

    def reading(self, results: Sequence[ScenarioResult]) -> list[str]:
        by_key = {result.scenario.key: result for result in results}
        bares = [result.median_rps("bare") for result in results]
        lines = [
            f"The bare endpoint's medians ranged from {min(bares):,.0f} to {max(bares):,.0f} "
            "req/s from one scenario's rounds to the next: the noise of this shared machine. "
            "Compare the ratios within a scenario, never absolute numbers across runs."
        ]
        for result in results:
            app, floor = result.costs["app"], result.costs["floor"]
            lines.append(
                f"`{result.scenario.key}`: the app at {result.app_ratio:.2f} × "
                f"{result.scenario.versus} (target {result.scenario.target:g}); in-process "
                f"{app.cpu_ms:.2f} ms of CPU and {app.trace.round_trips} MariaDB round trips "
                f"against the floor's {floor.cpu_ms:.2f} ms and {floor.trace.round_trips} "
                f"({app.cpu_ms / floor.cpu_ms:.1f}× the CPU)."
            )
        one, many = by_key.get("redeem"), by_key.get("redeem_100_lots")
        if one is not None and many is not None:
            for name in ("app", "floor"):
                lines.append(
                    f"100 open lots against 1 ({name}): {many.median_rps(name):,.0f} "
                    f"against {one.median_rps(name):,.0f} req/s "
                    f"({many.median_rps(name) / one.median_rps(name):.2f}×), "
                    f"{len(many.costs[name].trace.statements)} against "
                    f"{len(one.costs[name].trace.statements)} statements, "
                    f"{many.costs[name].cpu_ms:.2f} against {one.costs[name].cpu_ms:.2f} ms "
                    "of CPU in-process."
                )
        return lines

    def parameters(self) -> dict[str, str]:
        fixture = self.fixture
        counts = (
            f"{len(fixture.funded_cards):,} funded (one lot of {data.FUNDED_POINTS:,} points), "
            f"{len(fixture.lots_cards):,} with {data.LOTS} open lots of {data.LOT_POINTS} "
            f"points, {len(fixture.order_cards):,} in the order pool (empty accounts), "
            f"{data.CHECK_MEMBERS} for the row check"
            if fixture
            else ""
        )
        return {
            "data": f"a fresh database `{self.scratch.database}` (migrated), Redis db "
            f"{self.scratch.redis_db}; {self.members:,} demo members: {counts}; tiers member / "
            "silver (2,000 yuan, 120 %) / gold (10,000 yuan, 150 %); points rules: 1 point "
            "per yuan, 200 % in the birthday month; a trusted partner",
            "environment": "development configuration (HUIYUAN_ENV unset), JSON logs to a "
            f"file, GUNICORN_MAX_REQUESTS={self.max_requests} (shipped: 10,000; at these "
            "rates a worker would be replaced every few seconds, mid-measurement)",
            "signing": "X-App-Key / X-Timestamp / X-Nonce / X-Signature on every open-API "
            f"request, a unique nonce each, timestamps within the {SKEW_SECONDS} s window "
            "for the whole run (checked before each measured run)",
        }

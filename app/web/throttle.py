"""Operator log-in throttling with `limits` over the app's Redis, in a moving window:
attempts per account (ADMIN_LOGIN_LIMIT_PER_ACCOUNT, default 5/minute; a successful
log-in starts the account's count again) and per source address
(ADMIN_LOGIN_LIMIT_PER_ADDRESS, default 20/minute). Each attempt is counted atomically in
Redis before its password is checked, so a burst of parallel guesses gets no more than the
limit; over either limit, log-in answers 429 `rate_limited` with `Retry-After`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from app.errors import RateLimited
from app.web.deps import container

_EXTENSION = "huiyuan.login_throttle"


@dataclass(frozen=True)
class LoginThrottle:
    limiter: MovingWindowRateLimiter
    per_account: RateLimitItem
    per_address: RateLimitItem

    def _checks(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        return [
            (self.per_account, "admin-login:account", username.casefold()[:64]),
            (self.per_address, "admin-login:address", address),
        ]

    def admit(self, *, username: str, address: str) -> None:
        """Count this attempt, or refuse it (RateLimited) if it is over either limit."""
        waits = [
            self.limiter.get_window_stats(limit, scope, key).reset_time - time.time()
            for limit, scope, key in self._checks(username, address)
            if not self.limiter.hit(limit, scope, key)
        ]
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            raise RateLimited(
                "Too many log-in attempts; try again later.", retry_after_seconds=retry_after
            )

    def succeeded(self, *, username: str) -> None:
        """The account's count starts again; the address keeps its own."""
        self.limiter.clear(self.per_account, "admin-login:account", username.casefold()[:64])


def login_throttle() -> LoginThrottle:
    """One per app, sharing the app's Redis connection pool (and so its timeouts)."""
    throttle: LoginThrottle | None = current_app.extensions.get(_EXTENSION)
    if throttle is None:
        deps = container()
        storage = RedisStorage("redis://", connection_pool=deps.redis.connection_pool)
        throttle = LoginThrottle(
            limiter=MovingWindowRateLimiter(storage),
            per_account=parse(deps.config.admin_login_limit_per_account),
            per_address=parse(deps.config.admin_login_limit_per_address),
        )
        current_app.extensions[_EXTENSION] = throttle
    return throttle

"""Each open-API nonce is accepted once per partner within the timestamp window.

Nonces live in one Redis sorted set per partner, scored by their timestamp:
ZADD NX answers atomically whether the nonce is new, and the purge job trims
entries older than the window (the key's TTL is a backstop for idle partners).
"""

from __future__ import annotations

from typing import Any

KEY_PREFIX = "open:nonces:"


def claim_nonce(redis: Any, *, app_key: str, nonce: str, timestamp: int, window: int) -> bool:
    key = KEY_PREFIX + app_key
    pipe = redis.pipeline()
    pipe.zadd(key, {nonce: timestamp}, nx=True)
    pipe.expire(key, window * 2)
    added, _ = pipe.execute()
    return bool(added)


def newest_nonce_timestamp(redis: Any, *, app_key: str) -> int | None:
    """The X-Timestamp of the partner's newest accepted request still in its nonce set (kept
    for about twice the window), or None: a look-back that costs the hot path nothing."""
    newest = redis.zrevrange(KEY_PREFIX + app_key, 0, 0, withscores=True)
    return int(newest[0][1]) if newest else None


def purge_expired_nonces(redis: Any, *, now_ts: int, window: int) -> int:
    removed = 0
    for key in redis.scan_iter(match=KEY_PREFIX + "*", count=500):
        removed += int(redis.zremrangebyscore(key, "-inf", now_ts - window - 1))
    return removed

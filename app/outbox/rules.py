"""When a failed message is tried again, and when it is given up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DrainPolicy:
    batch_size: int = 100
    lease_seconds: int = 120  # longer than a batch's handlers take; a dead worker's lease expires
    max_attempts: int = 8  # then the message is dead-lettered
    backoff_seconds: int = 30  # the first retry's delay; doubled for each further attempt
    backoff_max_seconds: int = 6 * 3600
    max_batches: int = 20  # per drain run: the job returns and the next firing goes on


def backoff_seconds(attempts: int, policy: DrainPolicy) -> int:
    """Exponential: base, 2 x base, 4 x base, ... capped."""
    exponent = max(0, attempts - 1)
    return int(min(policy.backoff_max_seconds, policy.backoff_seconds * 2 ** min(exponent, 30)))


def is_exhausted(attempts: int, policy: DrainPolicy) -> bool:
    return attempts >= policy.max_attempts

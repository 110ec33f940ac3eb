"""Where a tier's value comes from: the metric sources the tier policy names.

The facts behind a metric (spend, points earned less what refunds took back) belong to the
contexts above ``tiers`` (orders, points); they provide a source per metric and the
composition root (``app.wiring``) registers it, so ``tiers`` imports none of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session


class MetricSource(Protocol):
    def __call__(
        self, session: Session, start: datetime, end: datetime, member_ids: list[int] | None
    ) -> dict[int, int]:
        """Each member's value over [start, end) (all members when ``member_ids`` is None)."""
        ...


class UnknownMetric(LookupError):
    """The policy names a metric no context provides (a wiring mistake, not bad input)."""


class MetricRegistry:
    def __init__(self) -> None:
        self._sources: dict[str, MetricSource] = {}

    def register(self, metric: str, source: MetricSource) -> None:
        self._sources[metric] = source

    def source(self, metric: str) -> MetricSource:
        try:
            return self._sources[metric]
        except KeyError:
            raise UnknownMetric(f"no source registered for the tier metric {metric!r}") from None

    def names(self) -> frozenset[str]:
        return frozenset(self._sources)


METRICS = MetricRegistry()

"""Where a tier's value comes from: the metric sources the tier policy names.

The facts behind a metric (spend, points earned less what refunds took back) belong to the
contexts above ``tiers`` (orders, points); they provide a source per metric and the
composition root (``app.wiring``) registers it, so ``tiers`` imports none of them.

A source answers every member's value over a window (assessment, simulation, the card)
and, where the metric allows, one member's value as a scalar subquery (which the order
intake reads in the statement that locks the member) and what one new order adds to it (so
an order knows the tier it lifts its member to before it is written): the hottest path
then needs no read of its own for the tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session


class MetricValues(Protocol):
    def __call__(
        self, session: Session, start: datetime, end: datetime, member_ids: list[int] | None
    ) -> dict[int, int]:
        """Each member's value over [start, end) (all members when ``member_ids`` is None)."""
        ...


class OneMemberValue(Protocol):
    def __call__(self, member_id: Any, start: Any, end: Any) -> Any:
        """The value of the member ``member_id`` names, over [start, end) (values or bound
        parameters), as a scalar subquery correlated to it."""
        ...


@dataclass(frozen=True)
class OrderFacts:
    """What a new order brings to its member's metrics."""

    amount_cents: int
    paid_at: datetime
    points_earned: int


class GainedByOrder(Protocol):
    def __call__(self, order: OrderFacts, start: datetime, end: datetime) -> int:
        """What the order adds to its member's value over [start, end)."""
        ...


@dataclass(frozen=True)
class MetricSource:
    """``values`` always; ``one_member`` and ``gained_by_order`` together when the value
    after an order is the value before plus what the order adds (spend is; points earned
    net of refunds, floored at zero, is not: it is read again once the order is in)."""

    values: MetricValues
    one_member: OneMemberValue | None = None
    gained_by_order: GainedByOrder | None = None


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

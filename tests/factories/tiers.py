"""Tiers, and the three-step ladder most tier tests use."""

from __future__ import annotations

import factory

from app.tiers.models import Tier
from tests.factories.base import BaseFactory


class TierFactory(BaseFactory):
    class Meta:
        model = Tier

    code = factory.Sequence(lambda n: f"tier{n}")
    name = factory.LazyAttribute(lambda tier: tier.code.title())
    rank = factory.Sequence(lambda n: n + 1)
    threshold = 0
    benefits = factory.LazyFunction(lambda: {"points_multiplier_pct": 100})


# Thresholds are spend in cents over the window; the last figure is the points multiplier.
LADDER = (
    ("basic", "普卡", 1, 0, 100),
    ("gold", "金卡", 2, 100_000, 150),
    ("diamond", "钻石", 3, 500_000, 200),
)


def make_ladder() -> list[Tier]:
    return [
        TierFactory(
            code=code,
            name=name,
            rank=rank,
            threshold=threshold,
            benefits={"points_multiplier_pct": pct, "discount_pct": 100},
        )
        for code, name, rank, threshold, pct in LADDER
    ]

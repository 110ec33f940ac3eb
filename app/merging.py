"""What a member merge moves besides identities: one step per context that owns member data.

Each step moves the loser's data to the survivor inside the merge transaction and
answers what it moved (``{"orders": 3}``), which the merge log records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.checkins.operations import move_checkins
from app.orders.operations import move_orders
from app.points.operations import move_points
from app.tiers.operations import move_tier
from app.timeline.operations import move_timeline

MergeStep = Callable[[Session, int, int], dict[str, Any]]

# Points before tier: the tier step reads nothing the points step changes, but a fixed
# order keeps row locks taken in the same order by every merge.
MERGE_STEPS: tuple[MergeStep, ...] = (
    move_points,
    move_orders,
    move_tier,
    move_checkins,
    move_timeline,
)

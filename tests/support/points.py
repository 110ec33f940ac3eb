"""Points written at the operations level, each step in a unit of work of its own, and the
operator the points tests name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.admins.operations import Actor
from app.points import operations as points
from app.points.models import PointsEntry
from app.uow import UnitOfWork

OPERATOR = Actor(type="admin", name="ops-li", id=7)


def in_tx(uow: UnitOfWork, work: Callable[[Session], Any]) -> Any:
    """Run an operations-level step in its own committed unit of work."""
    with uow:
        answer = work(uow.session)
        uow.commit()
        return answer


def earn(uow: UnitOfWork, member_id: int, amount: int, **kw: Any) -> points.EarnResult:
    return in_tx(
        uow,
        lambda s: points.earn(
            s, member_id=member_id, points=amount, reason_code="order", note="test earn", **kw
        ),
    )


def spend(uow: UnitOfWork, member_id: int, amount: int, **kw: Any) -> PointsEntry:
    return in_tx(
        uow,
        lambda s: points.spend(
            s, member_id=member_id, points=amount, reason_code="redemption", note="test spend", **kw
        ),
    )

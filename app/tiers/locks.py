"""Every row lock of the tiers context: members' tier rows, after their points accounts
and orders (``app.locks``), several at once in ascending member id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.tiers.models import MemberTier


def lock_member_tiers(session: Session, member_ids: Sequence[int]) -> list[MemberTier]:
    """The members' tier rows (those that exist), locked until the transaction ends."""
    return list(
        session.scalars(
            select(MemberTier)
            .where(MemberTier.member_id.in_(sorted(set(member_ids))))
            .order_by(MemberTier.member_id)
            .with_for_update(of=MemberTier)
        )
    )

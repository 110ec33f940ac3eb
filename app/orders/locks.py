"""Every row lock of the orders context: an order row, taken after the member's points
account (``app.locks``); and the intake of the till's money paths, which locks the member
and their account (and reads what the use case needs) in one statement."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Row, outerjoin, select
from sqlalchemy.orm import Session, aliased, load_only

from app.members import operations as members
from app.members.models import Member
from app.orders.models import Order
from app.points.models import PointsAccount, PointsLot
from app.tiers.models import MemberTier


def lock_order(
    session: Session, *, partner_id: int, channel: str, external_id: str
) -> Order | None:
    """The partner's order under its external id, locked until the transaction ends."""
    return session.scalars(
        select(Order)
        .where(
            Order.partner_id == partner_id,
            Order.channel == channel,
            Order.external_id == external_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def lock_intake(
    session: Session,
    *,
    member: Any,
    reads: Hashable,
    build_reads: Callable[[], Mapping[str, Any]],
    params: Mapping[str, Any],
) -> Row[Any] | None:
    """The intake of an order or a till spend, in one statement: the member ``member`` (a
    ``members.operations.Reference``) names, their row and their points account locked
    together (members before points, as ``app.locks`` orders them), their tier row, the
    soonest of their open lots (locked too), and the use case's own reads (scalar
    subqueries by name, from ``build_reads``: the tier metric, the record of the request's
    key), whose bound values are in ``params``. None when no member matches. The row's
    fields: ``Member``, ``PointsAccount``, ``MemberTier``, ``soonest_id``,
    ``soonest_remaining``, ``soonest_expiry`` and each read.

    The statement is built once per (reference shape, ``reads``) and kept: building it is
    most of the cost of a small spend."""
    query = _intake_query(member.shape, reads, build_reads)
    return session.execute(query, {**member.params, **params}).one_or_none()


_INTAKE_QUERIES: dict[tuple[str, Hashable], Any] = {}

# What the common path reads of the member: PyMySQL parses every column's description of
# every result in Python, so the intake names only these (anything else loads on use).
INTAKE_MEMBER_COLUMNS = (Member.id, Member.merged_into_id, Member.birthday)


def _intake_query(shape: str, reads: Hashable, build_reads: Callable[[], Mapping[str, Any]]) -> Any:
    key = (shape, reads)
    query = _INTAKE_QUERIES.get(key)
    if query is None:
        query = _INTAKE_QUERIES[key] = _build_intake(
            members.reference_condition(shape), build_reads()
        )
    return query


def _build_intake(member: ColumnElement[bool], reads: Mapping[str, Any]) -> Any:
    # The member's soonest open lot, joined: a spend it covers reads no other lot.
    soonest_id = (
        select(PointsLot.id)
        .where(PointsLot.member_id == Member.id, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at, PointsLot.id)
        .limit(1)
        .correlate(Member)
        .scalar_subquery()
    )
    lot = aliased(PointsLot, name="soonest_lot")
    joined = (
        outerjoin(Member, PointsAccount, PointsAccount.member_id == Member.id)
        .outerjoin(MemberTier, MemberTier.member_id == Member.id)
        # ``member_id`` names the join for SQLAlchemy's from-linter; MariaDB still finds the
        # lot by its key (EXPLAIN: const on PRIMARY, the subquery a range stopped by LIMIT).
        .outerjoin(lot, (lot.member_id == Member.id) & (lot.id == soonest_id))
    )
    return (
        select(
            Member,
            PointsAccount,
            MemberTier,
            lot.id.label("soonest_id"),
            lot.remaining.label("soonest_remaining"),
            lot.expires_at.label("soonest_expiry"),
            *(read.label(name) for name, read in reads.items()),
        )
        .select_from(joined)
        .where(member)
        .options(load_only(*INTAKE_MEMBER_COLUMNS))
        .with_for_update()
        .execution_options(populate_existing=True)
    )

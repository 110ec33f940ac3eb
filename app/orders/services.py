"""Orders and refunds from store systems; till redemption of points.

Each is idempotent by its external id: the unique key decides, so concurrent duplicates
record one order and one earn, and every duplicate gets the first answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.errors import Conflict, IdempotencyMismatch, NotFound, ValidationFailed
from app.members import operations as members
from app.members import rules as member_rules
from app.members.models import Member
from app.orders.models import Order, OrderItem, Refund
from app.points import operations as points
from app.points import rules as points_rules
from app.retry import run_retrying_races
from app.tiers import operations as tiers
from app.uow import UnitOfWork

CREATABLE_REFERENCES = ("phone", "unionid", "channel_member_id")


@dataclass(frozen=True)
class MemberRef:
    kind: str  # card_no | phone | unionid | qr_payload | channel_member_id
    value: str


@dataclass(frozen=True)
class OrderOutcome:
    order_id: int
    member_id: int
    points_earned: int
    tier: dict[str, Any] | None
    replayed: bool


def _member_for(
    session: Session, ref: MemberRef, *, channel: str, secret: str, create: bool
) -> Member:
    try:
        member = members.find_by_reference(
            session, kind=ref.kind, value=ref.value, channel=channel, secret=secret
        )
    except member_rules.QrExpired:
        raise Conflict("The card QR code has expired.", reason="qr_expired") from None
    except member_rules.QrInvalid:
        raise ValidationFailed(
            "The card QR code is not valid.", field="member.qr_payload"
        ) from None
    if member is not None:
        return member
    if create and ref.kind in CREATABLE_REFERENCES:
        created = members.create_for_reference(
            session, kind=ref.kind, value=ref.value, channel=channel
        )
        points.grant_signup_bonus(session, created.id)
        return created
    raise NotFound("No member matches.", field=f"member.{ref.kind}")


def _outcome(order: Order, replayed: bool) -> OrderOutcome:
    return OrderOutcome(order.id, order.member_id, order.points_earned, order.tier_after, replayed)


def _existing_order(session: Session, channel: str, external_id: str) -> Order | None:
    return session.scalars(
        select(Order).where(Order.channel == channel, Order.external_id == external_id)
    ).one_or_none()


def record_order(
    *,
    uow: UnitOfWork,
    secret: str,
    channel: str,
    external_id: str,
    member: MemberRef,
    paid_at: datetime,
    amount_cents: int,
    items: list[dict[str, Any]],
    store_code: str | None = None,
    coupon_codes: list[str] | None = None,
) -> OrderOutcome:
    """Record a paid order once per (channel, external_id); it earns points at the
    member's current tier multiplier and lifts the tier at once if it crosses a threshold."""

    def attempt() -> OrderOutcome:
        with uow:
            session = uow.session
            existing = _existing_order(session, channel, external_id)
            if existing is not None:
                return _outcome(existing, replayed=True)
            owner = _member_for(session, member, channel=channel, secret=secret, create=True)
            order = Order(
                channel=channel,
                external_id=external_id,
                member_id=owner.id,
                store_code=store_code,
                paid_at=paid_at,
                amount_cents=amount_cents,
                refunded_cents=0,
                points_earned=0,
                points_reversed=0,
                coupon_codes=coupon_codes,
            )
            session.add(order)
            session.flush()  # the unique (channel, external_id) decides between duplicates
            session.add_all(OrderItem(order_id=order.id, **item) for item in items)
            earned = _earn_for_order(session, owner, order)
            tier = tiers.upgrade_after_order(session, member_id=owner.id, order_id=order.id)
            # Both set last, so the order row is updated once, at commit.
            order.points_earned, order.tier_after = earned, tiers.tier_view(tier)
            uow.commit()
            return _outcome(order, replayed=False)

    return run_retrying_races(attempt)


def _earn_for_order(session: Session, owner: Member, order: Order) -> int:
    rules = points.points_rules(session)
    birthday_pct = 100
    if owner.birthday and owner.birthday.month == clock.to_local(order.paid_at).month:
        birthday_pct = int(rules["birthday_month_multiplier_pct"])
    earned = points_rules.points_for_amount(
        order.amount_cents,
        points_per_yuan=int(rules["points_per_yuan"]),
        tier_pct=tiers.multiplier_pct(session, owner.id),
        birthday_pct=birthday_pct,
    )
    if earned > 0:
        points.earn(
            session,
            member_id=owner.id,
            points=earned,
            order_id=order.id,
            reason_code="order",
            note=f"order {order.channel}/{order.external_id}",
            idempotency_key=f"order:{order.id}",
        )
    return earned


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: int
    points_reversed: int
    debt_added: int
    replayed: bool


def record_refund(
    *, uow: UnitOfWork, channel: str, external_order_id: str, external_id: str, amount_cents: int
) -> RefundOutcome:
    """Take back the points an order earned, in proportion to the amount refunded. What the
    member already spent becomes a debt; the tier is not lowered until assessment."""

    def attempt() -> RefundOutcome:
        with uow:
            session = uow.session
            earlier = session.scalars(
                select(Refund).where(Refund.channel == channel, Refund.external_id == external_id)
            ).one_or_none()
            if earlier is not None:
                if earlier.amount_cents != amount_cents or earlier.order_id != _order_id(
                    session, channel, external_order_id
                ):
                    raise IdempotencyMismatch(
                        "This refund external_id was used for another refund."
                    )
                return RefundOutcome(earlier.id, earlier.points_reversed, earlier.debt_added, True)
            order = session.scalars(
                select(Order)
                .where(Order.channel == channel, Order.external_id == external_order_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one_or_none()
            if order is None:
                raise NotFound("No such order on this channel.", field="external_order_id")
            if order.refunded_cents + amount_cents > order.amount_cents:
                raise Conflict(
                    "The refund exceeds what is left of the order.",
                    refundable_cents=order.amount_cents - order.refunded_cents,
                )
            due = points_rules.reversal_for_refund(
                points_earned=order.points_earned,
                order_amount_cents=order.amount_cents,
                refunded_before_cents=order.refunded_cents,
                refund_cents=amount_cents,
            )
            result = points.reverse(
                session,
                member_id=order.member_id,
                points=due,
                order_id=order.id,
                still_reversible=order.points_earned - order.points_reversed,
                note=f"refund {channel}/{external_id} of order {external_order_id}",
            )
            taken = result.reversed_points + result.debt_added  # less than due if some expired
            order.refunded_cents += amount_cents
            order.points_reversed += taken
            refund = Refund(
                order_id=order.id,
                channel=channel,
                external_id=external_id,
                amount_cents=amount_cents,
                points_reversed=taken,
                debt_added=result.debt_added,
            )
            session.add(refund)
            session.flush()
            uow.commit()
            return RefundOutcome(refund.id, taken, result.debt_added, False)

    return run_retrying_races(attempt)


def _order_id(session: Session, channel: str, external_order_id: str) -> int | None:
    order = _existing_order(session, channel, external_order_id)
    return order.id if order is not None else None


@dataclass(frozen=True)
class RedeemOutcome:
    member_id: int
    balance: int


def redeem_at_till(
    *,
    uow: UnitOfWork,
    secret: str,
    partner_key: str,
    member: MemberRef,
    channel: str = "",
    points_to_spend: int,
    external_id: str,
    store_code: str | None = None,
) -> RedeemOutcome:
    """Spend points at the till, once per (partner, external_id): a retry answers the
    balance the first spend left. InsufficientPoints when the balance is short."""

    key = f"till:{partner_key}:{external_id}"

    def attempt() -> RedeemOutcome:
        with uow:
            session = uow.session
            earlier = points.entry_by_key(session, key)
            if earlier is not None:  # a retry: answer it even if the card QR has expired since
                if earlier.delta != -points_to_spend:
                    raise IdempotencyMismatch("This external_id was used for another redemption.")
                return RedeemOutcome(earlier.member_id, earlier.balance_after)
            owner = _member_for(session, member, channel=channel, secret=secret, create=False)
            where = f" at {store_code}" if store_code else ""
            entry = points.spend(
                session,
                member_id=owner.id,
                points=points_to_spend,
                reason_code="redemption",
                note=f"till redemption {external_id}{where}",
                idempotency_key=key,
            )
            uow.commit()
            return RedeemOutcome(owner.id, entry.balance_after)

    return run_retrying_races(attempt)

"""Orders and refunds from store systems; till redemption of points.

Each is recorded with the partner that sent it and is idempotent by the partner's own
external id (app.external_ids): the same request again gets the first answer, another
request under a used id is refused, and concurrent duplicates record one order, one earn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.external_ids import replay as external
from app.members import operations as members
from app.members import rules as member_rules
from app.members.models import Member, ReferenceKind
from app.orders import locks as order_locks
from app.orders.models import Order, OrderItem, Refund
from app.outbox.events import Event, Topic
from app.outbox.operations import emit
from app.points import operations as points
from app.points import rules as points_rules
from app.retry import RaceLost
from app.tiers import operations as tiers
from app.uow import UnitOfWork

CREATABLE_REFERENCES = (ReferenceKind.PHONE, ReferenceKind.UNIONID, ReferenceKind.CHANNEL_MEMBER_ID)


class Sender(Protocol):
    """The partner a request comes from (app.partners.services.PartnerPrincipal)."""

    @property
    def id(self) -> int: ...

    @property
    def trusted(self) -> bool: ...

    def may_use_channel(self, channel: str) -> bool: ...


@dataclass(frozen=True)
class MemberRef:
    kind: ReferenceKind
    value: str


@dataclass(frozen=True)
class OrderOutcome:
    order_id: int
    member_id: int
    points_earned: int
    tier: dict[str, Any] | None
    replayed: bool


def _member_for(
    session: Session, ref: MemberRef, *, channel: str, secret: str | Sequence[str], create: bool
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


def _outcome(answered: external.Answered) -> OrderOutcome:
    answer = answered.answer
    return OrderOutcome(
        answer["order_id"],
        answer["member_id"],
        answer["points_earned"],
        answer["tier"],
        answered.replayed,
    )


def _require_channel(sender: Sender, channel: str) -> None:
    if not sender.may_use_channel(channel):
        raise Forbidden(
            "This partner may not use this channel.", reason="channel_not_allowed", channel=channel
        )


def _existing_order(
    session: Session, partner_id: int, channel: str, external_id: str
) -> Order | None:
    return session.scalars(
        select(Order).where(
            Order.partner_id == partner_id,
            Order.channel == channel,
            Order.external_id == external_id,
        )
    ).one_or_none()


def _locked_order(session: Session, partner_id: int, channel: str, external_id: str) -> Order:
    """The order, locked in the global order (app.locks): its member's points account
    first, then the order row."""
    found = _existing_order(session, partner_id, channel, external_id)
    if found is None:
        raise NotFound("No such order on this channel.", field="external_order_id")
    points.lock_account(session, found.member_id)  # a merge meanwhile: MergedMeanwhile, retry
    order = order_locks.lock_order(
        session, partner_id=partner_id, channel=channel, external_id=external_id
    )
    if order is None or order.member_id != found.member_id:
        raise RaceLost(f"order {found.id} moved to another member meanwhile")
    return order


def _ref_fields(ref: MemberRef) -> dict[str, str]:
    return {ref.kind: ref.value}


def record_order(
    *,
    uow: UnitOfWork,
    secret: str | Sequence[str],
    sender: Sender,
    channel: str,
    external_id: str,
    member: MemberRef,
    paid_at: datetime,
    amount_cents: int,
    items: list[dict[str, Any]],
    store_code: str | None = None,
    coupon_codes: list[str] | None = None,
) -> OrderOutcome:
    """Record a paid order once per (partner, channel, external_id); it earns points at the
    member's current tier multiplier and lifts the tier at once if it crosses a threshold.
    The same order again answers the first answer; another order under its id is refused."""
    _require_channel(sender, channel)
    request = {
        "channel": channel,
        "external_id": external_id,
        "member": _ref_fields(member),
        "paid_at": paid_at,
        "amount_cents": amount_cents,
        "items": items,
        "store_code": store_code,
        "coupon_codes": coupon_codes,
    }

    def work(session: Session) -> dict[str, Any]:
        if _existing_order(session, sender.id, channel, external_id) is not None:
            raise external.ExternalIdTaken
        owner = _member_for(session, member, channel=channel, secret=secret, create=True)
        order = Order(
            partner_id=sender.id,
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
        session.flush()  # the unique (partner_id, channel, external_id) decides duplicates
        session.add_all(OrderItem(order_id=order.id, **item) for item in items)
        earned = _earn_for_order(session, owner, order)
        tier = tiers.upgrade_after_order(session, member_id=owner.id, order_id=order.id)
        # Both set last, so the order row is updated once, at commit.
        order.points_earned, order.tier_after = earned, tiers.tier_view(tier)
        emit(session, _order_recorded(order, earned))
        return {
            "order_id": order.id,
            "member_id": owner.id,
            "points_earned": earned,
            "tier": order.tier_after,
        }

    key = external.ExternalKey(sender.id, "order", external_id, channel)
    return _outcome(external.run_once(uow=uow, key=key, request=request, work=work))


def _order_recorded(order: Order, earned: int) -> Event:
    payload = {
        "order_id": order.id,
        "member_id": order.member_id,
        "channel": order.channel,
        "external_id": order.external_id,
        "store_code": order.store_code,
        "amount_cents": order.amount_cents,
        "points_earned": earned,
        "paid_at": order.paid_at.isoformat(),
    }
    return Event(Topic.ORDER_RECORDED, payload, member_id=order.member_id)


def _earn_for_order(session: Session, owner: Member, order: Order) -> int:
    rules = points.points_rules(session)
    birthday_pct = 100
    if owner.birthday and owner.birthday.month == clock.to_local(order.paid_at).month:
        birthday_pct = rules.birthday_month_multiplier_pct
    earned = points_rules.points_for_amount(
        order.amount_cents,
        points_per_yuan=rules.points_per_yuan,
        tier_pct=tiers.multiplier_pct(session, owner.id),
        birthday_pct=birthday_pct,
    )
    if earned > 0:
        points.earn(
            session,
            member_id=owner.id,
            points=earned,
            order_id=order.id,
            reason_code=points_rules.ReasonCode.ORDER,
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
    *,
    uow: UnitOfWork,
    sender: Sender,
    channel: str,
    external_order_id: str,
    external_id: str,
    amount_cents: int,
) -> RefundOutcome:
    """Take back the points an order earned, in proportion to the amount refunded. What the
    member already spent becomes a debt; the tier is not lowered until assessment. A partner
    refunds only its own orders: another partner's order is not found."""
    _require_channel(sender, channel)
    request = {
        "channel": channel,
        "external_order_id": external_order_id,
        "external_id": external_id,
        "amount_cents": amount_cents,
    }

    def work(session: Session) -> dict[str, Any]:
        earlier = session.scalars(
            select(Refund.id).where(
                Refund.partner_id == sender.id,
                Refund.channel == channel,
                Refund.external_id == external_id,
            )
        ).first()
        if earlier is not None:
            raise external.ExternalIdTaken
        order = _locked_order(session, sender.id, channel, external_order_id)
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
            partner_id=sender.id,
            channel=channel,
            external_id=external_id,
            amount_cents=amount_cents,
            points_reversed=taken,
            debt_added=result.debt_added,
        )
        session.add(refund)
        session.flush()
        payload = {
            "refund_id": refund.id,
            "order_id": order.id,
            "member_id": order.member_id,
            "channel": channel,
            "external_id": external_id,
            "amount_cents": amount_cents,
            "points_reversed": taken,
        }
        emit(session, Event(Topic.ORDER_REFUNDED, payload, member_id=order.member_id))
        return {"refund_id": refund.id, "points_reversed": taken, "debt_added": result.debt_added}

    key = external.ExternalKey(sender.id, "refund", external_id, channel)
    answered = external.run_once(uow=uow, key=key, request=request, work=work)
    answer = answered.answer
    return RefundOutcome(
        answer["refund_id"], answer["points_reversed"], answer["debt_added"], answered.replayed
    )


@dataclass(frozen=True)
class RedeemOutcome:
    member_id: int
    balance: int
    replayed: bool = False


# The only reference that proves the member is at the till: the card's signed, expiring QR.
PRESENT_REFERENCE = ReferenceKind.QR_PAYLOAD


def redeem_at_till(
    *,
    uow: UnitOfWork,
    secret: str | Sequence[str],
    sender: Sender,
    member: MemberRef,
    channel: str = "",
    points_to_spend: int,
    external_id: str,
    store_code: str | None = None,
) -> RedeemOutcome:
    """Spend points at the till, once per (partner, external_id): a retry answers the
    balance the first spend left. InsufficientPoints when the balance is short.

    The member is named by the card QR code they show; only a trusted partner (server-side
    e-commerce) may spend by card number, phone, unionid or channel member id."""
    if member.kind != PRESENT_REFERENCE and not sender.trusted:
        raise Forbidden(
            "Spending points needs the member's card QR code (member.qr_payload).",
            reason="member_not_present",
            field=f"member.{member.kind}",
        )
    if channel:
        _require_channel(sender, channel)
    request = {
        "member": _ref_fields(member),
        "channel": channel,
        "points": points_to_spend,
        "external_id": external_id,
        "store_code": store_code,
    }
    ledger_key = f"till:{sender.id}:{external_id}"

    def work(session: Session) -> dict[str, Any]:
        if points.entry_by_key(session, ledger_key) is not None:
            raise external.ExternalIdTaken
        owner = _member_for(session, member, channel=channel, secret=secret, create=False)
        where = f" at {store_code}" if store_code else ""
        entry = points.spend(
            session,
            member_id=owner.id,
            points=points_to_spend,
            reason_code=points_rules.ReasonCode.REDEMPTION,
            note=f"till redemption {external_id}{where}",
            idempotency_key=ledger_key,
        )
        return {"member_id": owner.id, "balance": entry.balance_after}

    # A retry is answered before the member is looked up: even if the card QR has expired.
    key = external.ExternalKey(sender.id, "till_spend", external_id)
    answered = external.run_once(uow=uow, key=key, request=request, work=work)
    return RedeemOutcome(
        answered.answer["member_id"], answered.answer["balance"], answered.replayed
    )

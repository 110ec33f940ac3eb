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

from app.errors import Conflict, Forbidden, NotFound
from app.external_ids import replay as external
from app.members.models import ReferenceKind
from app.orders import intake, recording
from app.orders import locks as order_locks
from app.orders.intake import MemberRef
from app.orders.models import Order, Refund
from app.outbox.events import Event, Topic
from app.outbox.operations import emit
from app.points import operations as points
from app.points import rules as points_rules
from app.retry import RaceLost
from app.tiers import operations as tiers
from app.uow import UnitOfWork


class Sender(Protocol):
    """The partner a request comes from (app.partners.services.PartnerPrincipal)."""

    @property
    def id(self) -> int: ...

    @property
    def trusted(self) -> bool: ...

    def may_use_channel(self, channel: str) -> bool: ...


@dataclass(frozen=True)
class OrderOutcome:
    order_id: int
    member_id: int
    points_earned: int
    tier: dict[str, Any] | None
    replayed: bool


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

    def work(session: Session, attempt: external.Attempt) -> dict[str, Any]:
        policy, ladder = tiers.tier_policy(session), tiers.load_tiers(session)
        metric = tiers.metric_read(policy) if ladder else None
        found = intake.for_order(
            session,
            attempt,
            member,
            channel=channel,
            secret=secret,
            metric=metric,
            metric_shape=policy.metric if metric is not None else None,
        )
        owner = found.member
        before = recording.standing(session, found, ladder)
        order = Order(
            partner_id=sender.id,
            channel=channel,
            external_id=external_id,
            member_id=owner.id,
            store_code=store_code,
            paid_at=paid_at,
            amount_cents=amount_cents,
            refunded_cents=0,
            points_reversed=0,
            coupon_codes=coupon_codes,
        )
        order.points_earned = recording.points_for(session, found, order, before.tier)
        value, lifted = recording.write(
            session,
            order,
            items,
            found=found,
            before=before,
            policy=policy,
            additive=metric is not None,
        )
        if lifted is not None:
            tiers.lift_after_order(
                session,
                member_id=owner.id,
                before=before,
                to=lifted,
                value=value,
                order_id=order.id,
                policy=policy,
            )
        emit(session, recording.recorded(order))
        return {
            "order_id": order.id,
            "member_id": owner.id,
            "points_earned": order.points_earned,
            "tier": order.tier_after,
        }

    key = external.ExternalKey(sender.id, "order", external_id, channel)
    return _outcome(
        external.run_once(uow=uow, key=key, request=request, work=work, work_reads_record=True)
    )


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

    def work(session: Session, _attempt: external.Attempt) -> dict[str, Any]:
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
    record = intake.LedgerRecord(ledger_key)

    def work(session: Session, attempt: external.Attempt) -> dict[str, Any]:
        found = intake.for_till(session, attempt, record, member, channel=channel, secret=secret)
        where = f" at {store_code}" if store_code else ""
        entry = points.spend(
            session,
            member_id=found.member.id,
            points=points_to_spend,
            reason_code=points_rules.ReasonCode.REDEMPTION,
            note=f"till redemption {external_id}{where}",
            idempotency_key=ledger_key,
            key_is_new=found.held,
            request_fingerprint=attempt.digest,
        )
        return {"member_id": found.member.id, "balance": entry.balance_after}

    # A retry is answered before the member is looked up: even if the card QR has expired.
    key = external.ExternalKey(sender.id, "till_spend", external_id)
    answered = external.run_once(
        uow=uow, key=key, request=request, work=work, store=record, work_reads_record=True
    )
    return RedeemOutcome(
        answered.answer["member_id"], answered.answer["balance"], answered.replayed
    )

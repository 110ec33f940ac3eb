"""Each store system's own: what a partner records carries its id and another partner's
orders are out of its reach; it posts only on the channels it was given; and it spends by a
bare member reference only if trusted, by the card's QR code otherwise."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Forbidden, NotFound
from app.external_ids.models import ExternalRequest
from app.members.models import Member
from app.orders import services as orders
from app.orders.models import Order, Refund
from app.points.models import PointsEntry
from app.uow import UnitOfWork
from tests.factories.orders import item
from tests.factories.partners import OTHER_SENDER, SENDER, StoreSender
from tests.support.books import assert_books_agree
from tests.support.clock import T0
from tests.support.orders import PlaceOrder, order_once, qr_for, redeem, refund, spend_once
from tests.support.rows import count_rows

# --- each partner sees its own ---


def test_orders_refunds_and_till_spends_record_their_partner(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")
    refund(uow, "O-1", "R-1", 1_000)
    redeem(uow, member, 5, "TILL-1")

    session.expire_all()
    assert session.scalars(select(Order.partner_id)).all() == [SENDER.id]
    assert session.scalars(select(Refund.partner_id)).all() == [SENDER.id]
    requests = session.execute(
        select(ExternalRequest.kind, ExternalRequest.partner_id).order_by(ExternalRequest.id)
    ).all()
    assert [tuple(row) for row in requests] == [("order", SENDER.id), ("refund", SENDER.id)]
    # a till spend's record is its ledger entry, keyed by the partner and its external id
    spend = session.scalars(
        select(PointsEntry).where(PointsEntry.idempotency_key == f"till:{SENDER.id}:TILL-1")
    ).one()
    assert spend.request_fingerprint is not None and spend.delta == -5


def test_two_partners_may_use_one_external_id_each_for_its_own_order(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    mine = order_once(uow, member, external_id="SAME-1")

    theirs = order_once(
        uow, member, sender=OTHER_SENDER, external_id="SAME-1", amount_cents=500, items=[item(500)]
    )

    assert not theirs.replayed  # neither a replay of the first nor a mismatch
    assert theirs.order_id != mine.order_id
    assert count_rows(session, Order) == 2
    assert assert_books_agree(session, member.id).balance == 123 + 5


def test_another_partners_order_is_not_found_to_a_refund_and_stays_untouched(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")  # from SENDER

    with pytest.raises(NotFound) as caught:
        orders.record_refund(
            uow=uow,
            sender=OTHER_SENDER,
            channel="pos",
            external_order_id="O-1",
            external_id="R-1",
            amount_cents=10_000,
        )

    assert caught.value.details == {"field": "external_order_id"}
    assert count_rows(session, Refund) == 0
    order = session.scalars(select(Order).where(Order.external_id == "O-1")).one()
    assert order.refunded_cents == 0
    assert assert_books_agree(session, member.id).balance == 100


# --- channels a partner was given ---

POS_ONLY = StoreSender(id=SENDER.id, channels=("pos",))


def test_a_partner_posts_orders_only_on_the_channels_it_was_given(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    with pytest.raises(Forbidden) as caught:
        order_once(uow, member, sender=POS_ONLY, channel="tmall")

    assert caught.value.details == {"reason": "channel_not_allowed", "channel": "tmall"}
    assert count_rows(session, Order) == 0
    assert order_once(uow, member, sender=POS_ONLY).points_earned == 123


def test_a_refund_on_a_channel_not_given_is_forbidden(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    order_once(uow, member, sender=POS_ONLY)

    with pytest.raises(Forbidden) as caught:
        orders.record_refund(
            uow=uow,
            sender=POS_ONLY,
            channel="jd",
            external_order_id="POS-FP-1",
            external_id="R-1",
            amount_cents=1_000,
        )

    assert caught.value.details == {"reason": "channel_not_allowed", "channel": "jd"}
    assert count_rows(session, Refund) == 0


def test_a_spend_by_channel_member_id_on_a_channel_not_given_is_forbidden(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000)
    trusted_pos = StoreSender(id=SENDER.id, trusted=True, channels=("pos",))

    with pytest.raises(Forbidden) as caught:
        spend_once(
            uow,
            member,
            sender=trusted_pos,
            member=orders.MemberRef("channel_member_id", "TM-1"),
            channel="tmall",
            points_to_spend=1,
        )

    assert caught.value.details == {"reason": "channel_not_allowed", "channel": "tmall"}
    assert assert_books_agree(session, member.id).kinds() == ["earn"]


# --- spending needs the member at the till, unless the partner is trusted ---

UNTRUSTED = StoreSender(id=SENDER.id, trusted=False)
BARE_REFERENCES = [
    ("card_no", None),
    ("phone", "13800138000"),
    ("unionid", "u-member-1"),
    ("channel_member_id", "POS-9"),
]


def reference(member: Member, kind: str, value: str | None) -> orders.MemberRef:
    return orders.MemberRef(kind, value or member.card_no)


@pytest.mark.parametrize(("kind", "value"), BARE_REFERENCES)
def test_an_untrusted_partner_cannot_spend_by_a_bare_reference(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    session: Session,
    member: Member,
    kind: str,
    value: str | None,
) -> None:
    place_order(("card_no", member.card_no), 100_000)

    with pytest.raises(Forbidden) as caught:
        spend_once(
            uow,
            member,
            sender=UNTRUSTED,
            member=reference(member, kind, value),
            channel="pos" if kind == "channel_member_id" else "",
        )

    assert caught.value.details == {"reason": "member_not_present", "field": f"member.{kind}"}
    assert assert_books_agree(session, member.id).kinds() == ["earn"]


def test_an_untrusted_partner_spends_with_the_card_qr_code(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 100_000)

    outcome = spend_once(
        uow, member, sender=UNTRUSTED, member=orders.MemberRef("qr_payload", qr_for(member, T0))
    )

    assert outcome == orders.RedeemOutcome(member.id, 700)


@pytest.mark.parametrize(("kind", "value"), BARE_REFERENCES)
def test_a_trusted_partner_spends_by_any_reference(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    session: Session,
    member: Member,
    kind: str,
    value: str | None,
) -> None:
    place_order(("card_no", member.card_no), 100_000)

    outcome = spend_once(
        uow,
        member,
        member=reference(member, kind, value),
        channel="pos" if kind == "channel_member_id" else "",
    )

    assert outcome == orders.RedeemOutcome(member.id, 700)
    assert assert_books_agree(session, member.id).balance == 700


@pytest.mark.parametrize(("kind", "value"), BARE_REFERENCES)
def test_an_untrusted_partner_still_posts_orders_by_any_reference(
    uow: UnitOfWork, session: Session, member: Member, kind: str, value: str | None
) -> None:
    """Being present matters for spending only: an order only adds points."""
    outcome = order_once(uow, member, sender=UNTRUSTED, member=reference(member, kind, value))

    assert outcome.member_id == member.id
    assert assert_books_agree(session, member.id).balance == 123

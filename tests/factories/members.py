"""Members and their WeChat identities."""

from __future__ import annotations

import factory

from app.members import rules
from app.members.models import PROVIDER_MINIPROGRAM, Member, MemberIdentity
from tests.factories.base import BaseFactory


class MemberFactory(BaseFactory):
    class Meta:
        model = Member

    card_no = factory.LazyFunction(rules.new_card_no)
    nickname = factory.Faker("name", locale="zh_CN")
    gender = "female"
    city = "上海"
    registration_channel = "miniprogram"
    status = "active"


class IdentityFactory(BaseFactory):
    class Meta:
        model = MemberIdentity

    member = factory.SubFactory(MemberFactory)
    member_id = factory.SelfAttribute("member.id")
    provider = PROVIDER_MINIPROGRAM
    app_id = "wx-test-mp"
    external_id = factory.Sequence(lambda n: f"o-openid-{n:06d}")

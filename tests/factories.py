"""factory_boy factories; the ``session`` fixture binds them to the test's session."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from app.admins.models import AdminUser
from app.members import rules
from app.members.models import PROVIDER_MINIPROGRAM, Member, MemberIdentity


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"


class MemberFactory(_Base):
    class Meta:
        model = Member

    card_no = factory.LazyFunction(rules.new_card_no)
    nickname = factory.Faker("name", locale="zh_CN")
    gender = "female"
    city = "上海"
    registration_channel = "miniprogram"
    status = "active"


class IdentityFactory(_Base):
    class Meta:
        model = MemberIdentity

    member = factory.SubFactory(MemberFactory)
    member_id = factory.SelfAttribute("member.id")
    provider = PROVIDER_MINIPROGRAM
    app_id = "wx-test-mp"
    external_id = factory.Sequence(lambda n: f"o-openid-{n:06d}")


class AdminFactory(_Base):
    class Meta:
        model = AdminUser

    username = factory.Sequence(lambda n: f"admin{n}")
    password_hash = "not-a-usable-hash"
    role = "admin"


ALL_FACTORIES = (MemberFactory, IdentityFactory, AdminFactory)

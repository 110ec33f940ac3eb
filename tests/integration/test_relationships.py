"""Relationships never load on attribute access: a query says what it loads
(``joinedload``/``selectinload``), so a lazy load, and a detached one above all, fails in
tests instead of issuing hidden queries or raising only in production."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

import app.models  # noqa: F401  (every model, so the registry knows every mapper)
from app.db import Base
from app.members import operations as members
from app.members.models import PROVIDER_CHANNEL, MemberIdentity


def test_every_mapped_relationship_refuses_to_load_lazily() -> None:
    relationships = [
        (mapper.class_.__name__, rel.key, rel.lazy)
        for mapper in Base.registry.mappers
        for rel in mapper.relationships
    ]
    assert relationships, "the models declare relationships; the walk found none"
    lazy = [
        (cls, key, how) for cls, key, how in relationships if how not in {"raise", "raise_on_sql"}
    ]
    assert lazy == [], 'declare these with lazy="raise" and load them explicitly'


def test_an_unloaded_relationship_raises_and_an_explicit_load_answers(session: Session) -> None:
    member = members.create_member(session, registration_channel="pos")
    members.attach_identity(
        session, member, provider=PROVIDER_CHANNEL, app_id="pos", external_id="C-1"
    )
    session.flush()
    session.expunge_all()

    plain = session.scalars(select(MemberIdentity).where(MemberIdentity.external_id == "C-1")).one()
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = plain.member
    session.expunge_all()

    found = members.find_by_identity(
        session, provider=PROVIDER_CHANNEL, app_id="pos", external_id="C-1"
    )
    assert found is not None
    assert found.member.id == member.id

"""The migrated schema is the models' schema; on MariaDB it stores and compares text as needed."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import app.models  # noqa: F401 - registers every table on the metadata
from app.db import Base
from app.members import operations as ops
from app.members.models import PROVIDER_MINIPROGRAM, Member
from tests.factories import IdentityFactory, MemberFactory

# Values compared byte for byte: MySQL's default collations ignore case (and trailing spaces).
BINARY_COLUMNS = [
    ("members", "card_no"),
    ("members", "unionid"),
    ("members", "phone"),
    ("member_identities", "app_id"),
    ("member_identities", "external_id"),
    ("idempotency_records", "scope"),
    ("idempotency_records", "key"),
    ("admin_users", "username"),
    ("partners", "app_key"),
]


def test_the_migrated_database_matches_the_models(engine: Engine) -> None:
    """Autogenerate finds nothing to do: no model change lacks its migration (and back)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_the_database_is_at_the_head_revision(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        heads = ScriptDirectory.from_config(alembic_config(connection)).get_heads()

    assert set(current) == set(heads)
    assert len(heads) == 1


# MariaDB: collations and utf8mb4


def _column_info(engine: Engine, table: str, column: str) -> tuple[str, str]:
    query = text(
        "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = :c"
    )
    with engine.connect() as connection:
        row = connection.execute(query, {"t": table, "c": column}).one()
    return (row[0], row[1])


@pytest.mark.mariadb
@pytest.mark.parametrize(("table", "column"), BINARY_COLUMNS)
def test_identifiers_use_a_binary_collation(engine: Engine, table: str, column: str) -> None:
    # NO PAD: even utf8mb4_bin would find 'x' equal to 'x '.
    assert _column_info(engine, table, column) == ("utf8mb4", "utf8mb4_nopad_bin")


@pytest.mark.mariadb
def test_every_text_column_is_utf8mb4(engine: Engine) -> None:
    query = text(
        "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL"
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    ours = [row for row in rows if row[0] in Base.metadata.tables]

    assert ours, "no text columns found"
    assert [row for row in ours if row[2] != "utf8mb4"] == []


@pytest.mark.mariadb
def test_openids_differing_only_by_case_are_different_identities(session: Session) -> None:
    upper = IdentityFactory(external_id="oAbCdEf-123")
    lower = IdentityFactory(external_id="oabcdef-123")

    for identity in (upper, lower):
        found = ops.find_by_identity(
            session,
            provider=PROVIDER_MINIPROGRAM,
            app_id=identity.app_id,
            external_id=identity.external_id,
        )
        assert found is not None
        assert found.id == identity.id
    assert upper.member_id != lower.member_id


@pytest.mark.mariadb
def test_openids_differing_only_by_a_trailing_space_are_different_identities(
    session: Session,
) -> None:
    bare = IdentityFactory(external_id="o-space-1")
    padded = IdentityFactory(external_id="o-space-1 ")

    found = ops.find_by_identity(
        session, provider=PROVIDER_MINIPROGRAM, app_id=padded.app_id, external_id="o-space-1 "
    )
    assert found is not None
    assert found.id == padded.id != bare.id


@pytest.mark.mariadb
def test_a_four_byte_emoji_nickname_roundtrips(session: Session) -> None:
    member = MemberFactory(nickname="小美🌸", city="🏙️上海")
    session.expire_all()

    stored = session.get(Member, member.id)
    assert stored is not None
    assert (stored.nickname, stored.city) == ("小美🌸", "🏙️上海")
    lengths = session.execute(
        text("SELECT CHAR_LENGTH(nickname), LENGTH(nickname) FROM members WHERE id = :id"),
        {"id": member.id},
    ).one()
    assert tuple(lengths) == (3, 10)  # two 3-byte characters and one 4-byte emoji, not '?'

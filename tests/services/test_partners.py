"""Partner credentials: created with an audit entry, found by key and secret (not once
disabled, nor under a rotated secret key); partners' channels and trust, and configuring
them (audited when it changes something)."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.admins.operations import CLI
from app.errors import NotFound, ValidationFailed
from app.partners import services as partners
from app.partners.models import Partner
from app.uow import UnitOfWork
from tests.support.audit import audit_entries
from tests.support.rows import NewRows, reload
from tests.support.settings import SECRET_KEY


def test_create_partner_is_audited_and_found_with_its_secret(
    uow: UnitOfWork, session: Session
) -> None:
    credentials = partners.create_partner(
        uow=uow, actor=CLI, name="  POS 上海  ", secret_key=SECRET_KEY
    )

    stored = reload(session, Partner, credentials.partner_id)
    assert stored.name == "POS 上海"
    assert stored.app_key == credentials.app_key
    assert credentials.app_key.startswith("hk_")
    assert credentials.app_secret not in stored.secret_encrypted
    (entry,) = audit_entries(session, "partner.create")
    assert (entry.actor_type, entry.target_type, entry.target_id) == (
        "cli",
        "partner",
        str(credentials.partner_id),
    )
    assert entry.after == {
        "name": "POS 上海",
        "app_key": credentials.app_key,
        "channels": None,
        "trusted": False,
    }
    assert credentials.app_secret not in json.dumps(entry.after)

    found = partners.find_partner(uow=uow, app_key=credentials.app_key, secret_key=SECRET_KEY)
    assert found == partners.PartnerPrincipal(
        credentials.partner_id, "POS 上海", credentials.app_key, credentials.app_secret
    )


def test_each_partner_gets_its_own_credentials(uow: UnitOfWork) -> None:
    first = partners.create_partner(uow=uow, actor=CLI, name="POS", secret_key=SECRET_KEY)
    second = partners.create_partner(uow=uow, actor=CLI, name="POS", secret_key=SECRET_KEY)

    assert first.app_key != second.app_key
    assert first.app_secret != second.app_secret


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_a_partner_needs_a_name(
    uow: UnitOfWork, session: Session, name: str, rows: NewRows
) -> None:
    with pytest.raises(ValidationFailed):
        partners.create_partner(uow=uow, actor=CLI, name=name, secret_key=SECRET_KEY)
    assert rows.added(Partner) == 0


def test_a_disabled_partner_is_not_found(uow: UnitOfWork, session: Session) -> None:
    credentials = partners.create_partner(uow=uow, actor=CLI, name="ERP", secret_key=SECRET_KEY)
    reload(session, Partner, credentials.partner_id).active = False
    session.flush()

    assert (
        partners.find_partner(uow=uow, app_key=credentials.app_key, secret_key=SECRET_KEY) is None
    )


def test_unknown_keys_and_a_rotated_secret_key_find_nothing(uow: UnitOfWork) -> None:
    credentials = partners.create_partner(uow=uow, actor=CLI, name="ERP", secret_key=SECRET_KEY)

    assert partners.find_partner(uow=uow, app_key="hk_unknown", secret_key=SECRET_KEY) is None
    assert (
        partners.find_partner(uow=uow, app_key=credentials.app_key.upper(), secret_key=SECRET_KEY)
        is None
    )
    assert (
        partners.find_partner(uow=uow, app_key=credentials.app_key, secret_key="rotated" * 8)
        is None
    )


def test_a_partner_carries_its_channels_and_trust(uow: UnitOfWork, session: Session) -> None:
    credentials = partners.create_partner(
        uow=uow,
        actor=CLI,
        name="Tmall shop",
        secret_key=SECRET_KEY,
        channels=["tmall", "pos", "tmall"],
        trusted=True,
    )

    stored = reload(session, Partner, credentials.partner_id)
    assert (stored.channels, stored.trusted) == (["pos", "tmall"], True)
    found = partners.find_partner(uow=uow, app_key=credentials.app_key, secret_key=SECRET_KEY)
    assert found is not None
    assert (found.channels, found.trusted) == (("pos", "tmall"), True)
    assert found.may_use_channel("pos") and not found.may_use_channel("jd")


@pytest.mark.parametrize(
    "channels", [[], [""], ["POS"], ["pos", ""], ["pos", "tm all"], ["a" * 17]], ids=repr
)
def test_a_partner_is_given_only_channel_codes(
    uow: UnitOfWork, channels: list[str], rows: NewRows
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        partners.create_partner(
            uow=uow, actor=CLI, name="Bad", secret_key=SECRET_KEY, channels=channels
        )

    assert caught.value.details == {"field": "channels"}
    assert rows.added(Partner) == 0


def test_configuring_a_partner_audits_a_change_and_not_a_repeat(
    uow: UnitOfWork, session: Session, redis: Any
) -> None:
    till = partners.create_partner(uow=uow, actor=CLI, name="Store till", secret_key=SECRET_KEY)

    for _ in range(2):  # the second changes nothing: not audited
        partners.configure_partner(
            uow=uow, redis=redis, actor=CLI, app_key_or_id=till.app_key, trusted=True
        )

    (entry,) = audit_entries(session, "partner.configure")
    assert (entry.actor_type, entry.target_type, entry.target_id) == (
        "cli",
        "partner",
        str(till.partner_id),
    )
    assert entry.before == {"app_key": till.app_key, "channels": None, "trusted": False}
    assert entry.after == {"app_key": till.app_key, "channels": None, "trusted": True}


def test_configuring_channels_and_every_channel_again(
    uow: UnitOfWork, session: Session, redis: Any
) -> None:
    till = partners.create_partner(uow=uow, actor=CLI, name="Store till", secret_key=SECRET_KEY)

    shown = partners.configure_partner(
        uow=uow, redis=redis, actor=CLI, app_key_or_id=till.app_key, channels=["pos"]
    )
    assert (shown.channels, reload(session, Partner, till.partner_id).channels) == (
        ("pos",),
        ["pos"],
    )

    partners.configure_partner(
        uow=uow, redis=redis, actor=CLI, app_key_or_id=till.app_key, channels=["*"]
    )
    assert reload(session, Partner, till.partner_id).channels is None


@pytest.mark.parametrize(
    ("ref", "channels", "error"),
    [
        ("hk_nobody", None, NotFound),
        (None, ["POS"], ValidationFailed),
        (None, ["pos", "*"], ValidationFailed),  # every channel is "*" alone
        (None, [""], ValidationFailed),
    ],
    ids=["unknown-partner", "uppercase", "star-among-codes", "empty"],
)
def test_configuring_with_bad_arguments_changes_nothing(
    uow: UnitOfWork,
    session: Session,
    redis: Any,
    ref: str | None,
    channels: list[str] | None,
    error: type[Exception],
) -> None:
    till = partners.create_partner(uow=uow, actor=CLI, name="Store till", secret_key=SECRET_KEY)

    with pytest.raises(error):
        partners.configure_partner(
            uow=uow,
            redis=redis,
            actor=CLI,
            app_key_or_id=ref or till.app_key,
            channels=channels,
            trusted=True,
        )

    stored = reload(session, Partner, till.partner_id)
    assert (stored.channels, stored.trusted) == (None, False)
    assert audit_entries(session, "partner.configure") == []

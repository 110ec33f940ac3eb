"""Reading and replacing a settings document as a use case; every replacement is audited."""

from __future__ import annotations

from typing import Any

from app.admins.operations import Actor, record_change
from app.settings.operations import read_document, replace_document
from app.uow import UnitOfWork


def get_document(*, uow: UnitOfWork, key: str, default: dict[str, Any]) -> dict[str, Any]:
    with uow:
        return read_document(uow.session, key, default)


def put_document(
    *, uow: UnitOfWork, actor: Actor, key: str, default: dict[str, Any], value: dict[str, Any]
) -> dict[str, Any]:
    """Replace the whole document; the audit log keeps what it was before."""
    with uow:
        before = read_document(uow.session, key, default)
        replace_document(uow.session, key, value)
        record_change(
            uow.session,
            actor=actor,
            action=f"{key}.update",
            target_type="settings",
            target_id=key,
            before=before,
            after=value,
        )
        uow.commit()
        return value

"""Read and replace settings documents inside the caller's transaction."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from app.admins.operations import Actor, record_change
from app.caching import cached
from app.settings.models import SettingsDocument

T = TypeVar("T")


def _cache(session: Session) -> dict[str, dict[str, Any]]:
    # One use case = one session: the documents are read once per use case, not per step.
    cache: dict[str, dict[str, Any]] = session.info.setdefault("settings_documents", {})
    return cache


def read_document(session: Session, key: str, default: dict[str, Any]) -> dict[str, Any]:
    cache = _cache(session)
    if key not in cache:
        row = session.get(SettingsDocument, key)
        cache[key] = row.value if row is not None else default
    return copy.deepcopy(cache[key])


def read_typed(
    session: Session, key: str, default: dict[str, Any], parse: Callable[[dict[str, Any]], T]
) -> T:
    """The document as its context's frozen dataclass, parsed once per use case and kept
    by the process between use cases (app.caching: a change reaches every worker within
    a second)."""
    typed: dict[str, Any] = session.info.setdefault("settings_typed", {})
    if key not in typed:
        typed[key] = cached(
            session, ("settings", key), lambda: parse(read_document(session, key, default))
        )
    return cast(T, typed[key])


def replace_document(session: Session, key: str, value: dict[str, Any]) -> None:
    _cache(session)[key] = copy.deepcopy(value)
    session.info.get("settings_typed", {}).pop(key, None)
    row = session.get(SettingsDocument, key)
    if row is None:
        session.add(SettingsDocument(key=key, value=value))
    else:
        row.value = value
    session.flush()


def replace_audited(
    session: Session, *, actor: Actor, key: str, default: dict[str, Any], value: dict[str, Any]
) -> None:
    """Replace the whole document; the audit log keeps what it was before."""
    before = read_document(session, key, default)
    replace_document(session, key, value)
    record_change(
        session,
        actor=actor,
        action=f"{key}.update",
        target_type="settings",
        target_id=key,
        before=before,
        after=value,
    )

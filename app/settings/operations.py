"""Read and replace settings documents inside the caller's transaction."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.orm import Session

from app.settings.models import SettingsDocument


def read_document(session: Session, key: str, default: dict[str, Any]) -> dict[str, Any]:
    row = session.get(SettingsDocument, key)
    return copy.deepcopy(row.value) if row is not None else copy.deepcopy(default)


def replace_document(session: Session, key: str, value: dict[str, Any]) -> None:
    row = session.get(SettingsDocument, key)
    if row is None:
        session.add(SettingsDocument(key=key, value=value))
    else:
        row.value = value
    session.flush()

"""Settings documents: the points rules and the tier policy, stored as the admin PUT stores them."""

from __future__ import annotations

from typing import Any

import factory
from sqlalchemy.orm import Session

from app.points import rules as points_rules
from app.settings.models import SettingsDocument
from app.tiers import rules as tier_rules
from tests.factories.base import BaseFactory


class SettingsDocumentFactory(BaseFactory):
    class Meta:
        model = SettingsDocument

    key = "points_rules"
    value = factory.LazyFunction(dict)


def _store(session: Session, key: str, document: dict[str, Any]) -> dict[str, Any]:
    row = session.get(SettingsDocument, key)
    if row is None:
        SettingsDocumentFactory(key=key, value=document)
    else:
        row.value = document
        session.flush()
    return document


def set_points_rules(session: Session, **changes: Any) -> dict[str, Any]:
    """Store the default points rules with ``changes`` applied; answers the document."""
    return _store(session, "points_rules", {**points_rules.DEFAULT_RULES, **changes})


def set_tier_policy(session: Session, **changes: Any) -> dict[str, Any]:
    """Store the default tier policy with ``changes`` applied; answers the document."""
    return _store(session, "tier_policy", {**tier_rules.DEFAULT_POLICY, **changes})

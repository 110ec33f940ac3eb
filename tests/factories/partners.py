"""Store systems: partner rows, and the senders service tests pass to the order services."""

from __future__ import annotations

from dataclasses import dataclass

import factory
from sqlalchemy.orm import Session

from app.partners.models import Partner
from tests.factories.base import BaseFactory


class PartnerFactory(BaseFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"store system {n}")
    app_key = factory.Sequence(lambda n: f"hk_test_{n:06d}")
    secret_encrypted = "not used by service tests"
    trusted = True


@dataclass(frozen=True)
class StoreSender:
    """What the open API hands the order services: a partner's id and rights."""

    id: int
    trusted: bool = True
    channels: tuple[str, ...] | None = None

    def may_use_channel(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


# Fixed ids, inserted by add_senders into each test's rolled-back transaction.
SENDER = StoreSender(id=900_001)
OTHER_SENDER = StoreSender(id=900_002)


def add_senders(session: Session) -> None:
    """The partner rows behind SENDER and OTHER_SENDER (factories must be bound)."""
    for sender in (SENDER, OTHER_SENDER):
        if session.get(Partner, sender.id) is None:
            PartnerFactory(
                id=sender.id,
                name=f"store system {sender.id}",
                app_key=f"hk_test_{sender.id}",
                trusted=sender.trusted,
            )

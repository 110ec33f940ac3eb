"""factory_boy factories, one module per context of ``app/`` (members, admins, tiers,
settings, partners, orders), as warehouse keeps ``tests/common/db/<package>.py``.

The ``session`` fixture binds every factory to the test's session with ``bound_to``; code
that arranges rows through a session of its own (the points state machine) does the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from tests.factories.admins import AdminFactory
from tests.factories.members import IdentityFactory, MemberFactory
from tests.factories.partners import PartnerFactory
from tests.factories.settings import SettingsDocumentFactory
from tests.factories.tiers import TierFactory

ALL_FACTORIES = (
    MemberFactory,
    IdentityFactory,
    AdminFactory,
    TierFactory,
    SettingsDocumentFactory,
    PartnerFactory,
)


@contextmanager
def bound_to(session: Session) -> Iterator[Session]:
    """Every factory writes through ``session`` inside the block, and through none after."""
    for factory_class in ALL_FACTORIES:
        factory_class._meta.sqlalchemy_session = session
    try:
        yield session
    finally:
        for factory_class in ALL_FACTORIES:
            factory_class._meta.sqlalchemy_session = None

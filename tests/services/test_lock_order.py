"""The hot-row idiom holds: row locks only in each context's locks.py, taken in the order
app/locks.py declares (watched in every test by tests/support/lock_order.py), and one retry path."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session

from app.locks import LOCK_ORDER, LOCKED_ALONE
from app.members.locks import lock_members
from app.orders.locks import lock_order
from app.partners.locks import lock_partners
from app.tiers.locks import lock_member_tiers
from tests.support.lock_order import watching_lock_order

APP = Path(__file__).resolve().parents[2] / "app"


def sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in APP.rglob("*.py")}


def test_row_locks_are_taken_only_in_a_contexts_locks_module() -> None:
    locking = re.compile(r"\.with_for_update\(|text\([^)]*FOR UPDATE")
    outside = [
        str(path.relative_to(APP))
        for path, text in sources().items()
        if path.name != "locks.py" and locking.search(text)
    ]
    assert outside == []


def test_every_locks_module_has_its_place_in_the_lock_order() -> None:
    contexts = {path.parent.name for path in APP.glob("*/locks.py")}
    assert contexts == set(LOCK_ORDER) | set(LOCKED_ALONE)
    assert not set(LOCK_ORDER) & set(LOCKED_ALONE)


def test_use_cases_retry_only_through_the_unit_of_work() -> None:
    calling = [
        str(path.relative_to(APP))
        for path, text in sources().items()
        if "run_retrying_races(" in text and path.name not in ("retry.py", "uow.py")
    ]
    nested = [
        str(path.relative_to(APP)) for path, text in sources().items() if "def attempt(" in text
    ]
    assert calling == []
    assert nested == ["uow.py"]


def test_the_watch_reports_locks_taken_out_of_order(
    session: Session, _lock_order: list[str]
) -> None:
    with watching_lock_order() as violations:
        lock_member_tiers(session, [1])
        lock_members(session, 1)
    assert violations == ["members locked after ['tiers']"]
    _lock_order.clear()  # provoked on purpose


def test_the_watch_accepts_locks_in_order(session: Session) -> None:
    with watching_lock_order() as violations:
        lock_members(session, 2, 1)
        lock_order(session, partner_id=1, channel="pos", external_id="none")
        lock_member_tiers(session, [2, 1])
    assert violations == []


def test_a_context_locked_alone_refuses_company(session: Session, _lock_order: list[str]) -> None:
    with watching_lock_order() as violations:
        lock_partners(session)
        lock_members(session, 1)
    assert violations == ["members locked with ['partners']: it is locked alone"]
    _lock_order.clear()  # provoked on purpose

"""Every table that holds a member's rows is answered for in a merge: a registered merge
step names it, or it is exempt below with the reason."""

from __future__ import annotations

import app.models  # noqa: F401 - every table on the metadata
from app.db import Base
from app.members.merge import MERGE_STEPS
from app.wiring import wire_domain

# Tables the members context moves itself, and tables left with the member they name.
EXEMPT = {
    # Moved by members.operations.merge_members itself, before the steps run.
    "member_identities": "the merge moves identities itself",
    # The members table and its merge log: the loser row stays, marked merged_into_id.
    "members": "the merged member's own row stays, pointing at the survivor",
    "member_merges": "the merge log names both members on purpose",
    # A session belongs to the member it was issued to; the use cases resolve a merged
    # member's id to the survivor (members.operations.get_active).
    "member_sessions": "use cases resolve a merged member's session to the survivor",
    # Events are facts about the member at the time; each handler resolves a merged
    # member itself (members.operations.get_active) when it runs.
    "outbox": "handlers resolve merged members themselves",
}


def _member_tables() -> set[str]:
    """Tables with a member_id column or a foreign key to members.id."""
    found = set()
    for table in Base.metadata.sorted_tables:
        if "member_id" in table.c or any(
            fk.column.table.name == "members" for fk in table.foreign_keys
        ):
            found.add(table.name)
    return found


def test_every_table_with_member_rows_has_a_merge_step_or_an_exemption() -> None:
    wire_domain()
    covered = MERGE_STEPS.tables()
    missing = _member_tables() - covered - EXEMPT.keys()
    assert not missing, f"no merge step answers for {sorted(missing)} (see app/wiring.py)"


def test_the_steps_and_exemptions_name_real_tables() -> None:
    """A renamed or dropped table must not leave a stale entry that hides a new one."""
    wire_domain()
    tables = set(Base.metadata.tables)
    assert MERGE_STEPS.tables() <= tables
    assert EXEMPT.keys() <= tables
    assert not MERGE_STEPS.tables() & EXEMPT.keys()


def test_the_check_sees_a_member_table_no_step_covers() -> None:
    """The fitness check itself can fail: the member tables include ones only a step
    covers, so dropping that step would leave them missing."""
    wire_domain()
    by_context = {step.context: step.tables for step in MERGE_STEPS.steps()}
    without_orders = MERGE_STEPS.tables() - by_context["orders"]
    assert "orders" in _member_tables() - without_orders - EXEMPT.keys()

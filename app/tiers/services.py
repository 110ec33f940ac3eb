"""Tier use cases: the ladder and policy (audited), assessment, and its simulation."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis.exceptions import LockError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.admins.operations import Actor, record_change
from app.errors import AlreadyRunning, Conflict, NotFound, ValidationFailed
from app.members.models import Member, MemberStatus
from app.settings.operations import replace_audited
from app.tiers import locks, rules
from app.tiers import operations as ops
from app.tiers.models import MemberTier, Tier
from app.uow import UnitOfWork

BATCH_SIZE = 1000
SIMULATION_LOCK = "lock:tiers:simulate"
NO_TIER = "none"
_FIELDS = ("code", "name", "rank", "threshold", "benefits")


def _snapshot(tier: Tier) -> dict[str, Any]:
    return {name: getattr(tier, name) for name in _FIELDS}


def list_tiers(*, uow: UnitOfWork) -> list[Tier]:
    with uow:
        return list(uow.session.scalars(select(Tier).order_by(Tier.rank)))


def create_tier(*, uow: UnitOfWork, actor: Actor, fields: dict[str, Any]) -> Tier:
    try:
        with uow:
            tier = Tier(**fields)
            uow.session.add(tier)
            uow.session.flush()
            record_change(
                uow.session,
                actor=actor,
                action="tier.create",
                target_type="tier",
                target_id=tier.code,
                before=None,
                after=_snapshot(tier),
            )
            uow.commit()
            return tier
    except IntegrityError:
        raise Conflict("A tier with this code or rank exists.", fields=["code", "rank"]) from None


def update_tier(*, uow: UnitOfWork, actor: Actor, code: str, changes: dict[str, Any]) -> Tier:
    try:
        with uow:
            tier = uow.session.scalars(select(Tier).where(Tier.code == code)).one_or_none()
            if tier is None:
                raise NotFound("No such tier.")
            before = _snapshot(tier)
            for name, value in changes.items():
                setattr(tier, name, value)
            uow.session.flush()
            record_change(
                uow.session,
                actor=actor,
                action="tier.update",
                target_type="tier",
                target_id=code,
                before=before,
                after=_snapshot(tier),
            )
            uow.commit()
            return tier
    except IntegrityError:
        raise Conflict("Another tier has this rank.", field="rank") from None


def get_policy(*, uow: UnitOfWork) -> dict[str, Any]:
    """The tier policy document in force; a stored one that is not valid is refused."""
    with uow:
        return ops.tier_policy(uow.session).document()


def put_policy(*, uow: UnitOfWork, actor: Actor, policy: rules.TierPolicy) -> dict[str, Any]:
    """Replace the tier policy; audited."""
    document = policy.document()
    with uow:
        default = rules.DEFAULT_POLICY
        replace_audited(
            uow.session, actor=actor, key=ops.POLICY_KEY, default=default, value=document
        )
        uow.commit()
        return document


def _member_batches(uow: UnitOfWork, batch_size: int) -> Any:
    after = 0
    while True:
        with uow:
            ids = list(
                uow.session.scalars(
                    select(Member.id)
                    .where(Member.status == MemberStatus.ACTIVE, Member.id > after)
                    .order_by(Member.id)
                    .limit(batch_size)
                )
            )
        if not ids:
            return
        yield ids
        after = ids[-1]


def _decide(
    session: Any,
    ids: list[int],
    tiers: list[rules.TierRef],
    policy: rules.TierPolicy,
    now: datetime,
    *,
    lock: bool = False,
) -> list[tuple[int, ops.Standing, rules.TierRef | None, int]]:
    """(member, standing, assessed tier, value) for a batch; shared by the job and simulate."""
    values = ops.metric_values(session, policy, now, ids)
    # Locked while assessing: an order's upgrade meanwhile waits, never is overwritten.
    found = (
        locks.lock_member_tiers(session, ids)
        if lock
        else session.scalars(select(MemberTier).where(MemberTier.member_id.in_(ids)))
    )
    rows = {row.member_id: row for row in found}
    by_code = {tier.code: tier for tier in tiers}
    base = rules.tier_for_value(tiers, 0)
    decided = []
    for member_id in ids:
        row = rows.get(member_id)
        standing = (
            ops.Standing(by_code.get(row.tier_code or ""), row.retain_until)
            if row is not None
            else ops.Standing(base, None)
        )
        value = values.get(member_id, 0)
        target = rules.assess(tiers, standing.tier, value, standing.retain_until, now)
        decided.append((member_id, standing, target, value))
    return decided


def assess_tiers(*, uow: UnitOfWork, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """The `tiers.assess` job: downgrade members whose window value fell below their tier
    once their retention ran out (and catch up any upgrade). A transaction per batch."""
    now = clock.now()
    counts: Counter[str] = Counter()
    for ids in _member_batches(uow, batch_size):
        with uow:
            session = uow.session
            tiers = ops.load_tiers(session)
            policy = ops.tier_policy(session)
            for member_id, standing, target, value in _decide(
                session, ids, tiers, policy, now, lock=True
            ):
                counts["assessed"] += 1
                if _code(target) == _code(standing.tier):
                    continue
                up = (target.rank if target else -1) > (standing.tier.rank if standing.tier else -1)
                counts["upgraded" if up else "downgraded"] += 1
                ops.change_tier(
                    session,
                    member_id=member_id,
                    before=standing,
                    to=target,
                    value=value,
                    reason="assessment",
                    now=now,
                    retention_days=policy.retention_days,
                )
            uow.commit()
    return dict(counts)


def _code(tier: rules.TierRef | None) -> str:
    return tier.code if tier is not None else NO_TIER


def simulate_distribution_once(
    *, uow: UnitOfWork, redis: Any, thresholds: dict[str, int], lock_seconds: int
) -> dict[str, int]:
    """The simulation, one at a time across every worker: it reads the whole member base,
    so a second request while one runs is refused (AlreadyRunning) rather than queued.

    The Redis lock expires ``lock_seconds`` after the last batch read, so a worker that dies
    mid-run blocks the next one for that long at most; a long run renews it per batch."""
    lock = redis.lock(SIMULATION_LOCK, timeout=lock_seconds, blocking=False)
    if not lock.acquire():
        raise AlreadyRunning("A tier simulation is already running; try again shortly.")

    def renew_or_release(renew: bool) -> None:
        # Lapsed meanwhile (a very slow batch): the answer is still right.
        with contextlib.suppress(LockError):
            lock.reacquire() if renew else lock.release()

    try:
        return simulate_distribution(
            uow=uow, thresholds=thresholds, on_batch=lambda: renew_or_release(True)
        )
    finally:
        renew_or_release(False)


def simulate_distribution(
    *,
    uow: UnitOfWork,
    thresholds: dict[str, int],
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[], Any] | None = None,
) -> dict[str, int]:
    """How many members each tier would hold if assessment ran now with these thresholds.
    Reads only; uses the same decision as the assessment job."""
    now = clock.now()
    with uow:
        tiers = ops.load_tiers(uow.session)
        policy = ops.tier_policy(uow.session)
    unknown = set(thresholds) - {tier.code for tier in tiers}
    if unknown:
        raise ValidationFailed("Unknown tier codes.", field="thresholds", codes=sorted(unknown))
    proposed = rules.with_thresholds(tiers, thresholds)
    distribution: Counter[str] = Counter({tier.code: 0 for tier in tiers})
    for ids in _member_batches(uow, batch_size):
        with uow:
            for _, _, target, _ in _decide(uow.session, ids, proposed, policy, now):
                distribution[_code(target)] += 1
        if on_batch is not None:
            on_batch()
    return dict(distribution)

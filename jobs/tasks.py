"""Job bodies: each calls the domain's services and answers what it did."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from app import clock
from app.admins import sessions as admin_sessions
from app.container import Container
from app.idempotency import services as idempotency
from app.members import sessions as member_sessions
from app.outbox import services as outbox
from app.partners import nonces
from app.points import services as points
from app.tiers import services as tiers


def purge_idempotency_records(deps: Container) -> dict[str, Any]:
    return {"deleted": idempotency.purge_expired(uow=deps.uow())}


def purge_open_api_nonces(deps: Container) -> dict[str, Any]:
    removed = nonces.purge_expired_nonces(
        deps.redis,
        now_ts=int(clock.now().timestamp()),
        window=deps.config.open_api_clock_skew_seconds,
    )
    return {"deleted": removed}


def purge_sessions(deps: Container) -> dict[str, Any]:
    """Sessions older than the token lifetime can carry no valid token: delete them."""
    cutoff = clock.now() - timedelta(seconds=deps.config.token_ttl_seconds)
    return {
        "member_sessions": member_sessions.purge_sessions_before(uow=deps.uow(), cutoff=cutoff),
        "admin_sessions": admin_sessions.purge_sessions_before(uow=deps.uow(), cutoff=cutoff),
    }


def expire_points(deps: Container) -> dict[str, Any]:
    return points.expire_points(uow=deps.uow())


def remind_expiring_points(deps: Container) -> dict[str, Any]:
    return points.remind_expiring(uow=deps.uow())


def drain_outbox(deps: Container) -> dict[str, Any]:
    return outbox.drain(uow=deps.uow(), handlers=deps.outbox_handlers, policy=deps.drain_policy())


def assess_tiers(deps: Container) -> dict[str, Any]:
    return tiers.assess_tiers(uow=deps.uow())


def purge_simulator_codes(deps: Container) -> dict[str, Any]:
    """Only when the app talks to the local simulator; never in front of real WeChat."""
    base = deps.config.wechat_api_base
    if not base or deps.config.is_production:
        return {"skipped": "no simulator configured"}
    answer = requests.post(base.rstrip("/") + "/sim/purge", timeout=5)
    answer.raise_for_status()
    return dict(answer.json())

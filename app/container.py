"""The process-wide collaborators, built once by ``create_app`` and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.members.ports import MiniProgramAuth
from app.messaging.adapters import NullMessenger
from app.messaging.ports import Messenger
from app.outbox.ports import Handler
from app.outbox.rules import DrainPolicy
from app.partners.services import PartnerCache
from app.uow import UnitOfWork


@dataclass
class Container:
    config: Config
    engine: Engine
    session_factory: sessionmaker[Session]
    redis: Any
    mp_auth: MiniProgramAuth
    messenger: Messenger = field(default_factory=NullMessenger)
    # What the outbox drain hands each event to (built by create_app from the messenger).
    outbox_handlers: tuple[Handler, ...] = ()
    # Per app: each worker process has its own, invalidated through Redis (see PartnerCache).
    partner_cache: PartnerCache = field(default_factory=PartnerCache)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def drain_policy(self) -> DrainPolicy:
        return DrainPolicy(
            batch_size=self.config.outbox_batch_size,
            lease_seconds=self.config.outbox_lease_seconds,
            max_attempts=self.config.outbox_max_attempts,
            backoff_seconds=self.config.outbox_backoff_seconds,
        )


def make_redis(config: Config) -> Any:
    if config.redis_url:
        # One immediate retry replaces a connection Redis dropped (a restart); more would
        # multiply the wait when Redis is down or hanging (redis-py's default is 10 tries).
        return redis.Redis.from_url(
            config.redis_url,
            decode_responses=True,
            socket_connect_timeout=config.redis_connect_timeout,
            socket_timeout=config.redis_socket_timeout,
            retry=Retry(NoBackoff(), 1),
        )
    if config.is_production:
        raise RuntimeError("production never uses the in-process Redis stand-in")
    return fakeredis.FakeRedis(decode_responses=True)

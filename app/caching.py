"""Rows that change rarely and are read by every hot request, kept per process.

Partner principals, the settings documents and the tier ladder are read by nearly every
till and order request and change a few times a year. Reading them from the database each
time is a large share of a cheap request's cost, so each process keeps them, and every
process drops them when they change:

- a change, once committed, increments a Redis counter (the cache's *epoch key*);
- each cache reads that counter at most every ``epoch_check_seconds`` (1 s) and drops
  everything when it moved, so every worker sees a change within that bound, for one
  Redis GET per second per worker;
- an entry never outlives ``ttl`` (30 s): the backstop should the counter not have been
  incremented (Redis unreachable at the moment of the change);
- an entry loaded under an older epoch is never served (a load that began before a
  change and ended after another request saw the change cannot bring the old value back).

Values kept here are shared by every request of the process: they must be immutable
(frozen dataclasses, tuples), or copied by whoever hands them out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from itertools import chain
from typing import Any, TypeVar

import redis as redis_lib
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app import writes

log = logging.getLogger(__name__)
T = TypeVar("T")

CACHE_SECONDS = 30.0
EPOCH_CHECK_SECONDS = 1.0
SESSION_KEY = "config_cache"
CONFIG_EPOCH_KEY = "config:epoch"


class EpochCache:
    """Values per process, invalidated across processes through a Redis epoch counter."""

    def __init__(
        self,
        epoch_key: str,
        *,
        ttl: float = CACHE_SECONDS,
        epoch_check_seconds: float = EPOCH_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch_key = epoch_key
        self.clock = clock
        self.ttl = ttl
        self.epoch_check_seconds = epoch_check_seconds
        self._entries: dict[Hashable, tuple[float, str | None, Any]] = {}
        self._epoch: str | None = None
        self._epoch_read_at: float | None = None
        self._lock = threading.Lock()

    def current_epoch(self, redis: Any | None, now: float) -> str | None:
        """The epoch as last read, read again when older than epoch_check_seconds."""
        with self._lock:
            fresh = (
                self._epoch_read_at is not None
                and now - self._epoch_read_at < self.epoch_check_seconds
            )
            if redis is None or fresh:
                return self._epoch
        epoch = redis.get(self.epoch_key)
        epoch = None if epoch is None else str(epoch)
        with self._lock:
            if epoch != self._epoch:
                self._entries.clear()
            self._epoch, self._epoch_read_at = epoch, now
        return epoch

    def get(self, key: Hashable, epoch: str | None, now: float) -> Any | None:
        with self._lock:
            cached = self._entries.get(key)
        if cached is None or cached[0] <= now or cached[1] != epoch:
            return None
        return cached[2]

    def put(self, key: Hashable, epoch: str | None, now: float, value: Any | None) -> None:
        """Keep ``value`` (None: forget the key; absent rows are read again)."""
        with self._lock:
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (now + self.ttl, epoch, value)

    def fetch(self, redis: Any | None, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value of ``key``, or ``load()``'s, kept for the next request."""
        now = self.clock()
        epoch = self.current_epoch(redis, now)
        cached = self.get(key, epoch, now)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        value = load()
        self.put(key, epoch, now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._epoch, self._epoch_read_at = None, None

    def announce_change(self, redis: Any | None) -> None:
        """Drop this process's entries and tell every other process to drop theirs."""
        self.clear()
        announce(redis, self.epoch_key)


def announce(redis: Any | None, epoch_key: str) -> None:
    """Move ``epoch_key`` so every process's cache of it drops what it holds. A Redis that
    does not answer is logged, not raised: the change is committed, and the caches' ttl
    bounds how long the old value is served."""
    if redis is None:
        return
    try:
        redis.incr(epoch_key)
    except redis_lib.exceptions.RedisError:
        log.warning("could not announce a change of %s: caches expire it by their ttl", epoch_key)


class ConfigCache:
    """The settings documents and the tier ladder, per process: a session factory built
    with ``install`` carries it in each session's ``info``, and any flush that writes a
    watched model (a settings document, a tier) announces the change once committed. A
    session without it (service tests, scripts) reads the database every time."""

    def __init__(
        self, redis: Any | None, watched: tuple[type[Any], ...], cache: EpochCache | None = None
    ) -> None:
        self.redis = redis
        self.watched = watched
        self.cache = cache or EpochCache(CONFIG_EPOCH_KEY)

    def fetch(self, key: Hashable, load: Callable[[], T]) -> T:
        try:
            return self.cache.fetch(self.redis, key, load)
        except redis_lib.exceptions.RedisError:
            return load()  # the database is the record; a dead Redis only costs the read

    def install(self, factory: sessionmaker[Session]) -> sessionmaker[Session]:
        factory.kw.setdefault("info", {})[SESSION_KEY] = self
        writes.FLUSH_WATCHED.update(self.watched)  # their writes must reach _note_writes
        event.listen(factory, "after_flush", self._note_writes)
        event.listen(factory, "after_commit", self._announce_writes)
        event.listen(factory, "after_soft_rollback", self._forget_writes)
        return factory

    def _touches(self, session: Session) -> bool:
        """Whether the session holds a new, changed or deleted watched row."""
        pending = chain(session.new, session.dirty, session.deleted)
        return any(isinstance(instance, self.watched) for instance in pending)

    def _note_writes(self, session: Session, _context: Any) -> None:
        if self._touches(session):
            session.info["config_written"] = True

    def _announce_writes(self, session: Session) -> None:
        if session.info.pop("config_written", False):
            self.cache.announce_change(self.redis)

    def _forget_writes(self, session: Session, _previous: Any) -> None:
        session.info.pop("config_written", None)

    def written_by(self, session: Session) -> bool:
        """Whether this transaction has changed a watched row (flushed or not yet): it
        must then read its own writes, not what the process holds."""
        return bool(session.info.get("config_written")) or self._touches(session)


def cached(session: Session, key: Hashable, load: Callable[[], T]) -> T:
    """``load()``'s value, from the process's ConfigCache when the session carries one
    (and has not changed the cached rows itself)."""
    cache: ConfigCache | None = session.info.get(SESSION_KEY)
    if cache is None or cache.written_by(session):
        return load()
    return cache.fetch(key, load)

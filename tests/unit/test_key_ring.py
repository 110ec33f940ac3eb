"""Partner secrets under the key ring, and the partner cache's cross-process invalidation."""

from __future__ import annotations

import fakeredis

from app.partners import rules
from app.partners.services import EPOCH_KEY, PartnerCache, PartnerPrincipal

OLD, NEW, OTHER = "o" * 40, "n" * 40, "x" * 40


def test_a_secret_encrypted_under_a_fallback_key_decrypts() -> None:
    token = rules.encrypt_secret(OLD, "s3cret")

    assert rules.decrypt_secret(NEW, token, (OLD,)) == "s3cret"
    assert rules.decrypt_secret(NEW, token) is None
    assert rules.decrypt_secret(NEW, token, (OTHER,)) is None


def test_reencrypt_moves_a_secret_under_the_current_key() -> None:
    token = rules.encrypt_secret(OLD, "s3cret")

    moved = rules.reencrypt_secret(NEW, token, (OLD,))

    assert moved is not None and moved != token
    assert rules.decrypt_secret(NEW, moved) == "s3cret"
    assert rules.decrypt_secret(OLD, moved) is None


def test_reencrypt_leaves_a_current_secret_as_it_is() -> None:
    token = rules.encrypt_secret(NEW, "s3cret")

    assert rules.reencrypt_secret(NEW, token, (OLD,)) == token


def test_reencrypt_answers_none_when_no_key_decrypts() -> None:
    assert rules.reencrypt_secret(NEW, rules.encrypt_secret(OTHER, "s"), (OLD,)) is None


PRINCIPAL = PartnerPrincipal(1, "POS", "hk_1", "secret")
KEY = ("hk_1", NEW)


def test_the_cache_drops_everything_when_the_epoch_moves() -> None:
    redis = fakeredis.FakeRedis(decode_responses=True)
    cache = PartnerCache(epoch_check_seconds=1.0)
    epoch = cache.current_epoch(redis, now=100.0)
    cache.put(KEY, epoch, 100.0, PRINCIPAL)

    redis.incr(EPOCH_KEY)

    # Within the check interval the cache still trusts the epoch it read ...
    assert cache.get(KEY, cache.current_epoch(redis, now=100.5), 100.5) == PRINCIPAL
    # ... and once it is due it reads the new one and serves nothing from before.
    assert cache.get(KEY, cache.current_epoch(redis, now=101.0), 101.0) is None


def test_an_entry_loaded_under_an_older_epoch_is_never_served() -> None:
    """A load that started before a change and finished after another request saw the
    change must not bring the old principal back."""
    redis = fakeredis.FakeRedis(decode_responses=True)
    cache = PartnerCache(epoch_check_seconds=0.0)
    started_under = cache.current_epoch(redis, now=1.0)
    redis.incr(EPOCH_KEY)
    now_epoch = cache.current_epoch(redis, now=2.0)

    cache.put(KEY, started_under, 2.0, PRINCIPAL)

    assert cache.get(KEY, now_epoch, 2.0) is None


def test_entries_expire_after_the_ttl_without_redis() -> None:
    cache = PartnerCache(ttl=30.0)
    cache.put(KEY, None, 0.0, PRINCIPAL)

    assert cache.get(KEY, cache.current_epoch(None, 29.0), 29.0) == PRINCIPAL
    assert cache.get(KEY, cache.current_epoch(None, 30.0), 30.0) is None

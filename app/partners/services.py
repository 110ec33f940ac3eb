"""Partner credentials: creation (audited) and the secret the signature check needs."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.admins.operations import Actor, record_change
from app.caching import CACHE_SECONDS, EPOCH_CHECK_SECONDS, EpochCache, announce
from app.errors import NotFound, ValidationFailed
from app.partners import locks, rules
from app.partners.models import Partner
from app.uow import UnitOfWork

EPOCH_KEY = "partners:epoch"


@dataclass(frozen=True)
class PartnerCredentials:
    partner_id: int
    app_key: str
    app_secret: str


def create_partner(
    *,
    uow: UnitOfWork,
    actor: Actor,
    name: str,
    secret_key: str,
    channels: Iterable[str] | None = None,
    trusted: bool = False,
) -> PartnerCredentials:
    """New credentials; the secret is shown once and stored encrypted. ``channels`` are the
    order channels it may post on (None: every channel); a ``trusted`` partner may spend
    points without the member's card QR code."""
    if not name.strip() or len(name) > 64:
        raise ValidationFailed("name must be 1 to 64 characters", field="name")
    allowed = None if channels is None else _channels(channels)
    app_key = "hk_" + secrets.token_hex(12)
    app_secret = secrets.token_urlsafe(32)
    with uow:
        partner = Partner(
            name=name.strip(),
            app_key=app_key,
            secret_encrypted=rules.encrypt_secret(secret_key, app_secret),
            channels=list(allowed) if allowed is not None else None,
            trusted=trusted,
        )
        uow.session.add(partner)
        uow.session.flush()
        record_change(
            uow.session,
            actor=actor,
            action="partner.create",
            target_type="partner",
            target_id=partner.id,
            before=None,
            after={
                "name": partner.name,
                "app_key": app_key,
                "channels": partner.channels,
                "trusted": trusted,
            },
        )
        uow.commit()
        return PartnerCredentials(partner.id, app_key, app_secret)


@dataclass(frozen=True)
class PartnerPrincipal:
    id: int
    name: str
    app_key: str
    app_secret: str
    channels: tuple[str, ...] | None = None  # None: every channel
    trusted: bool = False

    def may_use_channel(self, channel: str) -> bool:
        return rules.may_use_channel(self.channels, channel)


class PartnerCache(EpochCache):
    """Decrypted partner principals, per process (per app), invalidated across processes.

    A signed request needs the decrypted secret, and reading and decrypting it for every
    till request is most of a cheap request's cost, so principals are cached (app.caching).
    Every change to a partner (disable, rotate, re-encrypt) moves ``EPOCH_KEY`` once
    committed: a disabled partner or a rotated secret is refused on every worker within
    EPOCH_CHECK_SECONDS (1 s) of the change; ``ttl`` (30 s) is the backstop.
    """

    def __init__(
        self, ttl: float = CACHE_SECONDS, epoch_check_seconds: float = EPOCH_CHECK_SECONDS
    ) -> None:
        super().__init__(EPOCH_KEY, ttl=ttl, epoch_check_seconds=epoch_check_seconds)


_default_cache = PartnerCache()


def find_partner(
    *,
    uow: UnitOfWork,
    app_key: str,
    secret_key: str,
    fallback_keys: Sequence[str] = (),
    redis: Any | None = None,
    cache: PartnerCache | None = None,
) -> PartnerPrincipal | None:
    """The active partner with this app key and its secret, decrypted under the key ring.
    With ``redis``, changes made by any process are seen within EPOCH_CHECK_SECONDS."""
    cache = _default_cache if cache is None else cache
    entry = (app_key, secret_key)  # another SECRET_KEY (another app in tests) decrypts anew
    principal: PartnerPrincipal | None = cache.fetch(
        redis, entry, lambda: _load_partner(uow, app_key, secret_key, fallback_keys)
    )
    return principal


def forget_cached_partners() -> None:
    _default_cache.clear()


def _load_partner(
    uow: UnitOfWork, app_key: str, secret_key: str, fallback_keys: Sequence[str]
) -> PartnerPrincipal | None:
    with uow:
        partner = uow.session.scalars(
            select(Partner).where(Partner.app_key == app_key, Partner.active.is_(True))
        ).one_or_none()
        if partner is None:
            return None
        secret = rules.decrypt_secret(secret_key, partner.secret_encrypted, fallback_keys)
        if secret is None:
            return None
        channels = tuple(partner.channels) if partner.channels is not None else None
        return PartnerPrincipal(
            partner.id,
            partner.name,
            partner.app_key,
            secret,
            channels=channels,
            trusted=bool(partner.trusted),
        )


def announce_partner_change(redis: Any) -> None:
    """Tell every process's PartnerCache that partners changed (see PartnerCache)."""
    announce(redis, EPOCH_KEY)


@dataclass(frozen=True)
class PartnerSummary:
    """What operators see of a partner: never its secret."""

    id: int
    name: str
    app_key: str
    active: bool
    created_at: datetime
    channels: tuple[str, ...] | None  # None: every channel
    trusted: bool


def _summary(partner: Partner) -> PartnerSummary:
    return PartnerSummary(
        partner.id,
        partner.name,
        partner.app_key,
        partner.active,
        partner.created_at,
        tuple(partner.channels) if partner.channels is not None else None,
        bool(partner.trusted),
    )


def list_partners(*, uow: UnitOfWork) -> list[PartnerSummary]:
    with uow:
        return [_summary(p) for p in uow.session.scalars(select(Partner).order_by(Partner.id))]


def show_partner(*, uow: UnitOfWork, app_key_or_id: str) -> PartnerSummary:
    """One partner by app key or id (never its secret); NotFound when none has it."""
    with uow:
        return _summary(_partner_by_ref(uow, app_key_or_id, lock=False))


def _locked_partner(uow: UnitOfWork, app_key_or_id: str) -> Partner:
    return _partner_by_ref(uow, app_key_or_id, lock=True)


def _partner_by_ref(uow: UnitOfWork, app_key_or_id: str, *, lock: bool) -> Partner:
    ref = app_key_or_id.strip()
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        criterion = Partner.id == int(ref)
    else:
        criterion = Partner.app_key == ref
    if lock:
        partner = next(iter(locks.lock_partners(uow.session, criterion)), None)
    else:
        partner = uow.session.scalars(select(Partner).where(criterion)).one_or_none()
    if partner is None:
        raise NotFound("No partner has that app key or id.")
    return partner


def disable_partner(
    *, uow: UnitOfWork, redis: Any, actor: Actor, app_key_or_id: str
) -> PartnerSummary:
    """The partner's signed requests are refused from now on (audited); every process sees
    it within EPOCH_CHECK_SECONDS. Disabling a disabled partner changes nothing."""
    with uow:
        partner = _locked_partner(uow, app_key_or_id)
        if partner.active:
            partner.active = False
            record_change(
                uow.session,
                actor=actor,
                action="partner.disable",
                target_type="partner",
                target_id=partner.id,
                before={"app_key": partner.app_key, "active": True},
                after={"app_key": partner.app_key, "active": False},
            )
            uow.after_commit(lambda: announce_partner_change(redis))
        summary = _summary(partner)
        uow.commit()
        return summary


def rotate_partner_secret(
    *, uow: UnitOfWork, redis: Any, actor: Actor, app_key_or_id: str, secret_key: str
) -> PartnerCredentials:
    """A new secret (shown once, audited without it); the old one is refused on every
    process within EPOCH_CHECK_SECONDS."""
    with uow:
        partner = _locked_partner(uow, app_key_or_id)
        app_secret = secrets.token_urlsafe(32)
        partner.secret_encrypted = rules.encrypt_secret(secret_key, app_secret)
        record_change(
            uow.session,
            actor=actor,
            action="partner.rotate_secret",
            target_type="partner",
            target_id=partner.id,
            before={"app_key": partner.app_key},
            after={"app_key": partner.app_key},
        )
        uow.after_commit(lambda: announce_partner_change(redis))
        credentials = PartnerCredentials(partner.id, partner.app_key, app_secret)
        uow.commit()
        return credentials


EVERY_CHANNEL = "*"


def configure_partner(
    *,
    uow: UnitOfWork,
    redis: Any,
    actor: Actor,
    app_key_or_id: str,
    channels: Iterable[str] | None = None,
    trusted: bool | None = None,
) -> PartnerSummary:
    """Change what an existing partner may do (audited): ``channels`` (``["*"]`` for every
    channel) and whether it is ``trusted``; None leaves a setting as it is. Every process
    sees the change within EPOCH_CHECK_SECONDS."""
    allowed: list[str] | None = None
    if channels is not None:
        listed = [channel.strip() for channel in channels]
        allowed = None if listed == [EVERY_CHANNEL] else list(_channels(listed))
    with uow:
        partner = _locked_partner(uow, app_key_or_id)
        before = {"channels": partner.channels, "trusted": bool(partner.trusted)}
        if channels is not None:
            partner.channels = allowed
        if trusted is not None:
            partner.trusted = trusted
        after = {"channels": partner.channels, "trusted": bool(partner.trusted)}
        if after != before:
            record_change(
                uow.session,
                actor=actor,
                action="partner.configure",
                target_type="partner",
                target_id=partner.id,
                before={"app_key": partner.app_key, **before},
                after={"app_key": partner.app_key, **after},
            )
            uow.after_commit(lambda: announce_partner_change(redis))
        summary = _summary(partner)
        uow.commit()
        return summary


def _channels(channels: Iterable[str]) -> tuple[str, ...]:
    allowed = rules.clean_channels(channels)
    if allowed is None:
        raise ValidationFailed(
            "channels must be one or more lowercase channel codes: pos, tmall",
            field="channels",
        )
    return allowed


@dataclass(frozen=True)
class ReencryptReport:
    partners: int
    reencrypted: int
    unreadable: list[str]  # app keys no key of the ring decrypts


def reencrypt_partner_secrets(
    *, uow: UnitOfWork, redis: Any, secret_key: str, fallback_keys: Sequence[str]
) -> ReencryptReport:
    """Every partner secret encrypted under SECRET_KEY, from whichever key of the ring
    encrypted it, so that the fallback keys can be retired. Idempotent: a second run
    re-encrypts nothing."""
    with uow:
        rows = locks.lock_partners(uow.session)
        changed = 0
        unreadable: list[str] = []
        for partner in rows:
            token = rules.reencrypt_secret(secret_key, partner.secret_encrypted, fallback_keys)
            if token is None:
                unreadable.append(partner.app_key)
            elif token != partner.secret_encrypted:
                partner.secret_encrypted = token
                changed += 1
        if changed:
            uow.after_commit(lambda: announce_partner_change(redis))
        uow.commit()
        return ReencryptReport(len(rows), changed, unreadable)

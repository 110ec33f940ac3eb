"""Partner credentials: creation (audited) and the secret the signature check needs."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from app.admins.operations import Actor, record_change
from app.errors import ValidationFailed
from app.partners import rules
from app.partners.models import Partner
from app.uow import UnitOfWork


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
    allowed = None
    if channels is not None:
        allowed = rules.clean_channels(channels)
        if allowed is None:
            raise ValidationFailed(
                "channels must be one or more lowercase channel codes: pos, tmall",
                field="channels",
            )
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


# app_key -> (monotonic expiry, principal): a signed request needs the decrypted secret, and
# reading and decrypting it for every till request is most of a cheap request's cost. A
# disabled partner is refused within CACHE_SECONDS.
CACHE_SECONDS = 30.0
_cache: dict[tuple[str, str], tuple[float, PartnerPrincipal]] = {}
_cache_lock = threading.Lock()


def find_partner(*, uow: UnitOfWork, app_key: str, secret_key: str) -> PartnerPrincipal | None:
    now = time.monotonic()
    entry = (app_key, secret_key)  # another SECRET_KEY (another app in tests) decrypts anew
    with _cache_lock:
        cached = _cache.get(entry)
    if cached is not None and cached[0] > now:
        return cached[1]
    principal = _load_partner(uow, app_key, secret_key)
    with _cache_lock:
        if principal is None:
            _cache.pop(entry, None)
        else:
            _cache[entry] = (now + CACHE_SECONDS, principal)
    return principal


def forget_cached_partners() -> None:
    with _cache_lock:
        _cache.clear()


def _load_partner(uow: UnitOfWork, app_key: str, secret_key: str) -> PartnerPrincipal | None:
    with uow:
        partner = uow.session.scalars(
            select(Partner).where(Partner.app_key == app_key, Partner.active.is_(True))
        ).one_or_none()
        if partner is None:
            return None
        secret = rules.decrypt_secret(secret_key, partner.secret_encrypted)
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

"""Who is calling: mini-program bearer tokens, admin tokens, HMAC-signed partners."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app import clock
from app.admins import sessions as admin_sessions
from app.admins.models import ActorType, Role
from app.admins.operations import Actor
from app.errors import Forbidden, Unauthorized
from app.members import sessions as member_sessions
from app.partners import nonces
from app.partners import rules as signing
from app.partners import services as partner_services
from app.web.deps import container

F = TypeVar("F", bound=Callable[..., Any])
_MP_SALT = "huiyuan.mp-token.v1"
_ADMIN_SALT = "huiyuan.admin-token.v1"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    # The key ring, newest last: the newest signs, every key (SECRET_KEY_FALLBACKS) verifies.
    return URLSafeTimedSerializer(list(container().config.secret_keys), salt=salt)


def issue_member_token(member_id: int) -> str:
    """A signed, expiring token that names the internal member id and a new session."""
    session_id = member_sessions.open_session(uow=container().uow(), member_id=member_id)
    return _serializer(_MP_SALT).dumps({"m": member_id, "s": session_id})


def issue_admin_token(admin_id: int) -> str:
    session_id = admin_sessions.open_session(uow=container().uow(), admin_id=admin_id)
    return _serializer(_ADMIN_SALT).dumps({"a": admin_id, "s": session_id})


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


def _load_token(salt: str, field: str) -> tuple[int, int]:
    """The subject id and the session id a valid token names."""
    max_age = container().config.token_ttl_seconds
    try:
        data = _serializer(salt).loads(_bearer(), max_age=max_age)
    except SignatureExpired:
        raise Unauthorized("The token has expired; log in again.") from None
    except BadSignature:
        raise Unauthorized("The token is not valid.") from None
    value = data.get(field) if isinstance(data, dict) else None
    session_id = data.get("s") if isinstance(data, dict) else None
    if not isinstance(value, int) or not isinstance(session_id, int):
        raise Unauthorized("The token is not valid.")
    return value, session_id


def member_required(view: F) -> F:
    """A live member session: one primary-key read of member_sessions per request."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        member_id, session_id = _load_token(_MP_SALT, "m")
        if not member_sessions.session_is_live(
            uow=container().uow(), session_id=session_id, member_id=member_id
        ):
            raise Unauthorized("This session has ended; log in again.")
        g.member_id = member_id
        g.session_id = session_id
        g.principal_scope = f"mp:{g.member_id}"
        return view(*args, **kwargs)

    wrapper._auth = "member"  # type: ignore[attr-defined]
    return cast(F, wrapper)


def admin_required(*roles: Role) -> Callable[[F], F]:
    """Any signed-in admin when no roles are given, else one of those roles. The session
    and the account are read in one query: a logout, a revoked session or a disabled
    account is refused at once."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            admin_id, session_id = _load_token(_ADMIN_SALT, "a")
            admin = admin_sessions.active_admin_for_session(
                uow=container().uow(), session_id=session_id, admin_id=admin_id
            )
            if admin is None:
                raise Unauthorized("This session has ended or the account is disabled.")
            if roles and admin.role not in roles:
                raise Forbidden(f"This needs the role {' or '.join(roles)}.")
            g.admin = admin
            g.session_id = session_id
            g.principal_scope = f"admin:{admin.id}"
            return view(*args, **kwargs)

        wrapper._auth = "admin"  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def _raw_path() -> str:
    """The path and query exactly as the client sent them (the signature covers them)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def partner_required(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.partner = _verify_partner_signature()
        g.principal_scope = f"open:{g.partner.app_key}"
        return view(*args, **kwargs)

    wrapper._auth = "partner"  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _verify_partner_signature() -> partner_services.PartnerPrincipal:
    deps = container()
    headers = request.headers
    app_key, timestamp, nonce, signature = (
        headers.get(name, "") for name in ("X-App-Key", "X-Timestamp", "X-Nonce", "X-Signature")
    )
    if not (app_key and timestamp and nonce and signature):
        raise Unauthorized("X-App-Key, X-Timestamp, X-Nonce and X-Signature are required.")
    if (
        not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12)
        or len(nonce) > 64
    ):
        raise Unauthorized("X-Timestamp must be unix seconds and X-Nonce at most 64 chars.")
    window = deps.config.open_api_clock_skew_seconds
    now_ts = int(clock.now().timestamp())
    if abs(now_ts - int(timestamp)) > window:
        raise Unauthorized("X-Timestamp is outside the allowed window.", reason="stale_timestamp")
    partner = partner_services.find_partner(
        uow=deps.uow(),
        app_key=app_key,
        secret_key=deps.config.secret_key,
        fallback_keys=deps.config.secret_key_fallbacks,
        redis=deps.redis,
        cache=deps.partner_cache,
    )
    if partner is None:
        raise Unauthorized("Unknown app key.", reason="unknown_app_key")
    body = request.get_data(cache=True)
    expected = signing.sign(partner.app_secret, request.method, _raw_path(), timestamp, nonce, body)
    if not signing.signature_matches(expected, signature):
        raise Unauthorized("The signature does not match.", reason="bad_signature")
    if not nonces.claim_nonce(
        deps.redis, app_key=app_key, nonce=nonce, timestamp=int(timestamp), window=window
    ):
        raise Unauthorized("This nonce was already used.", reason="replayed_nonce")
    return partner


def current_actor() -> Actor:
    """The signed-in operator, as the audit log names them."""
    return Actor(type=ActorType.ADMIN, name=g.admin.username, id=g.admin.id)

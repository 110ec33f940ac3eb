"""The simulator's memory: tokens, codes, quotas, tags, contacts, faults and sent messages.

Nothing here knows HTTP. Every method takes the lock (re-entrant, so a view may hold it
across several calls to make them one step). Expired entries are ignored when read and
removed by ``purge``; time is read from ``time.time()`` on every call, so tests can move it.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

TokenKind = Literal["app", "corp"]

CODE_TTL = 300  # wx.login and phone-number codes
TOKEN_TTL = 7200
REPLACED_TOKEN_GRACE = 300  # WeChat keeps the previous token alive this long after a refresh
TEMPLATE_DEDUPE_TTL = 600  # client_msg_id on template sends
MASS_DEDUPE_TTL = 24 * 3600  # clientmsgid on mass sends


class WeChatError(Exception):
    """An answer in WeChat's own error shape: HTTP 200 with errcode and errmsg."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class Token:
    value: str
    kind: TokenKind
    owner: str  # appid or corp id
    expires_at: float


@dataclass
class LoginCode:
    openid: str
    unionid: str | None
    expires_at: float
    used: bool = False


@dataclass
class PhoneCode:
    phone: str
    country_code: str
    expires_at: float
    used: bool = False


@dataclass
class Fault:
    errcode: int
    remaining: int


@dataclass
class Contact:
    """A WeCom external contact and the staff members who added it (userid -> added at)."""

    external_userid: str
    name: str
    unionid: str | None
    followers: dict[str, int] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)  # userid -> corp tag ids


@dataclass
class CorpTag:
    tag_id: str
    name: str
    order: int
    create_time: int


@dataclass
class CorpTagGroup:
    group_id: str
    name: str
    order: int
    create_time: int
    tags: dict[str, CorpTag] = field(default_factory=dict)


def normalise_path(path: str) -> str:
    return "/" + path.split("?", 1)[0].strip().lstrip("/")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_openid() -> str:
    return "o" + secrets.token_urlsafe(20)[:27]


def new_session_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


class SimState:
    """Everything the simulator remembers; ``apps`` / ``corps`` map id -> accepted secret."""

    def __init__(
        self, apps: dict[str, str] | None = None, corps: dict[str, str] | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.apps = dict(apps or {})
        self.corps = dict(corps or {})
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, Token] = {}
            self.codes: dict[str, LoginCode] = {}
            self.phone_codes: dict[str, PhoneCode] = {}
            self.subscriptions: dict[tuple[str, str], int] = {}
            self.dedupe: dict[tuple[str, str], tuple[Any, float]] = {}
            self.faults: dict[str, Fault] = {}
            self.messages: list[dict[str, Any]] = []
            self.tags: dict[int, str] = {}
            self.user_tags: dict[str, set[int]] = {}
            self.contacts: dict[str, Contact] = {}
            self.tag_groups: dict[str, CorpTagGroup] = {}
            self._ids = itertools.count(1)
            self._tag_ids = itertools.count(100)  # 0-99 are WeChat's own

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def next_tag_id(self) -> int:
        with self.lock:
            return next(self._tag_ids)

    # credentials

    def check_app(self, appid: str | None, secret: str | None) -> str:
        if not appid or (self.apps and appid not in self.apps):
            raise WeChatError(40013, "invalid appid")
        if not secret or (self.apps and self.apps[appid] != secret):
            raise WeChatError(40125, "invalid appsecret")
        return appid

    def check_corp(self, corp_id: str | None, secret: str | None) -> str:
        if not corp_id or (self.corps and corp_id not in self.corps):
            raise WeChatError(40013, "invalid corpid")
        if not secret or (self.corps and self.corps[corp_id] != secret):
            raise WeChatError(40001, "invalid credential, secret is not valid")
        return corp_id

    # access tokens

    def issue_token(self, kind: TokenKind, owner: str, *, reuse: bool = False) -> Token:
        """A new token; the owner's older ones stay valid for a short grace, as on WeChat."""
        with self.lock:
            now = time.time()
            current = self._live_tokens(kind, owner, now)
            if reuse and current:
                return max(current, key=lambda t: t.expires_at)
            for old in current:
                old.expires_at = min(old.expires_at, now + REPLACED_TOKEN_GRACE)
            token = Token(secrets.token_urlsafe(48), kind, owner, now + TOKEN_TTL)
            self.tokens[token.value] = token
            return token

    def _live_tokens(self, kind: TokenKind, owner: str, now: float) -> list[Token]:
        return [
            t
            for t in self.tokens.values()
            if t.kind == kind and t.owner == owner and t.expires_at > now
        ]

    def require_token(self, value: str | None, kind: TokenKind) -> Token:
        # WeChat says 40001 for a token it does not know; WeCom says 40014.
        invalid = 40001 if kind == "app" else 40014
        with self.lock:
            token = self.tokens.get(value or "")
            if token is None or token.kind != kind:
                raise WeChatError(invalid, "invalid credential, access_token is invalid")
            if token.expires_at <= time.time():
                raise WeChatError(42001, "access_token expired")
            return token

    # single-use codes

    def new_login_code(self, openid: str, unionid: str | None) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = LoginCode(openid, unionid, time.time() + CODE_TTL)
        return code

    def redeem_login_code(self, code: str) -> LoginCode:
        with self.lock:
            return _redeem(self.codes, code)

    def new_phone_code(self, phone: str, country_code: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.phone_codes[code] = PhoneCode(phone, country_code, time.time() + CODE_TTL)
        return code

    def redeem_phone_code(self, code: str) -> PhoneCode:
        with self.lock:
            return _redeem(self.phone_codes, code)

    # subscribe-message quota

    def grant_subscription(self, openid: str, template_id: str, count: int) -> int:
        with self.lock:
            key = (openid, template_id)
            self.subscriptions[key] = self.subscriptions.get(key, 0) + count
            return self.subscriptions[key]

    def spend_subscription(self, openid: str, template_id: str) -> None:
        with self.lock:
            left = self.subscriptions.get((openid, template_id), 0)
            if left <= 0:
                raise WeChatError(43101, "user refuse to accept the msg")
            self.subscriptions[(openid, template_id)] = left - 1

    # WeCom external contacts

    def register_contact(
        self, userid: str, external_userid: str, unionid: str | None, name: str | None
    ) -> Contact:
        """A customer added by a staff member; registering again adds another follower."""
        with self.lock:
            contact = self.contacts.get(external_userid)
            if contact is None:
                contact = Contact(external_userid, name or external_userid, unionid)
                self.contacts[external_userid] = contact
            contact.unionid = unionid or contact.unionid
            contact.name = name or contact.name
            contact.followers.setdefault(userid, int(time.time()))
            contact.tags.setdefault(userid, set())
            return contact

    # idempotency keys

    def recall(self, scope: str, key: str) -> Any | None:
        with self.lock:
            entry = self.dedupe.get((scope, key))
            if entry is None or entry[1] <= time.time():
                return None
            return entry[0]

    def remember(self, scope: str, key: str, value: Any, ttl: float) -> None:
        with self.lock:
            self.dedupe[(scope, key)] = (value, time.time() + ttl)

    # faults

    def add_fault(self, path: str, errcode: int, times: int) -> Fault:
        with self.lock:
            fault = Fault(errcode, times)
            self.faults[normalise_path(path)] = fault
            return fault

    def take_fault(self, path: str) -> int | None:
        """The error to answer this call with, spending one of the fault's repetitions."""
        with self.lock:
            key = normalise_path(path)
            fault = self.faults.get(key)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.faults[key]
            return fault.errcode

    # what was sent

    def record(self, api: str, to: Any, payload: Any, sender: str) -> dict[str, Any]:
        with self.lock:
            message = {
                "seq": len(self.messages) + 1,
                "api": normalise_path(api),
                "to": to,
                "payload": payload,
                "from": sender,
                "at": now_iso(),
            }
            self.messages.append(message)
            return message

    def sent(self, api: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            wanted = normalise_path(api) if api else None
            return [dict(m) for m in self.messages if wanted is None or m["api"] == wanted]

    # housekeeping

    def purge(self) -> dict[str, int]:
        """Drop expired codes, tokens and idempotency keys; count what went."""
        with self.lock:
            now = time.time()
            counts = {
                "codes": _drop_expired(self.codes, now),
                "phone_codes": _drop_expired(self.phone_codes, now),
                "tokens": _drop_expired(self.tokens, now),
            }
            for key in [k for k, (_, until) in self.dedupe.items() if until <= now]:
                del self.dedupe[key]
            return counts


SingleUse = TypeVar("SingleUse", LoginCode, PhoneCode)


def _redeem(codes: dict[str, SingleUse], code: str) -> SingleUse:
    entry = codes.get(code)
    if entry is None or entry.expires_at <= time.time():
        raise WeChatError(40029, "invalid code")
    if entry.used:
        raise WeChatError(40163, "code been used")
    entry.used = True
    return entry


def _drop_expired(entries: dict[str, Any], now: float) -> int:
    expired = [key for key, entry in entries.items() if entry.expires_at <= now]
    for key in expired:
        del entries[key]
    return len(expired)

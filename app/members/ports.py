"""What the members context needs from the mini-program platform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MiniProgramSession:
    openid: str
    session_key: str
    unionid: str | None


@dataclass(frozen=True)
class PhoneNumber:
    pure_phone_number: str  # without country code, e.g. "13800138000"
    country_code: str  # e.g. "86"


class MiniProgramAuth(Protocol):
    """Exchanges the codes a mini-program gets from WeChat.

    Both methods raise ``app.wechat.errors.WeChatCallFailed`` on any failure.
    """

    def code_to_session(self, code: str) -> MiniProgramSession: ...

    def phone_number(self, code: str) -> PhoneNumber: ...

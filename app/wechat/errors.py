"""WeChat error codes and their classes (see shared spec WECHAT.md).

Adapters turn every wechatpy or HTTP failure into :class:`WeChatCallFailed`;
nothing from wechatpy leaks past them.
"""

from __future__ import annotations

from enum import StrEnum


class WeChatErrorKind(StrEnum):
    TOKEN = "token"  # refresh the access token once, retry once
    RECIPIENT = "recipient"  # permanent for this recipient: mark, skip
    MESSAGE = "message"  # permanent for this message: fail loudly
    QUOTA = "quota"  # stop the channel until the quota resets
    TRANSIENT = "transient"  # retry with backoff
    INVALID_CODE = "invalid_code"  # a login / phone code that is bad, used or expired
    OTHER = "other"


_KINDS: dict[int, WeChatErrorKind] = {
    40001: WeChatErrorKind.TOKEN,
    40014: WeChatErrorKind.TOKEN,
    42001: WeChatErrorKind.TOKEN,
    43004: WeChatErrorKind.RECIPIENT,
    43101: WeChatErrorKind.RECIPIENT,
    40003: WeChatErrorKind.RECIPIENT,
    45015: WeChatErrorKind.RECIPIENT,
    47003: WeChatErrorKind.MESSAGE,
    40037: WeChatErrorKind.MESSAGE,
    45009: WeChatErrorKind.QUOTA,
    45011: WeChatErrorKind.QUOTA,
    45047: WeChatErrorKind.QUOTA,
    45028: WeChatErrorKind.QUOTA,
    -1: WeChatErrorKind.TRANSIENT,
    40029: WeChatErrorKind.INVALID_CODE,
    40163: WeChatErrorKind.INVALID_CODE,
    40226: WeChatErrorKind.INVALID_CODE,
}


def classify(errcode: int) -> WeChatErrorKind:
    return _KINDS.get(errcode, WeChatErrorKind.OTHER)


class WeChatCallFailed(Exception):
    """A WeChat API call that did not succeed, with WeChat's own code."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.kind = classify(errcode)

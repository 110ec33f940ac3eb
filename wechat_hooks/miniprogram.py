"""The mini-program adapter: exchanges ``wx.login`` and phone-number codes with WeChat."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from app.members.ports import MiniProgramSession, PhoneNumber
from app.wechat.errors import WeChatCallFailed
from wechat_hooks.clients import TRANSPORT_ERRCODE, call_with_token_retry, expect_dict

PHONE_NUMBER_ENDPOINT = "wxa/business/getuserphonenumber"


class WeChatMiniProgramAuth:
    """Implements ``app.members.ports.MiniProgramAuth`` with a wechatpy ``WeChatClient``.

    Build the client with ``wechat_hooks.clients.make_wechat_client`` so that token
    errors are retried once, not recursively, and ``api_base`` is honoured.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def code_to_session(self, code: str) -> MiniProgramSession:
        result = self._call(lambda: self._client.wxa.code_to_session(code))
        return MiniProgramSession(
            openid=_required(result, "openid"),
            session_key=_required(result, "session_key"),
            unionid=result.get("unionid") or None,
        )

    def phone_number(self, code: str) -> PhoneNumber:
        result = self._call(self._phone_request(code))
        info = result.get("phone_info")
        if not isinstance(info, dict):
            raise WeChatCallFailed(TRANSPORT_ERRCODE, "phone number answer without phone_info")
        return PhoneNumber(
            pure_phone_number=_required(info, "purePhoneNumber"),
            # The documented example gives countryCode as a number, the field table as a string.
            country_code=_required(info, "countryCode"),
        )

    def _phone_request(self, code: str) -> Callable[[], Any]:
        # Not in wechatpy 1.8.18. client.post prefixes the client's own base, which ends
        # in cgi-bin/; this endpoint sits beside it, under the wxa group's base.
        return partial(
            self._client.post,
            PHONE_NUMBER_ENDPOINT,
            data={"code": code},
            api_base_url=self._client.wxa.API_BASE_URL,
        )

    def _call(self, fn: Callable[[], Any]) -> dict[str, Any]:
        return expect_dict(call_with_token_retry(self._client, fn))


def _required(result: dict[str, Any], key: str) -> str:
    value = result.get(key)
    if value is None or value == "":
        raise WeChatCallFailed(TRANSPORT_ERRCODE, f"WeChat answer lacks {key}")
    return str(value)

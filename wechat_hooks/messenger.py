"""The WeChat adapter of ``app.messaging.ports.Messenger``: mini-program subscribe messages.

A subscribe message needs the member's consent (``wx.requestSubscribeMessage``) for each
send; without one WeChat answers 43101, a recipient error the handler records as skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.messaging.ports import Notice, NoticeKind, SendResult, SendStatus
from wechat_hooks.clients import call_with_token_retry, expect_dict

# Each notice's fields laid out on the template's typed keys (WECHAT.md: thing ≤ 20 chars,
# number, date). The template configured for the kind must have these keys.
LAYOUTS: Mapping[NoticeKind, Callable[[dict[str, str]], dict[str, str]]] = {
    NoticeKind.POINTS_EXPIRING: lambda f: {
        "number1": f["points"],
        "date2": f["expires_on"],
        "thing3": "积分即将过期，请尽快使用",
    },
}


class WeChatMessenger:
    def __init__(
        self, client: Any, templates: Mapping[NoticeKind, str | None], page: str | None = None
    ) -> None:
        self._client = client
        self._templates = templates
        self._page = page

    def send(self, notice: Notice) -> SendResult:
        template_id = self._templates.get(notice.kind)
        if not template_id:
            return SendResult(SendStatus.SKIPPED, f"no template for {notice.kind}")
        data = {key: {"value": value} for key, value in LAYOUTS[notice.kind](notice.fields).items()}
        answer = expect_dict(
            call_with_token_retry(
                self._client,
                lambda: self._client.wxa.send_subscribe_message(
                    notice.openid, template_id, data, page=self._page
                ),
            )
        )
        return SendResult(SendStatus.SENT, f"msgid {answer.get('msgid', '')}".strip())

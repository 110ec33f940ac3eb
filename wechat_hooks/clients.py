"""wechatpy clients built the way this service needs them, and the one retry rule.

wechatpy 1.8.18 scatters WeChat's hosts: ``API_BASE_URL`` on each client class, another
on several API groups (``client.wxa`` among them), full URLs inside some methods and in
``fetch_access_token``. Rather than chase each one, every client here sends its traffic
through one HTTP session that rewrites any URL onto ``api_base`` when one is given, so
nothing can slip past to the real hosts while the simulator stands in for WeChat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import wechatpy
import wechatpy.enterprise
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from app.wechat.errors import WeChatCallFailed

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 5.0
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
TRANSPORT_ERRCODE = -1  # what WeChat itself answers for "system busy": retry later

# One lock for every client: refreshes are rare, and serialising them is what makes
# concurrent token errors cost one refresh instead of one each.
_refresh_lock = threading.Lock()


class _WeChatHttp(requests.Session):
    """Adds a default timeout (wechatpy sets none on token fetches) and reroutes to api_base."""

    def __init__(self, timeout: float, api_base: str | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._api_base = _normalise_base(api_base) if api_base else None

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        text = url.decode() if isinstance(url, bytes) else url
        return super().request(method, self.route(text), *args, **kwargs)

    def route(self, url: str) -> str:
        if self._api_base is None or url.startswith(self._api_base):
            return url
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        return f"{self._api_base}{parts.path.lstrip('/')}{query}"


def _normalise_base(api_base: str) -> str:
    return api_base.rstrip("/") + "/"


def _session_storage(redis: Any | None, key_prefix: str) -> Any:
    # With Redis every process uses the one token; separate copies would revoke each other.
    return RedisStorage(redis, prefix=key_prefix) if redis is not None else MemoryStorage()


def make_wechat_client(
    appid: str,
    secret: str,
    *,
    api_base: str | None = None,
    redis: Any | None = None,
    key_prefix: str = "wechat",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> wechatpy.WeChatClient:
    """A client for a mini-program or an official account (same API family)."""
    client = wechatpy.WeChatClient(
        appid,
        secret,
        session=_session_storage(redis, key_prefix),
        timeout=timeout,
        auto_retry=False,  # 1.8.18 retries token errors by unbounded recursion
    )
    client._http = _WeChatHttp(timeout, api_base)
    return client


def make_wecom_client(
    corp_id: str,
    secret: str,
    *,
    api_base: str | None = None,
    redis: Any | None = None,
    key_prefix: str = "wecom",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> wechatpy.enterprise.WeChatClient:
    """A WeCom (企业微信) client for one application secret."""
    client = wechatpy.enterprise.WeChatClient(
        corp_id,
        secret,
        session=_session_storage(redis, key_prefix),
        timeout=timeout,
        auto_retry=False,
    )
    client._http = _WeChatHttp(timeout, api_base)
    return client


def call_with_token_retry(client: Any, fn: Callable[[], T]) -> T:
    """Run ``fn``; after a token error refresh the token once and run it once more.

    Every wechatpy or transport failure leaves as ``WeChatCallFailed``.
    """
    used_token = _stored_token(client)
    try:
        return translate_errors(fn)
    except WeChatCallFailed as failure:
        if failure.errcode not in TOKEN_ERRCODES:
            raise
    _refresh_token(client, used_token)
    return translate_errors(fn)


def translate_errors(fn: Callable[[], T]) -> T:
    """Run ``fn`` with wechatpy and requests errors turned into ``WeChatCallFailed``."""
    try:
        return fn()
    except WeChatClientException as exc:
        raise WeChatCallFailed(_errcode_of(exc), _errmsg_of(exc)) from exc
    except requests.RequestException as exc:
        raise WeChatCallFailed(TRANSPORT_ERRCODE, f"{type(exc).__name__}: {exc}") from exc


def _refresh_token(client: Any, used_token: str | None) -> None:
    with _refresh_lock:
        # Another thread (or process, through Redis) may have refreshed while we waited;
        # its token is the one to retry with, and refreshing again would revoke it.
        if used_token is None or _stored_token(client) == used_token:
            translate_errors(client.fetch_access_token)


def _stored_token(client: Any) -> str | None:
    token = client.session.get(client.access_token_key)
    return str(token) if token else None


def _errcode_of(exc: WeChatClientException) -> int:
    # wechatpy leaves errcode None when the HTTP status itself was an error.
    try:
        return int(exc.errcode)
    except (TypeError, ValueError):
        return TRANSPORT_ERRCODE


def _errmsg_of(exc: WeChatClientException) -> str:
    if exc.errcode is None and getattr(exc, "response", None) is not None:
        return f"HTTP {exc.response.status_code}"
    return str(exc.errmsg if exc.errmsg is not None else exc)


def expect_dict(result: Any) -> dict[str, Any]:
    """wechatpy hands back the raw response when the body is not JSON; treat that as transient."""
    if not isinstance(result, dict):
        raise WeChatCallFailed(TRANSPORT_ERRCODE, "WeChat answered something other than JSON")
    return result

"""The mini-program adapter and the client plumbing, over real HTTP to the simulator."""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest
import time_machine

from app.members.ports import MiniProgramAuth, PhoneNumber
from app.wechat.errors import WeChatCallFailed, WeChatErrorKind
from wechat_hooks.clients import call_with_token_retry, make_wechat_client
from wechat_hooks.miniprogram import WeChatMiniProgramAuth
from wechat_hooks.simulator import SimulatorServer


@pytest.fixture
def auth(mp_client: Any) -> WeChatMiniProgramAuth:
    return WeChatMiniProgramAuth(mp_client)


def _failure(fn: Any, *args: Any) -> WeChatCallFailed:
    with pytest.raises(WeChatCallFailed) as caught:
        fn(*args)
    return caught.value


def _tokens_issued(sim: SimulatorServer) -> int:
    return len(sim.state.tokens)


def test_the_adapter_satisfies_the_port(auth: WeChatMiniProgramAuth) -> None:
    port: MiniProgramAuth = auth
    assert port is auth


def test_a_login_code_works_once(auth: WeChatMiniProgramAuth, control: Any) -> None:
    code = control.login_code("o-alice")

    session = auth.code_to_session(code)

    assert session.openid == "o-alice"
    assert session.unionid is None
    assert len(session.session_key) == 24  # base64 of 16 bytes, as WeChat's
    failure = _failure(auth.code_to_session, code)
    assert failure.errcode == 40163
    assert failure.kind is WeChatErrorKind.INVALID_CODE


def test_unionid_is_passed_through(auth: WeChatMiniProgramAuth, control: Any) -> None:
    session = auth.code_to_session(control.login_code("o-bob", unionid="u-bob"))

    assert (session.openid, session.unionid) == ("o-bob", "u-bob")


def test_an_unknown_code_is_40029(auth: WeChatMiniProgramAuth) -> None:
    failure = _failure(auth.code_to_session, "never-issued")

    assert failure.errcode == 40029
    assert failure.kind is WeChatErrorKind.INVALID_CODE


def test_a_code_expires_after_five_minutes(auth: WeChatMiniProgramAuth, control: Any) -> None:
    code = control.login_code("o-carol")

    with time_machine.travel(time.time() + 301):
        failure = _failure(auth.code_to_session, code)

    assert failure.errcode == 40029


def test_a_generated_openid_comes_back(auth: WeChatMiniProgramAuth, control: Any) -> None:
    issued = control.post("sim/mp/codes", {})

    assert issued["openid"].startswith("o")
    assert auth.code_to_session(issued["code"]).openid == issued["openid"]


def test_a_phone_code_gives_the_number_once(auth: WeChatMiniProgramAuth, control: Any) -> None:
    code = control.post("sim/mp/phone-codes", {"phone": "13800138000"})["code"]

    assert auth.phone_number(code) == PhoneNumber(
        pure_phone_number="13800138000", country_code="86"
    )
    assert _failure(auth.phone_number, code).errcode == 40163
    assert _failure(auth.phone_number, "never-issued").errcode == 40029


def test_a_foreign_phone_number_keeps_its_country_code(
    auth: WeChatMiniProgramAuth, control: Any
) -> None:
    code = control.post("sim/mp/phone-codes", {"phone": "91234567", "country_code": "852"})["code"]

    assert auth.phone_number(code) == PhoneNumber("91234567", "852")


def test_an_outage_of_the_token_endpoint_is_transient_then_clears(
    auth: WeChatMiniProgramAuth, control: Any
) -> None:
    control.fault("/cgi-bin/token", -1, times=2)
    code = control.login_code("o-dave")

    for _ in range(2):
        failure = _failure(auth.code_to_session, code)
        assert (failure.errcode, failure.kind) == (-1, WeChatErrorKind.TRANSIENT)
        assert failure.errmsg == "HTTP 500"

    assert auth.code_to_session(code).openid == "o-dave"


def test_a_fault_on_jscode2session_leaves_the_code_unspent(
    auth: WeChatMiniProgramAuth, control: Any
) -> None:
    control.fault("sns/jscode2session", 45011, times=1)
    code = control.login_code("o-erin")

    failure = _failure(auth.code_to_session, code)

    assert (failure.errcode, failure.kind) == (45011, WeChatErrorKind.QUOTA)
    assert auth.code_to_session(code).openid == "o-erin"


def test_one_token_error_refreshes_once_and_succeeds(
    auth: WeChatMiniProgramAuth, mp_client: Any, control: Any, sim: SimulatorServer
) -> None:
    first_token = mp_client.access_token
    control.fault("/wxa/business/getuserphonenumber", 40001, times=1)
    code = control.post("sim/mp/phone-codes", {"phone": "13900139000"})["code"]

    assert auth.phone_number(code).pure_phone_number == "13900139000"
    assert mp_client.access_token != first_token
    assert _tokens_issued(sim) == 2


def test_a_persisting_token_error_fails_after_one_refresh(
    auth: WeChatMiniProgramAuth, mp_client: Any, control: Any, sim: SimulatorServer
) -> None:
    mp_client.fetch_access_token()
    control.fault("/sns/jscode2session", 42001, times=2)

    failure = _failure(auth.code_to_session, control.login_code())

    assert (failure.errcode, failure.kind) == (42001, WeChatErrorKind.TOKEN)
    assert _tokens_issued(sim) == 2


def test_call_with_token_retry_passes_other_errors_straight_through(
    mp_client: Any, control: Any, sim: SimulatorServer
) -> None:
    mp_client.fetch_access_token()
    control.fault("/cgi-bin/message/template/send", 47003, times=1)
    send = lambda: mp_client.message.send_template("o-x", "tpl", {"k": {"value": "v"}})  # noqa: E731

    failure = _failure(call_with_token_retry, mp_client, send)

    assert (failure.errcode, failure.kind) == (47003, WeChatErrorKind.MESSAGE)
    assert _tokens_issued(sim) == 1
    assert call_with_token_retry(mp_client, send)["errcode"] == 0


def test_a_wrong_secret_is_40125(sim: SimulatorServer) -> None:
    client = make_wechat_client("wx-test-mp", "wrong", api_base=sim.base_url)

    failure = _failure(WeChatMiniProgramAuth(client).code_to_session, "any")

    assert failure.errcode == 40125


def test_an_unreachable_wechat_is_transient(sim: SimulatorServer) -> None:
    client = make_wechat_client("wx-test-mp", "mp-secret", api_base=sim.base_url, timeout=1)
    sim.stop()

    failure = _failure(WeChatMiniProgramAuth(client).code_to_session, "any")

    assert (failure.errcode, failure.kind) == (-1, WeChatErrorKind.TRANSIENT)
    assert "ConnectionError" in failure.errmsg


def test_processes_sharing_redis_share_one_token(sim: SimulatorServer, control: Any) -> None:
    redis = fakeredis.FakeRedis()
    first = make_wechat_client("wx-test-mp", "mp-secret", api_base=sim.base_url, redis=redis)
    second = make_wechat_client("wx-test-mp", "mp-secret", api_base=sim.base_url, redis=redis)

    WeChatMiniProgramAuth(first).code_to_session(control.login_code("o-1"))
    WeChatMiniProgramAuth(second).code_to_session(control.login_code("o-2"))

    assert _tokens_issued(sim) == 1
    assert redis.get("wechat:wx-test-mp_access_token") is not None
    assert 7100 < redis.ttl("wechat:wx-test-mp_access_token") <= 7200


def test_every_wechat_host_is_rerouted_to_the_api_base() -> None:
    client = make_wechat_client("wx", "s", api_base="http://127.0.0.1:9/base")
    route = client._http.route

    assert route("https://api.weixin.qq.com/cgi-bin/token?a=1") == (
        "http://127.0.0.1:9/base/cgi-bin/token?a=1"
    )
    assert route("https://qyapi.weixin.qq.com/cgi-bin/gettoken") == (
        "http://127.0.0.1:9/base/cgi-bin/gettoken"
    )
    assert route("http://127.0.0.1:9/base/sns/x") == "http://127.0.0.1:9/base/sns/x"


def test_without_an_api_base_urls_are_left_alone() -> None:
    client = make_wechat_client("wx", "s")

    assert client._http.route("https://api.weixin.qq.com/x") == "https://api.weixin.qq.com/x"
    assert client.auto_retry is False
    assert client.timeout == 5.0

"""The WeChat simulator, driven by the production wechatpy clients over real HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import time_machine

from app.wechat.errors import WeChatCallFailed, WeChatErrorKind
from wechat_hooks.clients import call_with_token_retry, make_wechat_client, translate_errors
from wechat_hooks.simulator import SimulatorServer

TEMPLATE = "/cgi-bin/message/template/send"
MASS = "/cgi-bin/message/mass/sendall"


def _call(client: Any, fn: Any) -> Any:
    return call_with_token_retry(client, fn)


def _failure(client: Any, fn: Any) -> WeChatCallFailed:
    with pytest.raises(WeChatCallFailed) as caught:
        call_with_token_retry(client, fn)
    return caught.value


def _raw(sim: SimulatorServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, sim.base_url + path.lstrip("/"), timeout=5, **kwargs)


# tokens


def test_a_token_is_issued_for_known_credentials_only(sim: SimulatorServer) -> None:
    params = {"grant_type": "client_credential", "appid": "wx-test-oa", "secret": "oa-secret"}

    issued = _raw(sim, "GET", "cgi-bin/token", params=params).json()
    bad_appid = _raw(sim, "GET", "cgi-bin/token", params=params | {"appid": "wx-other"}).json()
    bad_secret = _raw(sim, "GET", "cgi-bin/token", params=params | {"secret": "x"}).json()

    assert issued["expires_in"] == 7200 and len(issued["access_token"]) > 32
    assert bad_appid["errcode"] == 40013
    assert bad_secret["errcode"] == 40125


def test_a_token_expires_after_two_hours(sim: SimulatorServer, oa_client: Any) -> None:
    token = oa_client.access_token
    send = {"touser": "o-a", "msgtype": "text", "text": {"content": "hi"}}
    url = "cgi-bin/message/custom/send"

    with time_machine.travel(time.time() + 7201):
        expired = _raw(sim, "POST", url, params={"access_token": token}, json=send).json()
        unknown = _raw(sim, "POST", url, params={"access_token": "nope"}, json=send).json()
        # The client notices the expiry itself and fetches a new token.
        assert _call(oa_client, lambda: oa_client.message.send_text("o-a", "hi"))["errcode"] == 0

    assert expired["errcode"] == 42001
    assert unknown["errcode"] == 40001
    assert oa_client.access_token != token


def test_stable_token_reuses_the_live_token_unless_forced(sim: SimulatorServer) -> None:
    body = {"grant_type": "client_credential", "appid": "wx-test-mp", "secret": "mp-secret"}

    first = _raw(sim, "POST", "cgi-bin/stable_token", json=body).json()
    again = _raw(sim, "POST", "cgi-bin/stable_token", json=body).json()
    forced = _raw(sim, "POST", "cgi-bin/stable_token", json=body | {"force_refresh": True}).json()

    assert first["access_token"] == again["access_token"] != forced["access_token"]


def test_a_wecom_token_does_not_open_wechat_endpoints(
    sim: SimulatorServer, wecom_client: Any
) -> None:
    wecom_client.fetch_access_token()
    token = wecom_client.access_token

    answer = _raw(sim, "GET", "cgi-bin/tags/get", params={"access_token": token}).json()

    assert answer["errcode"] == 40001


# template messages


def test_a_template_send_is_recorded(oa_client: Any, control: Any) -> None:
    data = {"thing1": {"value": "会员积分变动"}, "character_string2": {"value": "A" * 32}}

    answer = _call(oa_client, lambda: oa_client.message.send_template("o-a", "tpl-1", data))

    [message] = control.messages(TEMPLATE)
    assert answer["errcode"] == 0 and isinstance(answer["msgid"], int)
    assert message["seq"] == 1 and message["to"] == "o-a"
    assert message["payload"]["data"] == data
    assert message["at"].endswith("+00:00")


def test_a_template_value_over_20_characters_is_47003(oa_client: Any, control: Any) -> None:
    data = {"thing1": {"value": "一" * 21}}

    failure = _failure(oa_client, lambda: oa_client.message.send_template("o-a", "tpl-1", data))

    assert (failure.errcode, failure.kind) == (47003, WeChatErrorKind.MESSAGE)
    assert control.messages() == []


def test_client_msg_id_dedupes_template_sends(oa_client: Any, control: Any) -> None:
    # 1.8.18's send_template has no client_msg_id, hence the raw post.
    body = {"touser": "o-a", "template_id": "tpl", "data": {"k": {"value": "v"}}}
    body["client_msg_id"] = "run-7:member-1"
    send = lambda: oa_client.post("message/template/send", data=body)  # noqa: E731

    first, again = _call(oa_client, send), _call(oa_client, send)

    assert first["msgid"] == again["msgid"]
    assert len(control.messages(TEMPLATE)) == 1


# subscribe messages


def test_a_subscribe_send_needs_one_consent_per_message(mp_client: Any, control: Any) -> None:
    data = {"thing1": {"value": "积分到账"}}
    send = lambda: mp_client.wxa.send_subscribe_message("o-a", "sub-tpl", data)  # noqa: E731

    assert _failure(mp_client, send).errcode == 43101
    control.post("sim/mp/subscriptions", {"openid": "o-a", "template_id": "sub-tpl"})
    assert _call(mp_client, send)["errcode"] == 0
    failure = _failure(mp_client, send)

    assert (failure.errcode, failure.kind) == (43101, WeChatErrorKind.RECIPIENT)
    [message] = control.messages("cgi-bin/message/subscribe/send")
    assert message["to"] == "o-a" and message["payload"]["template_id"] == "sub-tpl"


# tags and mass sends


def _tag(oa_client: Any, name: str, *openids: str) -> int:
    tag_id = int(_call(oa_client, lambda: oa_client.tag.create(name))["id"])
    if openids:
        _call(oa_client, lambda: oa_client.tag.tag_user(tag_id, list(openids)))
    return tag_id


def test_tags_are_created_listed_and_attached(oa_client: Any, control: Any) -> None:
    vip = _tag(oa_client, "VIP", "o-a", "o-b")
    _tag(oa_client, "Gold", "o-a")
    _call(oa_client, lambda: oa_client.tag.untag_user(vip, "o-b"))

    tags = _call(oa_client, oa_client.tag.get)
    user_tags = _call(oa_client, lambda: oa_client.tag.get_user_tag("o-a"))

    assert [(t["name"], t["count"]) for t in tags] == [("VIP", 1), ("Gold", 1)]
    assert user_tags == [vip, vip + 1]
    assert [m["to"] for m in control.messages()] == [["o-a", "o-b"], ["o-a"], ["o-b"]]


def test_tag_limits(oa_client: Any, sim: SimulatorServer) -> None:
    vip = _tag(oa_client, "VIP")
    too_many = [f"o-{i}" for i in range(51)]
    sim.state.tags.update({1000 + i: f"t{i}" for i in range(20)})
    sim.state.user_tags["o-full"] = {1000 + i for i in range(20)}

    assert _failure(oa_client, lambda: oa_client.tag.tag_user(vip, too_many)).errcode == 40032
    assert _failure(oa_client, lambda: oa_client.tag.tag_user(vip, "o-full")).errcode == 45059
    assert _failure(oa_client, lambda: oa_client.tag.create("会员" * 6)).errcode == 45158
    assert _failure(oa_client, lambda: oa_client.tag.create("VIP")).errcode == 45157
    sim.state.tags.update({2000 + i: f"n{i}" for i in range(79)})
    assert _failure(oa_client, lambda: oa_client.tag.create("one more")).errcode == 45056
    assert _failure(oa_client, lambda: oa_client.tag.tag_user(9, "o-a")).errcode == 45159


def test_a_mass_send_by_tag_reaches_the_tagged_and_dedupes(oa_client: Any, control: Any) -> None:
    vip = _tag(oa_client, "VIP", "o-b", "o-a")
    body = {
        "filter": {"is_to_all": False, "tag_id": vip},
        "msgtype": "text",
        "text": {"content": "双十一会员日"},
        "clientmsgid": "campaign-3",
    }
    send = lambda: oa_client.post("message/mass/sendall", data=body)  # noqa: E731

    answer = _call(oa_client, send)
    repeat = _failure(oa_client, send)

    assert answer["errmsg"] == "send job submission success"
    assert isinstance(answer["msg_id"], int) and isinstance(answer["msg_data_id"], int)
    assert repeat.errcode == 45065
    [message] = control.messages(MASS)
    assert message["to"] == ["o-a", "o-b"]
    assert message["payload"]["text"]["content"] == "双十一会员日"


def test_a_mass_send_by_group_id_is_refused(oa_client: Any) -> None:
    vip = _tag(oa_client, "VIP", "o-a")

    # What 1.8.18's own send_mass_text sends: filter.group_id.
    failure = _failure(oa_client, lambda: oa_client.message.send_mass_text(vip, "hi"))

    assert failure.errcode == 40050


def test_a_custom_message_is_recorded(oa_client: Any, control: Any) -> None:
    _call(oa_client, lambda: oa_client.message.send_text("o-a", "您的积分：120"))

    [message] = control.messages("/cgi-bin/message/custom/send")
    assert message["to"] == "o-a"
    assert message["payload"]["text"] == {"content": "您的积分：120"}


# WeCom


def _contacts(control: Any) -> None:
    control.post(
        "sim/wecom/contacts",
        {"userid": "staff-1", "external_userid": "wm-a", "unionid": "u-a", "name": "Ann"},
    )
    control.post("sim/wecom/contacts", {"userid": "staff-2", "external_userid": "wm-b"})


def test_wecom_external_contacts(wecom_client: Any, control: Any) -> None:
    _contacts(control)
    contacts = wecom_client.external_contact

    listed = _call(wecom_client, lambda: contacts.list("staff-1"))
    detail = _call(wecom_client, lambda: contacts.get("wm-a"))

    assert listed["external_userid"] == ["wm-a"]
    assert detail["external_contact"]["unionid"] == "u-a"
    assert detail["external_contact"]["name"] == "Ann"
    assert [f["userid"] for f in detail["follow_user"]] == ["staff-1"]
    assert _failure(wecom_client, lambda: contacts.get("wm-unknown")).errcode == 40096


def test_wecom_corp_tags_are_added_and_marked(wecom_client: Any, control: Any) -> None:
    _contacts(control)
    contacts = wecom_client.external_contact
    tags = [{"name": "金卡"}, {"name": "银卡"}]

    group = _call(wecom_client, lambda: contacts.add_corp_tag(None, "会员等级", 0, tags))
    gold = group["tag_group"]["tag"][0]["id"]
    _call(wecom_client, lambda: contacts.mark_tag("staff-1", "wm-a", add_tag=[gold]))
    listed = _call(wecom_client, contacts.get_corp_tag_list)
    detail = _call(wecom_client, lambda: contacts.get("wm-a"))

    assert [t["name"] for t in listed["tag_group"][0]["tag"]] == ["金卡", "银卡"]
    assert detail["follow_user"][0]["tags"][0]["tag_name"] == "金卡"
    assert control.messages("/cgi-bin/externalcontact/mark_tag")[0]["to"] == "wm-a"
    mark = lambda: contacts.mark_tag("staff-1", "wm-a", add_tag=["et-none"])  # noqa: E731
    assert _failure(wecom_client, mark).errcode == 40068


def test_wecom_group_send_is_recorded_with_its_fail_list(
    wecom_client: Any, control: Any, sim: SimulatorServer
) -> None:
    _contacts(control)
    template = {
        "chat_type": "single",
        "external_userid": ["wm-a", "wm-b", "wm-gone"],
        "sender": "staff-1",
        "text": {"content": "会员日快乐"},
    }

    answer = _call(wecom_client, lambda: wecom_client.external_contact.add_msg_template(template))

    assert answer["fail_list"] == ["wm-b", "wm-gone"]
    assert answer["msgid"].startswith("msg")
    [message] = control.messages("/cgi-bin/externalcontact/add_msg_template")
    assert message["to"] == ["wm-a"] and message["from"] == "ww-test-corp"
    assert [t.kind for t in sim.state.tokens.values()] == ["corp"]


def test_wecom_rejects_a_wrong_secret(sim: SimulatorServer) -> None:
    params = {"corpid": "ww-test-corp", "corpsecret": "wrong"}

    answer = _raw(sim, "GET", "cgi-bin/gettoken", params=params).json()

    assert answer["errcode"] == 40001


# faults, housekeeping and controls


def test_an_injected_outage_is_an_http_500(sim: SimulatorServer, control: Any) -> None:
    control.fault("cgi-bin/token", -1, times=1)
    params = {"grant_type": "client_credential", "appid": "wx-test-mp", "secret": "mp-secret"}

    down = _raw(sim, "GET", "/cgi-bin/token", params=params)
    up = _raw(sim, "GET", "/cgi-bin/token", params=params)

    assert (down.status_code, down.json()["errcode"]) == (500, -1)
    assert up.status_code == 200 and "access_token" in up.json()


def test_purge_removes_what_has_expired(sim: SimulatorServer, control: Any) -> None:
    control.login_code()
    control.post("sim/mp/phone-codes", {"phone": "13800138000"})
    client = make_wechat_client("wx-test-mp", "mp-secret", api_base=sim.base_url)
    translate_errors(client.fetch_access_token)

    with time_machine.travel(time.time() + 301):
        early = control.post("sim/purge")["purged"]
        fresh = control.login_code()
    with time_machine.travel(time.time() + 7201):
        late = control.post("sim/purge")["purged"]

    assert early == {"codes": 1, "phone_codes": 1, "tokens": 0}
    assert late == {"codes": 1, "phone_codes": 0, "tokens": 1}
    assert fresh not in sim.state.codes


def test_reset_clears_everything(sim: SimulatorServer, oa_client: Any, control: Any) -> None:
    _tag(oa_client, "VIP", "o-a")
    code = control.login_code()
    control.fault("/sns/jscode2session", 45011, times=3)

    assert control.post("sim/reset") == {"reset": True}

    assert control.messages() == []
    assert (sim.state.tokens, sim.state.codes, sim.state.faults) == ({}, {}, {})
    assert sim.state.tags == {} and sim.state.user_tags == {}
    assert code not in sim.state.codes


def test_a_code_is_redeemed_once_under_concurrency(sim: SimulatorServer, control: Any) -> None:
    code = control.login_code("o-race")
    params = {
        "appid": "wx-test-mp",
        "secret": "mp-secret",
        "js_code": code,
        "grant_type": "authorization_code",
    }

    def redeem(_: int) -> Any:
        return _raw(sim, "GET", "sns/jscode2session", params=params).json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(redeem, range(16)))

    assert sum("openid" in a for a in answers) == 1
    assert sorted({a.get("errcode") for a in answers} - {None}) == [40163]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("sim/faults", {"path": "/cgi-bin/token"}),
        ("sim/faults", {"path": "/cgi-bin/token", "errcode": 40001, "times": 0}),
        ("sim/mp/phone-codes", {"phone": "call me"}),
        ("sim/mp/subscriptions", {"openid": "o-a"}),
        ("sim/wecom/contacts", {"userid": "staff-1"}),
    ],
)
def test_bad_control_input_is_a_400(sim: SimulatorServer, path: str, body: Any) -> None:
    answer = _raw(sim, "POST", path, json=body)

    assert answer.status_code == 400
    assert answer.json()["error"]


def test_a_control_body_must_be_a_json_object(sim: SimulatorServer) -> None:
    answer = _raw(sim, "POST", "sim/mp/codes", data=b"[1, 2]")

    assert answer.status_code == 400


def test_unsimulated_and_wrong_method_calls_answer_like_wechat(sim: SimulatorServer) -> None:
    unknown = _raw(sim, "GET", "cgi-bin/menu/get")
    wrong_method = _raw(sim, "GET", "cgi-bin/message/template/send")

    assert (unknown.status_code, unknown.json()["errcode"]) == (200, 48001)
    assert (wrong_method.status_code, wrong_method.json()["errcode"]) == (200, 43002)

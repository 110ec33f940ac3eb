"""Template, subscribe, custom-service and mass sends, each recorded when it succeeds."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from wechat_hooks.simulator.state import MASS_DEDUPE_TTL, TEMPLATE_DEDUPE_TTL, WeChatError
from wechat_hooks.simulator.views import authorise, json_body, ok, sim_state, wechat_api

bp = Blueprint("wechat_sim_sends", __name__)

DEFAULT_FIELD_LIMIT = 20
# Category templates type their fields by key name ("thing1", "character_string2", ...).
FIELD_LIMITS = {
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "phrase": 5,
    "phone_number": 17,
    "car_number": 8,
}
ASCII_ONLY = {"character_string", "number", "letter", "phone_number"}
MASS_MSGTYPES = {"mpnews", "text", "voice", "image", "mpvideo", "wxcard"}


def check_message_data(data: Any) -> None:
    """47003 for a field WeChat would refuse: too long for its type, or empty."""
    if not isinstance(data, dict) or not data:
        raise WeChatError(47003, "argument invalid! data is empty")
    for key, field in data.items():
        value = field.get("value") if isinstance(field, dict) else None
        if value is None or str(value) == "":
            raise WeChatError(47003, f"argument invalid! data.{key}.value is empty")
        _check_field(str(key), str(value))


def _check_field(key: str, value: str) -> None:
    kind = key.rstrip("0123456789")
    if len(value) > FIELD_LIMITS.get(kind, DEFAULT_FIELD_LIMIT):
        raise WeChatError(47003, f"argument invalid! data.{key}.value exceed limit")
    if kind in ASCII_ONLY and not value.isascii():
        raise WeChatError(47003, f"argument invalid! data.{key}.value invalid")


def _recipient(body: dict[str, Any]) -> str:
    touser = body.get("touser")
    if not touser or not isinstance(touser, str):
        raise WeChatError(40003, "invalid openid")
    return touser


def _template_id(body: dict[str, Any]) -> str:
    template_id = body.get("template_id")
    if not template_id or not isinstance(template_id, str):
        raise WeChatError(40037, "invalid template_id")
    return template_id


@wechat_api(bp, "/cgi-bin/message/template/send", method="POST")
def template_send() -> dict[str, Any]:
    caller, body = authorise(), json_body()
    touser = _recipient(body)
    _template_id(body)
    check_message_data(body.get("data"))
    state = sim_state()
    dedupe_key = f"{caller.owner}:{body['client_msg_id']}" if body.get("client_msg_id") else None
    if dedupe_key and (known := state.recall("template", dedupe_key)) is not None:
        return ok(msgid=known)
    msgid = state.next_id()
    state.record(request.path, touser, body, caller.owner)
    if dedupe_key:
        state.remember("template", dedupe_key, msgid, TEMPLATE_DEDUPE_TTL)
    return ok(msgid=msgid)


@wechat_api(bp, "/cgi-bin/message/subscribe/send", method="POST")
def subscribe_send() -> dict[str, Any]:
    caller, body = authorise(), json_body()
    touser, template_id = _recipient(body), _template_id(body)
    check_message_data(body.get("data"))
    state = sim_state()
    state.spend_subscription(touser, template_id)
    state.record(request.path, touser, body, caller.owner)
    return ok(msgid=state.next_id())


@wechat_api(bp, "/cgi-bin/message/custom/send", method="POST")
def custom_send() -> dict[str, Any]:
    # The 48-hour window after the follower's last message is not modelled.
    caller, body = authorise(), json_body()
    touser = _recipient(body)
    msgtype = body.get("msgtype")
    if not msgtype or not isinstance(body.get(msgtype), dict):
        raise WeChatError(40008, "invalid message type")
    sim_state().record(request.path, touser, body, caller.owner)
    return ok()


@wechat_api(bp, "/cgi-bin/message/mass/sendall", method="POST")
def mass_sendall() -> dict[str, Any]:
    caller, body = authorise(), json_body()
    recipients = _mass_recipients(body.get("filter"))
    if body.get("msgtype") not in MASS_MSGTYPES:
        raise WeChatError(40008, "invalid message type")
    state = sim_state()
    dedupe_key = f"{caller.owner}:{body['clientmsgid']}" if body.get("clientmsgid") else None
    if dedupe_key and state.recall("mass", dedupe_key) is not None:
        raise WeChatError(45065, "clientmsgid exist")
    msg_id, msg_data_id = state.next_id(), state.next_id()
    state.record(request.path, recipients, body, caller.owner)
    if dedupe_key:
        state.remember("mass", dedupe_key, msg_id, MASS_DEDUPE_TTL)
    return {
        "errcode": 0,
        "errmsg": "send job submission success",
        "msg_id": msg_id,
        "msg_data_id": msg_data_id,
    }


def _mass_recipients(filter_: Any) -> list[str] | str:
    """Followers carrying the tag at send time, or "@all"."""
    if not isinstance(filter_, dict):
        raise WeChatError(47001, "data format error: filter is required")
    if filter_.get("is_to_all"):
        return "@all"
    if "tag_id" not in filter_:
        # wechatpy 1.8.18 sends filter.group_id; the live API wants tag_id.
        raise WeChatError(40050, "invalid tag_id: filter.tag_id is required")
    state = sim_state()
    try:
        tag_id = int(filter_["tag_id"])
    except (TypeError, ValueError):
        raise WeChatError(40050, "invalid tag_id") from None
    if tag_id not in state.tags:
        raise WeChatError(40050, "invalid tag_id")
    return sorted(openid for openid, tags in state.user_tags.items() if tag_id in tags)

"""``/sim/...``: the controls tests and demos use to play the consumer's side of WeChat.

JSON in and out; bad input is a 400 ``{"error": ...}`` (these are not WeChat's shapes).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from wechat_hooks.simulator.state import CODE_TTL, new_openid, normalise_path
from wechat_hooks.simulator.views import sim_state

bp = Blueprint("wechat_sim_control", __name__, url_prefix="/sim")


class ControlError(Exception):
    """Bad input to a control endpoint."""


@bp.errorhandler(ControlError)
def _bad_input(error: ControlError) -> tuple[Response, int]:
    return jsonify(error=str(error)), 400


def _body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ControlError(f"{key} must be a non-empty string")
    return value.strip()


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _text(body, key)


def _count(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ControlError(f"{key} must be a positive integer")
    return value


@bp.post("/mp/codes")
def issue_login_code() -> Response:
    body = _body()
    openid = _optional_text(body, "openid") or new_openid()
    unionid = _optional_text(body, "unionid")
    code = sim_state().new_login_code(openid, unionid)
    return jsonify(code=code, openid=openid, unionid=unionid, expires_in=CODE_TTL)


@bp.post("/mp/phone-codes")
def issue_phone_code() -> Response:
    body = _body()
    phone = _text(body, "phone")
    country_code = (_optional_text(body, "country_code") or "86").lstrip("+")
    if not phone.isdigit() or not country_code.isdigit():
        raise ControlError("phone and country_code must be digits")
    code = sim_state().new_phone_code(phone, country_code)
    return jsonify(code=code, expires_in=CODE_TTL)


@bp.post("/mp/subscriptions")
def grant_subscription() -> Response:
    body = _body()
    openid, template_id = _text(body, "openid"), _text(body, "template_id")
    remaining = sim_state().grant_subscription(openid, template_id, _count(body, "count", 1))
    return jsonify(openid=openid, template_id=template_id, remaining=remaining)


@bp.post("/wecom/contacts")
def register_contact() -> Response:
    body = _body()
    userid, external_userid = _text(body, "userid"), _text(body, "external_userid")
    contact = sim_state().register_contact(
        userid,
        external_userid,
        _optional_text(body, "unionid"),
        _optional_text(body, "name"),
    )
    return jsonify(
        external_userid=contact.external_userid,
        name=contact.name,
        unionid=contact.unionid,
        follow_users=sorted(contact.followers),
    )


@bp.get("/messages")
def sent_messages() -> Response:
    return jsonify(items=sim_state().sent(request.args.get("api") or None))


@bp.post("/faults")
def add_fault() -> Response:
    body = _body()
    path = _text(body, "path")
    errcode = body.get("errcode")
    if not isinstance(errcode, int) or isinstance(errcode, bool) or errcode == 0:
        raise ControlError("errcode must be a non-zero integer")
    fault = sim_state().add_fault(path, errcode, _count(body, "times", 1))
    return jsonify(path=normalise_path(path), errcode=fault.errcode, times=fault.remaining)


@bp.post("/reset")
def reset() -> Response:
    sim_state().reset()
    return jsonify(reset=True)


@bp.post("/purge")
def purge() -> Response:
    return jsonify(purged=sim_state().purge())

"""The simulator's HTTP plumbing and its token, login and phone-number endpoints.

Answers keep WeChat's shapes: errors are HTTP 200 with ``errcode``/``errmsg``, so the
wechatpy clients take the same paths they take against the real service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from wechat_hooks.simulator.state import SimState, Token, TokenKind, WeChatError, new_session_key

STATE_KEY = "wechat_sim"
SIM_PREFIX = "/sim/"

bp = Blueprint("wechat_sim_tokens", __name__)

ViewFn = Callable[[], dict[str, Any]]


def sim_state() -> SimState:
    state: SimState = current_app.extensions[STATE_KEY]
    return state


def wechat_api(
    blueprint: Blueprint, rule: str, *, method: str = "GET"
) -> Callable[[ViewFn], ViewFn]:
    """Register a WeChat-shaped endpoint; it runs under the state lock as one step."""

    def register(fn: ViewFn) -> ViewFn:
        def view() -> Response:
            with sim_state().lock:
                return jsonify(fn())

        blueprint.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return fn

    return register


def authorise(kind: TokenKind = "app") -> Token:
    return sim_state().require_token(request.args.get("access_token"), kind)


def json_body() -> dict[str, Any]:
    # wechatpy posts JSON bytes without a Content-Type, hence force.
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise WeChatError(47001, "data format error")
    return body


def ok(**fields: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **fields}


def install(app: Flask) -> None:
    """Fault injection and WeChat-shaped errors for every non-control path."""
    app.before_request(_injected_fault)
    app.register_error_handler(WeChatError, _wechat_error)
    app.register_error_handler(HTTPException, _http_error)


def _injected_fault() -> tuple[Response, int] | None:
    if request.path.startswith(SIM_PREFIX):
        return None
    errcode = sim_state().take_fault(request.path)
    if errcode is None:
        return None
    if errcode == -1:
        # A gateway failure rather than an answer: clients see an HTTP error.
        return jsonify(errcode=-1, errmsg="system error (injected)"), 500
    return jsonify(errcode=errcode, errmsg=f"injected fault {errcode}"), 200


def _wechat_error(error: WeChatError) -> tuple[Response, int]:
    return jsonify(errcode=error.errcode, errmsg=error.errmsg), 200


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    if request.path.startswith(SIM_PREFIX):
        return jsonify(error=error.description), status
    if status == 405:
        wanted = "POST" if request.method == "GET" else "GET"
        errcode = 43002 if wanted == "POST" else 43001
        return jsonify(errcode=errcode, errmsg=f"require {wanted} method"), 200
    if status == 404:
        return jsonify(
            errcode=48001, errmsg=f"api unauthorized: {request.path} is not simulated"
        ), 200
    return jsonify(errcode=-1, errmsg=error.description or "system error"), status


# tokens


def _token_answer(token: Token) -> dict[str, Any]:
    return {"access_token": token.value, "expires_in": round(token.expires_at - time.time())}


@wechat_api(bp, "/cgi-bin/token")
def token() -> dict[str, Any]:
    if request.args.get("grant_type") != "client_credential":
        raise WeChatError(40002, "invalid grant_type")
    state = sim_state()
    appid = state.check_app(request.args.get("appid"), request.args.get("secret"))
    return _token_answer(state.issue_token("app", appid))


@wechat_api(bp, "/cgi-bin/stable_token", method="POST")
def stable_token() -> dict[str, Any]:
    body = json_body()
    if body.get("grant_type") != "client_credential":
        raise WeChatError(40002, "invalid grant_type")
    state = sim_state()
    appid = state.check_app(body.get("appid"), body.get("secret"))
    reuse = not body.get("force_refresh")
    return _token_answer(state.issue_token("app", appid, reuse=reuse))


# mini-program login and phone number


@wechat_api(bp, "/sns/jscode2session")
def jscode2session() -> dict[str, Any]:
    # wechatpy 1.8.18 also sends an access_token here; WeChat ignores it, and so do we.
    args = request.args
    if args.get("grant_type") != "authorization_code":
        raise WeChatError(40002, "invalid grant_type")
    state = sim_state()
    state.check_app(args.get("appid"), args.get("secret"))
    if not args.get("js_code"):
        raise WeChatError(41008, "missing code")
    login = state.redeem_login_code(args["js_code"])
    answer = {"openid": login.openid, "session_key": new_session_key()}
    if login.unionid:
        answer["unionid"] = login.unionid
    return answer


@wechat_api(bp, "/wxa/business/getuserphonenumber", method="POST")
def getuserphonenumber() -> dict[str, Any]:
    caller = authorise()
    code = json_body().get("code")
    if not code or not isinstance(code, str):
        raise WeChatError(47001, "data format error: code is required")
    phone = sim_state().redeem_phone_code(code)
    full = phone.phone if phone.country_code == "86" else f"+{phone.country_code}{phone.phone}"
    watermark = {"timestamp": int(time.time()), "appid": caller.owner}
    info = {
        "phoneNumber": full,
        "purePhoneNumber": phone.phone,
        "countryCode": phone.country_code,
        "watermark": watermark,
    }
    return ok(phone_info=info)

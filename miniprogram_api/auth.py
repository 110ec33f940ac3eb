from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, fields, validate

from app.members import services
from app.members import sessions as member_sessions
from app.onboarding import services as onboarding
from app.web.auth import issue_member_token, member_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.idempotency import idempotent
from app.web.schemas import MEMBER_EXAMPLE, MemberSchema, about

TAG = "Mini-program: auth"


class CodeIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata=about(
            "The one-time code the mini-program got from WeChat (wx.login, phone button)."
        ),
    )


class LoginOut(Schema):
    token = fields.String(metadata=about("Bearer token for the other /mp/v1 calls."))
    expires_in = fields.Integer(metadata=about("Seconds until the token expires."))
    member = fields.Nested(MemberSchema, metadata=about("The signed-in member."))
    is_new = fields.Boolean(metadata=about("True when this log-in created the member."))


@endpoint(
    summary="Log in with a wx.login code",
    body=CodeIn,
    response=LoginOut,
    errors=("503",),
    tag=TAG,
    description="Called by the mini-program at start with the code from `wx.login`. The code "
    "is exchanged with WeChat (`jscode2session`); the openid (or unionid) finds the member, "
    "or a new member is created (`is_new`). The session_key stays on the server. Each call "
    "opens a new session. A code WeChat refuses (invalid, expired, already used) is 422 "
    "`validation_error` on `code`: get a new one from `wx.login`. WeChat not answering is "
    "503 `upstream_unavailable`; the database down is 503 `unavailable`, checked before the "
    "code is spent, so the code stays good for a retry.",
    example={"code": "0c3Xkr000bYp7W1qBq300ZQ8Fm3Xkr0d"},
    response_example={
        "token": "eyJtIjoxLCJzIjoxfQ.axAx8w.Wa01N4NtCeIyT8omsP-JaqfXI0A",
        "expires_in": 604800,
        "member": MEMBER_EXAMPLE,
        "is_new": False,
    },
)
def login(body: dict[str, Any]) -> dict[str, Any]:
    deps = container()
    result = onboarding.log_in(
        uow=deps.uow(),
        mp_auth=deps.mp_auth,
        appid=deps.config.wechat_mp_appid,
        code=body["code"],
    )
    return {
        "token": issue_member_token(result.member.id),
        "expires_in": deps.config.token_ttl_seconds,
        "member": result.member,
        "is_new": result.is_new,
    }


@member_required
@idempotent
@endpoint(
    summary="Bind the phone number from the phone-number button",
    body=CodeIn,
    response=MemberSchema,
    errors=("401", "503"),
    tag=TAG,
    description="Called with the code of the phone-number button (`getPhoneNumber`); "
    "WeChat tells the number. When the number is already on another member, the two are "
    "merged into one and the answer is the surviving member, shaped as `GET /mp/v1/me`. "
    "Accepts `Idempotency-Key`. A code WeChat refuses is 422 `validation_error` on `code`; "
    "WeChat not answering is 503 `upstream_unavailable`.",
    example={"code": "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"},
    response_example=MEMBER_EXAMPLE,
)
def bind_phone(body: dict[str, Any]) -> Any:
    deps = container()
    return services.bind_phone(
        uow=deps.uow(), mp_auth=deps.mp_auth, member_id=g.member_id, code=body["code"]
    )


class EmptyBody(Schema):
    """No fields: a body, when sent, may only be ``{}`` (unknown fields are 422)."""


class LogoutOut(Schema):
    logged_out = fields.Boolean(metadata=about("Always true: the session has ended."))


@member_required
@endpoint(
    summary="Log out: the presented token (this session) stops working; other sessions stay",
    body=EmptyBody,
    body_optional=True,
    response=LogoutOut,
    errors=("401",),
    tag=TAG,
    description="Ends the session of the token presented: that token is refused from now "
    "on (401), the member's other sessions (other phones) stay. The body may be absent or "
    "`{}`. Calling it twice with the same token: the second call is 401.",
    example={},
    response_example={"logged_out": True},
)
def logout(body: dict[str, Any]) -> dict[str, Any]:
    member_sessions.end_session(
        uow=container().uow(), session_id=g.session_id, member_id=g.member_id
    )
    return {"logged_out": True}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/auth/login", view_func=login, methods=["POST"])
    bp.add_url_rule("/auth/phone", view_func=bind_phone, methods=["POST"])
    bp.add_url_rule("/auth/logout", view_func=logout, methods=["POST"])

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
from app.web.schemas import MemberSchema


class CodeIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128))


class LoginOut(Schema):
    token = fields.String()
    expires_in = fields.Integer()
    member = fields.Nested(MemberSchema)
    is_new = fields.Boolean()


@endpoint(summary="Log in with a wx.login code", body=CodeIn, response=LoginOut, errors=("503",))
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
)
def bind_phone(body: dict[str, Any]) -> Any:
    deps = container()
    return services.bind_phone(
        uow=deps.uow(), mp_auth=deps.mp_auth, member_id=g.member_id, code=body["code"]
    )


class EmptyBody(Schema):
    """No fields: a body, when sent, may only be ``{}`` (unknown fields are 422)."""


class LogoutOut(Schema):
    logged_out = fields.Boolean()


@member_required
@endpoint(
    summary="Log out: the presented token (this session) stops working; other sessions stay",
    body=EmptyBody,
    body_optional=True,
    response=LogoutOut,
    errors=("401",),
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

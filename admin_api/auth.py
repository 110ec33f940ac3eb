from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request
from marshmallow import Schema, fields, validate

from app.admins import services
from app.admins import sessions as admin_sessions
from app.web.auth import admin_required, issue_admin_token
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.schemas import about
from app.web.throttle import login_throttle

TAG = "Admin: auth"


class LoginIn(Schema):
    username = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata=about("The account name.")
    )
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=256), metadata=about("The password.")
    )


class LoginOut(Schema):
    token = fields.String(metadata=about("Bearer token for the other /admin/v1 calls."))
    expires_in = fields.Integer(metadata=about("Seconds until the token expires."))
    role = fields.String(metadata=about("admin, operator or analyst."))


class AdminOut(Schema):
    id = fields.Integer(metadata=about("The operator account's id."))
    username = fields.String(metadata=about("The account name."))
    role = fields.String(metadata=about("admin, operator or analyst."))


@endpoint(
    summary="Operator log-in. Attempts are limited per account and per source address: "
    "over the limit, 429 rate_limited with Retry-After.",
    body=LoginIn,
    response=LoginOut,
    errors=("401", "429:rate_limited"),
    tag=TAG,
    description="Called by the operators' console. Wrong username or password, or a "
    "disabled account: 401 (the same answer for each). Failed attempts are counted per "
    "account and per source address; over the limit the answer is 429 `rate_limited` with "
    "`Retry-After`, even for the right password. Each log-in opens a new session.",
    example={"username": "ops.li", "password": "correct horse battery staple"},
    response_example={
        "token": "eyJhIjoxLCJzIjoxfQ.axAx8w.3l8d1kTq3vB2yQYpHf0u4c7xEZo",
        "expires_in": 604800,
        "role": "operator",
    },
)
def login(body: dict[str, Any]) -> dict[str, Any]:
    deps = container()
    username, address = body["username"], request.remote_addr or "unknown"
    throttle = login_throttle()
    throttle.admit(username=username, address=address)
    admin = services.authenticate_admin(
        uow=deps.uow(), username=username, password=body["password"], address=address
    )
    throttle.succeeded(username=username)
    return {
        "token": issue_admin_token(admin.id),
        "expires_in": deps.config.token_ttl_seconds,
        "role": admin.role,
    }


@admin_required()
@endpoint(
    summary="Who am I",
    response=AdminOut,
    errors=("401",),
    tag=TAG,
    description="The signed-in operator's account and role (any role). The console calls it "
    "to check that its token still works.",
    response_example={"id": 1, "username": "ops.li", "role": "operator"},
)
def me() -> Any:
    return g.admin


class EmptyBody(Schema):
    """No fields: a body, when sent, may only be ``{}`` (unknown fields are 422)."""


class LogoutOut(Schema):
    logged_out = fields.Boolean(metadata=about("Always true: the session has ended."))


@admin_required()
@endpoint(
    summary="Log out: the presented token (this session) stops working",
    body=EmptyBody,
    body_optional=True,
    response=LogoutOut,
    errors=("401",),
    tag=TAG,
    description="Ends the session of the token presented (any role); the token is refused "
    "from now on. The body may be absent or `{}`.",
    example={},
    response_example={"logged_out": True},
)
def logout(body: dict[str, Any]) -> dict[str, Any]:
    admin_sessions.end_session(uow=container().uow(), session_id=g.session_id, admin_id=g.admin.id)
    return {"logged_out": True}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/auth/login", view_func=login, methods=["POST"])
    bp.add_url_rule("/auth/me", view_func=me, methods=["GET"])
    bp.add_url_rule("/auth/logout", view_func=logout, methods=["POST"])

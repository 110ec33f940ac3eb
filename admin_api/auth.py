from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request
from marshmallow import Schema, fields, validate

from app.admins import services
from app.admins import sessions as admin_sessions
from app.web.auth import admin_required, issue_admin_token
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.throttle import login_throttle


class LoginIn(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class LoginOut(Schema):
    token = fields.String()
    expires_in = fields.Integer()
    role = fields.String()


class AdminOut(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()


@endpoint(
    summary="Operator log-in. Attempts are limited per account and per source address: "
    "over the limit, 429 rate_limited with Retry-After.",
    body=LoginIn,
    response=LoginOut,
    errors=("401", "429:rate_limited"),
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
@endpoint(summary="Who am I", response=AdminOut, errors=("401",))
def me() -> Any:
    return g.admin


class EmptyBody(Schema):
    """No fields: a body, when sent, may only be ``{}`` (unknown fields are 422)."""


class LogoutOut(Schema):
    logged_out = fields.Boolean()


@admin_required()
@endpoint(
    summary="Log out: the presented token (this session) stops working",
    body=EmptyBody,
    body_optional=True,
    response=LogoutOut,
    errors=("401",),
)
def logout(body: dict[str, Any]) -> dict[str, Any]:
    admin_sessions.end_session(uow=container().uow(), session_id=g.session_id, admin_id=g.admin.id)
    return {"logged_out": True}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/auth/login", view_func=login, methods=["POST"])
    bp.add_url_rule("/auth/me", view_func=me, methods=["GET"])
    bp.add_url_rule("/auth/logout", view_func=logout, methods=["POST"])

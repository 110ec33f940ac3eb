"""Calling WeChat for a member use case: its failures as domain errors, and the database
touched first so an outage does not spend a single-use code."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from app.errors import UpstreamUnavailable, ValidationFailed
from app.uow import UnitOfWork
from app.wechat.errors import WeChatCallFailed, WeChatErrorKind

T = TypeVar("T")


def call_wechat(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except WeChatCallFailed as failure:
        if failure.kind is WeChatErrorKind.INVALID_CODE:
            raise ValidationFailed(
                "The code is invalid, expired or already used; get a new one from WeChat.",
                field="code",
                wechat_errcode=failure.errcode,
            ) from failure
        raise UpstreamUnavailable(wechat_errcode=failure.errcode) from failure


def require_database(uow: UnitOfWork) -> None:
    """Touch the database before spending a single-use WeChat code: when the database is
    down the request fails here (503 ``unavailable``) and the code stays good for a retry."""
    with uow:
        uow.session.execute(select(1))

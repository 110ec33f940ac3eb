"""Cursor pagination: ?limit= (default 20, max 100) and an opaque ?cursor=."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import request

from app.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ID = 2**63 - 1  # BIGINT: no key we issue is larger


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: int | None  # the sort key of the last item of the previous page


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, key = raw.partition(":")
        digits = key.isascii() and key.isdigit() and len(key) <= 19
        if version != "v1" or not digits or int(key) > MAX_ID:
            raise ValueError(raw)
        return int(key)
    except ValueError:
        raise ValidationFailed("The cursor is not valid.", field="cursor") from None


def page_request() -> PageRequest:
    raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
    valid = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 3
    if not valid or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be 1 to {MAX_LIMIT}.", field="limit")
    cursor = request.args.get("cursor")
    return PageRequest(limit=int(raw_limit), after=decode_cursor(cursor) if cursor else None)


def page_of(
    rows: Sequence[T], page: PageRequest, dump: Callable[[T], Any], key: Callable[[T], int]
) -> dict[str, Any]:
    """``rows`` was fetched with limit + 1: the extra row says whether a next page exists."""
    items = list(rows[: page.limit])
    has_more = len(rows) > page.limit
    next_cursor = encode_cursor(key(items[-1])) if has_more and items else None
    return {"items": [dump(item) for item in items], "next_cursor": next_cursor}

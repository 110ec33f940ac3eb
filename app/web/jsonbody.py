"""Strict JSON request bodies: an object, no duplicate keys, no NaN or Infinity, and no
text that the database cannot store (lone surrogates, NUL)."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import ValidationFailed

MAX_BODY_BYTES = 1024 * 1024


class _BadJson(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity
        raise _BadJson(f"{text} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _BadJson(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except UnicodeDecodeError:
        raise ValidationFailed("The body is not UTF-8.") from None
    except RecursionError:  # valid JSON, but deeper than the parser's stack
        raise ValidationFailed("The body is nested too deeply.") from None
    except _BadJson as bad:
        raise ValidationFailed(f"The body is not acceptable JSON: {bad}.") from None
    except ValueError as bad:
        raise ValidationFailed(f"The body is not valid JSON: {bad}.") from None
    if not isinstance(value, dict):
        raise ValidationFailed("The body must be a JSON object.")
    _refuse_unstorable_text(value)
    return value


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored as utf8mb4 text, or None when it can.

    Valid UTF-8 decodes to code points utf8mb4 holds, but a JSON escape such as
    ``"\\ud800"`` yields a lone surrogate, which no UTF-8 encoder accepts. NUL would be
    stored, but every consumer of these strings (WeChat, logs, C libraries) cuts at it,
    so it is refused too.
    """
    if "\x00" in text:
        return "NUL characters are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Lone surrogates are not valid text."
    return None


def _refuse_unstorable_text(document: dict[str, Any]) -> None:
    """Every key and string in the document, walked without recursion (depth is unbounded).
    The offending field is named as marshmallow names fields: {"items": {"0": {"name": [...]}}}."""
    pending: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            reason = unstorable_reason(value)
            if reason:
                raise _unstorable(where, reason)
        elif isinstance(value, dict):
            for key, item in value.items():
                # Keys are named in errors (unknown fields): they must be storable text too.
                reason = unstorable_reason(key)
                if reason:
                    raise _unstorable(where, f"A key holds text that cannot be stored. {reason}")
                pending.append(((*where, key), item))
        elif isinstance(value, list):
            pending.extend(((*where, str(index)), item) for index, item in enumerate(value))


def _unstorable(where: tuple[str, ...], reason: str) -> ValidationFailed:
    named: Any = [reason]
    for part in reversed(where or ("_body",)):
        named = {part: named}
    return ValidationFailed("The request holds text that cannot be stored.", fields=named)


def _read_body() -> bytes:
    raw = request.get_data(cache=True)
    if request.content_length is None and len(raw) >= MAX_BODY_BYTES:
        # A streamed (chunked) body is cut off at the limit, not refused: refuse it here.
        raise RequestEntityTooLarge()
    return raw


def request_json(*, allow_empty: bool = False) -> dict[str, Any]:
    raw = _read_body()
    if not raw.strip():
        if allow_empty:
            return {}
        raise ValidationFailed("A JSON object body is required.")
    return parse_json_object(raw)

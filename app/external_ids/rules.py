"""The fingerprint of a request: what two sends of "the same request" must agree on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):  # the same instant however its offset was written
        if value.tzinfo is None:
            raise ValueError("naive datetime in a request fingerprint")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):  # an absent optional field and a null one are the same
        return {str(key): _canonical(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(request: Mapping[str, Any]) -> str:
    """sha256 hex of the request as parsed: keys sorted, times in UTC, nulls dropped."""
    text = json.dumps(
        _canonical(request), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()

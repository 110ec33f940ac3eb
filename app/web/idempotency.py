"""The Idempotency-Key header: first answer stored, replayed for the same request."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from flask import Response, g, make_response, request

from app.errors import DomainError, ValidationFailed
from app.idempotency import services
from app.outages import is_outage
from app.web.deps import container
from app.web.errors import error_response

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 64


def _request_hash() -> str:
    digest = hashlib.sha256()
    parts = (request.method.encode(), request.path.encode(), request.query_string)
    for part in (*parts, request.get_data(cache=True)):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


def idempotent(view: F) -> F:
    """Run the view once per (caller, key); later calls get the stored answer."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _valid_key(key):
            raise ValidationFailed(
                "Idempotency-Key must be 1 to 64 printable ASCII characters.", field=HEADER
            )
        deps = container()
        outcome = services.claim_key(
            uow=deps.uow(),
            scope=g.principal_scope,
            key=key,
            request_hash=_request_hash(),
            lease=timedelta(seconds=deps.config.idempotency_lease_seconds),
        )
        if isinstance(outcome, services.Replay):
            return _replayed(outcome)
        return _run_and_store(view, outcome, args, kwargs)

    wrapper._idempotent = True  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _run_and_store(
    view: Callable[..., Any], claimed: services.Claimed, args: Any, kwargs: Any
) -> Response:
    deps = container()
    try:
        response = make_response(view(*args, **kwargs))
    except DomainError as error:
        response = error_response(error.status, error.code, error.message, error.details)
    except BaseException as error:
        if not is_outage(error):  # when the database is gone, the lease frees the key
            services.release_key(uow=deps.uow(), claimed=claimed)
        raise
    if response.status_code >= 500:
        services.release_key(uow=deps.uow(), claimed=claimed)
        return response
    services.store_response(
        uow=deps.uow(),
        claimed=claimed,
        status_code=response.status_code,
        body=response.get_data(as_text=True),
    )
    return response


def _replayed(replay: services.Replay) -> Response:
    response = Response(replay.body, status=replay.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response

"""The Idempotency-Key header: the first answer kept with its effect, replayed for the same
request (``app.idempotency.services``)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Response, g, make_response, request

from app.errors import DomainError, RequestInProgress, ValidationFailed
from app.idempotency import services
from app.uow import Joint, one_transaction
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
    """Run the view once per (caller, key); later calls get the stored answer. The claim
    of the key, the view's effect and its answer commit together, in one transaction
    (``app.uow.one_transaction``); a twin waits on the claim and replays the answer."""

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
        keyed = _Keyed(g.principal_scope, key, _request_hash())
        try:
            with one_transaction(deps.session_factory) as joint:
                return _run_and_keep(joint, keyed, view, args, kwargs)
        except services.KeyTaken:
            twin = services.lookup(
                uow=deps.uow(), scope=keyed.scope, key=keyed.key, request_hash=keyed.request_hash
            )
            if twin is None:  # unreachable: the twin's answer was committed
                raise RequestInProgress() from None
            return _replayed(twin)

    wrapper._idempotent = True  # type: ignore[attr-defined]
    return cast(F, wrapper)


@dataclass(frozen=True)
class _Keyed:
    scope: str
    key: str
    request_hash: str


def _run_and_keep(
    joint: Joint, keyed: _Keyed, view: Callable[..., Any], args: Any, kwargs: Any
) -> Response:
    """One transaction: the key looked up (a stored answer is replayed) and claimed, the
    view run, its answer written on the claim. A domain error's answer is kept, its effect
    rolled back to just after the claim; a 5xx answer is not kept (nothing of it is)."""
    earlier = services.find_answer(
        joint.session, scope=keyed.scope, key=keyed.key, request_hash=keyed.request_hash
    )
    if earlier is not None:
        return _replayed(earlier)
    joint.hold(
        lambda: services.claim(
            joint.session, scope=keyed.scope, key=keyed.key, request_hash=keyed.request_hash
        )
    )
    try:
        response = make_response(view(*args, **kwargs))
    except DomainError as error:
        joint.rollback()
        response = error_response(error.status, error.code, error.message, error.details)
    else:
        if joint.lost_kept_work:
            raise RuntimeError("a keyed view went on after a rollback undid its earlier work")
    if response.status_code >= 500:
        return response
    joint.ensure_held()
    services.answer(
        joint.session,
        joint.held,
        status_code=response.status_code,
        body=response.get_data(as_text=True),
    )
    joint.commit()
    return response


def _replayed(replay: services.Replay) -> Response:
    response = Response(replay.body, status=replay.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response

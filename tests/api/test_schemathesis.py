"""Every endpoint of /openapi.json, driven by schemathesis as each kind of caller:
generated requests pass authentication (a member's token, an operator's token, a fresh
HMAC signature per request) and reach the handlers. No answer may be a 5xx, and every
answer must be documented: its status, its content type, its body's schema.

Slow for the ordinary suite: CI runs it as its own step (`pytest -m schemathesis`)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.http import bearer, log_in
from tests.support.signing import PartnerKeys, signed_headers

pytestmark = pytest.mark.schemathesis

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class SigningClient:
    """The store system's side of the open API, as WSGI middleware: every /open/ request
    is signed over the exact method, path, query and body bytes it carries, with a fresh
    nonce (what a real partner's HTTP client does just before sending)."""

    def __init__(self, wsgi_app: Any, keys: PartnerKeys) -> None:
        self._app = wsgi_app
        self._keys = keys

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/open/"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
            signed = signed_headers(self._keys, environ["REQUEST_METHOD"], raw_path, body)
            for name, value in signed.items():
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        return self._app(environ, start_response)


def _the_apps_document() -> Any:
    """What GET /openapi.json serves, from an app built only to describe itself (it opens
    no connection): every endpoint, those added later included, without listing them."""
    from app import create_app
    from app.config import Config
    from app.web.openapi import build_openapi

    described = create_app(Config(env="test", database_url="sqlite://", log_json=False))
    return schemathesis.openapi.from_dict(build_openapi(described))


@pytest.fixture
def signing_app(app: Flask, partner: PartnerKeys) -> Flask:
    app.wsgi_app = SigningClient(app.wsgi_app, partner)  # type: ignore[method-assign]
    return app


@pytest.fixture
def auth_headers(
    app: Flask, sim: Any, admin_token: Callable[[str], str]
) -> Callable[[Any], dict[str, str]]:
    """The headers of the caller each operation's security names."""
    member = bearer(log_in(app.test_client(), sim, "o-schemathesis")["token"])
    admin = bearer(admin_token("admin"))

    def _for(case: Any) -> dict[str, str]:
        schemes = {
            name for entry in case.operation.definition.raw.get("security", []) for name in entry
        }
        if "memberToken" in schemes:
            return member
        if "adminToken" in schemes:
            return admin
        return {}  # public, or signed by SigningClient

    return _for


schema = _the_apps_document()
_SENT = itertools.count()


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,  # the same examples on every run: no flakes
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: Any, signing_app: Flask, auth_headers: Any
) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str):
        # Generated keys repeat ("0", "00"): made unique, so that requests reach the
        # handlers instead of mostly answering 409 idempotency_mismatch.
        case.headers["Idempotency-Key"] = f"{next(_SENT)}.{key}"
    case.call_and_validate(app=signing_app, headers=auth_headers(case), checks=CHECKS)

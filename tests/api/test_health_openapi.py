"""/healthz, /readyz and /openapi.json."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine

from app import create_app
from app.db import make_engine
from tests.support.config import make_config

API_PREFIXES = ("/mp/v1/", "/open/v1/", "/admin/v1/")
UNREACHABLE_DATABASES = {
    "sqlite": "sqlite:////nonexistent-huiyuan-dir/nowhere/test.db",
    "mysql": "mysql+pymysql://root@127.0.0.1:1/huiyuan?connect_timeout=1",
}


@pytest.fixture
def dead_redis() -> Iterator[Any]:
    # No retries: redis-py's default backoff would spend seconds on a refused connection.
    client = redis_lib.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    yield client
    client.close()


@pytest.fixture(params=sorted(UNREACHABLE_DATABASES))
def dead_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = make_engine(UNREACHABLE_DATABASES[request.param])
    yield engine
    engine.dispose()


def readyz(sim, database_url, **collaborators):
    app = create_app(make_config(sim, database_url), **collaborators)
    return app.test_client().get("/readyz")


class TestHealth:
    def test_healthz(self, client):
        answer = client.get("/healthz")
        assert answer.status_code == 200
        assert answer.get_json() == {"status": "ok"}

    # These apps get the engine without the per-test transaction: on SQLite that
    # transaction holds the write lock, which every new transaction waits for.
    def test_readyz_when_both_answer(self, sim, database_url, engine, redis):
        answer = readyz(sim, database_url, engine=engine, redis=redis)
        assert answer.status_code == 200
        assert answer.get_json()["status"] == "ok"

    def test_readyz_names_redis_when_it_is_down(self, sim, database_url, engine, dead_redis):
        answer = readyz(sim, database_url, engine=engine, redis=dead_redis)
        assert answer.status_code == 503
        assert answer.get_json()["failed"] == ["redis"]

    def test_readyz_names_the_database_when_it_is_down(self, sim, database_url, dead_engine, redis):
        answer = readyz(sim, database_url, engine=dead_engine, redis=redis)
        assert answer.status_code == 503
        assert answer.get_json()["failed"] == ["database"]

    def test_readyz_names_both(self, sim, database_url, dead_engine, dead_redis):
        answer = readyz(sim, database_url, engine=dead_engine, redis=dead_redis)
        assert answer.status_code == 503
        assert sorted(answer.get_json()["failed"]) == ["database", "redis"]

    def test_healthz_does_not_depend_on_either(self, sim, database_url, dead_engine, dead_redis):
        app = create_app(make_config(sim, database_url), engine=dead_engine, redis=dead_redis)
        answer = app.test_client().get("/healthz")
        assert answer.status_code == 200
        assert answer.get_json() == {"status": "ok"}


def api_routes(app) -> dict[str, set[str]]:
    """Every /mp/v1, /open/v1 and /admin/v1 path of the app, OpenAPI-style, with methods."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        )
    return routes


def walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from walk_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_refs(value)


class TestOpenApi:
    @pytest.fixture
    def spec(self, client) -> dict[str, Any]:
        answer = client.get("/openapi.json")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return dict(answer.get_json())

    def test_it_is_openapi_3(self, spec):
        assert re.fullmatch(r"3\.\d+\.\d+", spec["openapi"])
        assert spec["info"]["title"] and spec["info"]["version"]
        assert spec["paths"]
        for path, operations in spec["paths"].items():
            assert path.startswith("/")
            for method, operation in operations.items():
                assert method in {"get", "put", "post", "delete", "patch"}, (method, path)
                assert operation["responses"], (method, path)
                for status, response in operation["responses"].items():
                    assert re.fullmatch(r"[1-5]\d\d", status), (method, path, status)
                    assert response["description"], (method, path, status)
        for section in spec["components"].values():
            for name in section:  # the names OpenAPI allows in components
                assert re.fullmatch(r"[a-zA-Z0-9.\-_]+", name), name

    def test_every_api_route_appears_with_its_methods(self, app, spec):
        routes = api_routes(app)
        assert "/mp/v1/me" in routes and routes["/mp/v1/me"] == {"get", "patch"}
        for path, methods in routes.items():
            assert path in spec["paths"], path
            documented = {m for m in spec["paths"][path] if m != "parameters"}
            assert documented == methods, path

    def test_path_parameters_are_declared(self, spec):
        for path, operations in spec["paths"].items():
            names = set(re.findall(r"{([^}]+)}", path))
            for method, operation in operations.items():
                declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                assert declared == names, (method, path)

    def test_request_bodies_reference_schemas(self, spec):
        schemas = spec["components"]["schemas"]
        bodies = 0
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                body = operation.get("requestBody")
                if body is None:
                    continue
                bodies += 1
                ref = body["content"]["application/json"]["schema"]["$ref"]
                assert ref.startswith("#/components/schemas/"), (method, path)
                assert ref.removeprefix("#/components/schemas/") in schemas
        assert bodies >= 4  # mp login, phone, PATCH me, admin login at least

    def test_operations_that_take_a_body_document_it(self, app, spec):
        for path, operations in spec["paths"].items():
            for method in ("post", "put", "patch"):
                if method in operations:
                    view = app.view_functions[_endpoint_of(app, path, method)]
                    if view._endpoint_doc.body is not None:
                        assert "requestBody" in operations[method], (method, path)

    def test_components_are_complete(self, spec):
        schemas = spec["components"]["schemas"]
        assert schemas and "Error" in schemas
        assert set(schemas["Error"]["properties"]["error"]["required"]) == {
            "code",
            "message",
            "details",
        }
        for ref in walk_refs(spec):
            section, _, name = ref.removeprefix("#/components/").partition("/")
            assert name in spec["components"][section], ref

    def test_authenticated_operations_say_so(self, client, spec):
        """An operation that answers 401 without credentials declares security, and an
        operation that declares it answers 401 without credentials."""
        schemes = spec["components"]["securitySchemes"]
        for path, operations in spec["paths"].items():
            url = re.sub(r"{[^}]+}", "1", path)
            for method, operation in operations.items():
                status = client.open(url, method=method.upper()).status_code
                security = operation.get("security")
                assert (status == 401) == bool(security), (method, path, status)
                for requirement in security or []:
                    assert set(requirement) <= set(schemes)
        assert spec["paths"]["/mp/v1/me"]["get"]["security"] == [{"memberToken": []}]
        assert "security" not in spec["paths"]["/mp/v1/auth/login"]["post"]

    def test_idempotent_operations_document_the_header(self, spec):
        for path, method in (("/mp/v1/me", "patch"), ("/mp/v1/auth/phone", "post")):
            headers = {
                p["name"]: p
                for p in spec["paths"][path][method].get("parameters", [])
                if p["in"] == "header"
            }
            assert headers["Idempotency-Key"]["schema"]["maxLength"] == 64

    def test_paginated_operations_document_limit_and_cursor_once(self, spec):
        for path in ("/admin/v1/members", "/admin/v1/audit-log"):
            names = [p["name"] for p in spec["paths"][path]["get"]["parameters"]]
            assert names.count("limit") == 1 and names.count("cursor") == 1, names
            limit = next(
                p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "limit"
            )
            assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)

    def test_it_is_served_twice_the_same(self, client, spec):
        assert client.get("/openapi.json").get_json() == spec


def _endpoint_of(app, path: str, method: str) -> str:
    for rule in app.url_map.iter_rules():
        if re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule) == path and method.upper() in (
            rule.methods or set()
        ):
            return str(rule.endpoint)
    raise AssertionError(f"no rule for {method} {path}")

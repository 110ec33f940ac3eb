"""The contract reads on its own (GET /docs shows it): every operation says which area it
belongs to, what it does and how a request and an answer look; every field says what it
means; every example is valid against its schema. An endpoint added later without them
fails here, so this holds for the ones to come."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from app.web.openapi import build_openapi

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """What GET /openapi.json serves, built by an app that opens no connection."""
    from app import create_app
    from app.config import Config

    described = create_app(Config(env="test", database_url="sqlite://", log_json=False))
    return dict(json.loads(json.dumps(build_openapi(described))))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def successes(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get("application/json")
        if status.startswith("2") and media is not None:
            yield status, media


def undescribed(schema: Any, where: str) -> Iterator[str]:
    """Every property under ``schema`` (inline objects, arrays and combinators included)
    that has no description."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from undescribed(item, f"{where}[{index}]")
        return
    if not isinstance(schema, dict):
        return
    for name, prop in schema.get("properties", {}).items():
        if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
            yield f"{where}.{name}"
        yield from undescribed(prop, f"{where}.{name}")
    for key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf"):
        if key in schema:
            yield from undescribed(schema[key], f"{where}.{key}")


def checkable(schema: Any, components: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema, for validating examples: references
    inlined, ``nullable`` as a null alternative, and objects closed to properties they do
    not declare (an example with a misspelt field fails)."""
    if isinstance(schema, list):
        return [checkable(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return checkable(components[name], components)
    converted = {
        key: value if key in ("example", "enum", "required") else checkable(value, components)
        for key, value in schema.items()
        if key not in ("nullable", "example", "description")
    }
    if "properties" in converted:
        # Convert property maps by name, not as schemas (a property may be called "type").
        converted["properties"] = {
            name: checkable(prop, components) for name, prop in schema["properties"].items()
        }
        converted.setdefault("additionalProperties", False)
    if schema.get("nullable"):
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


class TestEveryOperationIsDocumented:
    def test_it_has_a_declared_tag(self, document):
        declared = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
        assert all(about.strip() for about in declared.values()), declared
        used: set[str] = set()
        for name, operation in operations(document):
            assert len(operation.get("tags", [])) == 1, f"{name}: give it one tag"
            assert operation["tags"][0] in declared, f"{name}: tag {operation['tags']} not declared"
            used.update(operation["tags"])
        assert used == set(declared), f"declared but unused tags: {set(declared) - used}"

    def test_it_has_a_summary_and_a_description(self, document):
        for name, operation in operations(document):
            assert operation.get("summary", "").strip(), name
            description = operation.get("description", "").strip()
            assert len(description) >= 40, f"{name}: describe what it does and for whom"

    def test_a_body_has_an_example(self, document):
        bodies = 0
        for name, operation in operations(document):
            if "requestBody" in operation:
                bodies += 1
                media = operation["requestBody"]["content"]["application/json"]
                assert "example" in media, f"{name}: the request body has no example"
        assert bodies >= 10

    def test_a_success_answer_has_an_example(self, document):
        for name, operation in operations(document):
            answers = list(successes(operation))
            assert answers, f"{name}: no documented success answer"
            for status, media in answers:
                assert "example" in media, f"{name} {status}: the answer has no example"

    def test_every_parameter_is_described(self, document):
        for name, operation in operations(document):
            for parameter in operation.get("parameters", []):
                assert parameter.get("description", "").strip(), (name, parameter["name"])


class TestEverySchemaIsDocumented:
    def test_every_property_has_a_description(self, document):
        missing = [
            field
            for schema_name, schema in document["components"]["schemas"].items()
            for field in undescribed(schema, schema_name)
        ]
        for name, operation in operations(document):  # inline answers (pages)
            for status, media in successes(operation):
                missing += undescribed(media["schema"], f"{name} {status}")
        assert not missing, "add metadata={'description': ...} to: " + ", ".join(missing)

    def test_the_walk_finds_a_missing_description(self):
        """The check above can fail: an undescribed property, however deep, is named."""
        schema = {
            "properties": {
                "a": {"type": "string", "description": "ok"},
                "b": {"type": "array", "items": {"properties": {"c": {"type": "integer"}}}},
            }
        }
        assert list(undescribed(schema, "S")) == ["S.b", "S.b.items.c"]


class TestExamplesMatchTheirSchemas:
    def examples(self, document: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
        for name, operation in operations(document):
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" in body:
                yield f"{name} body", body["schema"], body["example"]
            for status, media in successes(operation):
                if "example" in media:
                    yield f"{name} {status}", media["schema"], media["example"]

    def test_every_example_is_valid(self, document):
        components = document["components"]["schemas"]
        checked = 0
        for where, schema, example in self.examples(document):
            validator = jsonschema_rs.Draft4Validator(checkable(schema, components))
            errors = [error.message for error in validator.iter_errors(example)]
            assert not errors, f"{where}: {errors}"
            checked += 1
        assert checked >= 30

    def test_an_invalid_example_is_caught(self, document):
        components = document["components"]["schemas"]
        order = document["paths"]["/open/v1/orders"]["post"]["requestBody"]["content"]
        schema = checkable(order["application/json"]["schema"], components)
        validator = jsonschema_rs.Draft4Validator(schema)
        assert validator.is_valid(order["application/json"]["example"])
        assert not validator.is_valid({**order["application/json"]["example"], "amount": 1})
        assert not validator.is_valid({**order["application/json"]["example"], "member": {}})


class TestTheSigningSchemeIsDescribed:
    def test_the_document_tells_how_to_sign(self, document):
        info = document["info"]["description"]
        for words in (
            "X-App-Key",
            "X-Timestamp",
            "X-Nonce",
            "X-Signature",
            "HMAC-SHA256",
            "SHA256_HEX(BODY)",
            "300 s",
            "query string exactly as sent",
        ):
            assert words in info, words
        schemes = document["components"]["securitySchemes"]
        for name in ("appKey", "timestamp", "nonce", "signature"):
            assert "Signing open-API requests" in schemes[name]["description"], name
        assert all(scheme.get("description") for scheme in schemes.values())

    def test_the_described_string_to_sign_is_the_one_verified(self):
        """The recipe in the document, followed literally, gives the signature the server
        computes (app.partners.rules)."""
        import hashlib
        import hmac

        from app.partners import rules

        body = b'{"points": 100}'
        method, path, timestamp, nonce = "post", "/open/v1/points/redeem?x=1", "1796223535", "n1"
        message = "\n".join(
            [method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()]
        )
        described = hmac.new(b"s3cret", message.encode(), hashlib.sha256).hexdigest()
        assert described == rules.sign("s3cret", method, path, timestamp, nonce, body)

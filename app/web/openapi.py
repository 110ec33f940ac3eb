"""The OpenAPI document, generated from the endpoints' marshmallow schemas."""

from __future__ import annotations

import re
import sys
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import IntegerConverter

from app.web import openapi_text as text
from app.web.endpoint import EndpointDoc

_ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer: the HTTP status plus this envelope.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "description": "What went wrong.",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable snake_case code: validation_error, unauthorized, "
                    "forbidden, not_found, conflict, insufficient_points, limit_reached, "
                    "idempotency_mismatch, rate_limited, unavailable ...",
                },
                "message": {
                    "type": "string",
                    "description": "A sentence for people; may change, do not parse it.",
                },
                "details": {
                    "type": "object",
                    "description": "Machine-readable specifics: `fields` (the bad fields and "
                    "why) for validation_error, `reason` for some 401 and 409 answers.",
                },
            },
        }
    },
    "example": {
        "error": {
            "code": "validation_error",
            "message": "The request is not valid.",
            "details": {"fields": {"code": ["Missing data for required field."]}},
        }
    },
}
_ERROR_RESPONSE = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "member": [{"memberToken": []}],
    "admin": [{"adminToken": []}],
    "partner": [{"appKey": [], "timestamp": [], "nonce": [], "signature": []}],
}
_PAGE_ARGS = ("limit", "cursor")
_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def build_openapi(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="Huiyuan",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": text.INFO},
        tags=[{"name": name, "description": about} for name, about in text.TAGS.items()],
    )
    _add_components(spec)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        doc: EndpointDoc | None = getattr(view, "_endpoint_doc", None)
        if doc is None:
            continue
        operations = {
            method.lower(): _operation(doc, view, rule.arguments, rule._converters)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        }
        spec.path(path=_RULE_ARG.sub(r"{\1}", rule.rule), operations=operations)
    document = spec.to_dict()
    _add_schema_constraints(document)
    return document


def _add_schema_constraints(document: dict[str, Any]) -> None:
    """Constraints on a whole object that fields cannot state (``minProperties`` ...): a
    schema class declares them as ``OPENAPI = {...}`` next to the validator enforcing them."""
    for name, component in document.get("components", {}).get("schemas", {}).items():
        module_name, _, class_name = name.rpartition(".")
        module = sys.modules.get(module_name)
        extra = getattr(getattr(module, class_name, None), "OPENAPI", None)
        if isinstance(extra, dict):
            component.update(extra)


def _schema_name(schema: Any) -> str:
    """Module-qualified, so that two packages may each have, say, a ``LoginOut``."""
    cls = resolve_schema_cls(schema)
    cls = cls[0] if isinstance(cls, list) else cls
    return f"{cls.__module__}.{cls.__name__}"


def _add_components(spec: APISpec) -> None:
    spec.components.schema("Error", _ERROR_SCHEMA)
    for name, about in (("memberToken", text.MEMBER_BEARER), ("adminToken", text.ADMIN_BEARER)):
        scheme = {"type": "http", "scheme": "bearer", "description": about}
        spec.components.security_scheme(name, scheme)
    for name, header, about in (
        ("appKey", "X-App-Key", text.APP_KEY),
        ("timestamp", "X-Timestamp", text.TIMESTAMP),
        ("nonce", "X-Nonce", text.NONCE),
        ("signature", "X-Signature", text.SIGNATURE),
    ):
        scheme = {"type": "apiKey", "in": "header", "name": header, "description": about}
        spec.components.security_scheme(name, scheme)


def _path_schema(converters: dict[str, Any], name: str) -> dict[str, Any]:
    """What the route's converter accepts: ``<int(max=...):id>`` is a bounded integer."""
    converter = converters.get(name)
    if isinstance(converter, IntegerConverter):
        schema: dict[str, Any] = {"type": "integer", "minimum": converter.min or 0}
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    return {"type": "string"}


def _operation(
    doc: EndpointDoc, view: Any, path_args: Any, converters: dict[str, Any]
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": doc.summary, "responses": _responses(doc)}
    if doc.tag:
        operation["tags"] = [doc.tag]
    if doc.description:
        operation["description"] = doc.description
    if getattr(view, "_idempotent", False):
        # The same Idempotency-Key with another request, or while the first still runs.
        operation["responses"].setdefault(
            "409", {"description": "idempotency_mismatch or conflict", **_ERROR_RESPONSE}
        )
    auth = getattr(view, "_auth", None)
    if auth in _SECURITY:
        operation["security"] = _SECURITY[auth]
    parameters: list[dict[str, Any]] = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "description": text.PATH_PARAMETERS.get(name, ""),
            "schema": _path_schema(converters, name),
        }
        for name in sorted(path_args)
    ]
    if doc.query is not None:
        parameters.append({"in": "query", "schema": _query_schema(doc.query, doc.paginated)})
    if doc.paginated:
        parameters += [
            {
                "in": "query",
                "name": "limit",
                "description": text.LIMIT,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            {
                "in": "query",
                "name": "cursor",
                "description": text.CURSOR,
                "schema": {"type": "string"},
            },
        ]
    if getattr(view, "_idempotent", False) and doc.status == 201:
        # A creation sent again (same external id) answers 200 with the first answer.
        created = operation["responses"]["201"]
        operation["responses"].setdefault("200", {**created, "description": "Replay"})
    if getattr(view, "_idempotent", False):
        parameters.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "description": text.IDEMPOTENCY_KEY,
                "schema": {"type": "string", "maxLength": 64},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        media: dict[str, Any] = {"schema": doc.body}
        if doc.example is not None:
            media["example"] = doc.example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    return operation


def _query_schema(query: type[Schema], paginated: bool) -> Any:
    """The query schema, less the pagination arguments documented below (declared there
    only so that parsing accepts them): apispec refuses a parameter named twice."""
    if not paginated:
        return query
    declared = query().fields
    return query(exclude=[name for name in _PAGE_ARGS if name in declared])


def _responses(doc: EndpointDoc) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if doc.response is not None:
        schema: Any = doc.response
        if doc.paginated:
            schema = {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "description": "This page, in the list's order.",
                        "items": doc.response,
                    },
                    "next_cursor": {
                        "type": "string",
                        "nullable": True,
                        "description": "Pass as ?cursor= for the next page; null on the last.",
                    },
                },
            }
        media: dict[str, Any] = {"schema": schema}
        if doc.response_example is not None:
            media["example"] = doc.response_example
        content = {"application/json": media}
    responses: dict[str, Any] = {str(doc.status): {"description": "Success", "content": content}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses["422"] = {"description": "validation_error", **error}
    for code in doc.errors:
        status, _, named = code.partition(":")  # "409:already_running" names its code
        responses.setdefault(status, {"description": named or "Error", **error})
    responses.setdefault("503", {"description": "unavailable", **error})  # any endpoint
    return responses

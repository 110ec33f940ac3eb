"""Declare an endpoint's schemas once: they parse the request, dump the answer and
feed the OpenAPI document."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from flask import Response, jsonify, request
from marshmallow import Schema, ValidationError

from app.errors import ValidationFailed
from app.web.jsonbody import request_json

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class EndpointDoc:
    summary: str
    body: type[Schema] | None
    query: type[Schema] | None
    response: type[Schema] | None
    status: int
    paginated: bool
    errors: tuple[str, ...] = field(default_factory=tuple)
    # What the OpenAPI document shows of it (docs/openapi.json, GET /docs): the area it
    # belongs to, what it does for whom, and a request and an answer as they look.
    tag: str | None = None
    description: str | None = None
    example: Any = None
    response_example: Any = None


@dataclass(frozen=True)
class Answer:
    """A view's result with a status other than the endpoint's usual one (a replay: 200)."""

    data: Any
    status: int


def load(schema: Schema, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ValidationFailed("The request is not valid.", fields=error.messages) from None


def _refuse_fields(data: dict[str, Any]) -> None:
    """A body-less endpoint takes no fields: ``{}`` is fine, anything in it is unknown,
    named as marshmallow names unknown fields elsewhere."""
    if data:
        unknown = {name: ["Unknown field."] for name in sorted(data)}
        raise ValidationFailed("The request is not valid.", fields=unknown)


def endpoint(
    *,
    summary: str,
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    paginated: bool = False,
    body_optional: bool = False,
    errors: tuple[str, ...] = (),
    tag: str | None = None,
    description: str | None = None,
    example: Any = None,
    response_example: Any = None,
) -> Callable[[F], F]:
    doc = EndpointDoc(
        summary,
        body,
        query,
        response,
        status,
        paginated,
        errors,
        tag=tag,
        description=description,
        example=example,
        response_example=response_example,
    )

    # One instance of each schema per endpoint: building one copies every field, a large
    # share of a cheap request's cost; load and dump keep no state between calls.
    body_schema = body() if body is not None else None
    query_schema = query() if query is not None else None
    response_schema = response() if response is not None and not paginated else None

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if body_schema is not None:
                kwargs["body"] = load(body_schema, request_json(allow_empty=body_optional))
            elif request.method in ("POST", "PUT", "PATCH"):
                _refuse_fields(request_json(allow_empty=True))  # malformed bodies too
            if query_schema is not None:
                kwargs["query"] = load(query_schema, request.args.to_dict())
            result = view(*args, **kwargs)
            if isinstance(result, Response):
                return result
            answered = status
            if isinstance(result, Answer):
                result, answered = result.data, result.status
            if response_schema is not None:
                result = response_schema.dump(result)
            return jsonify(result), answered

        wrapper._endpoint_doc = doc  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate

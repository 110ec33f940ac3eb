"""Validating settings documents: the fields their schemas use and the one parse.

A settings document is stored as JSON and read as a frozen dataclass: the context's schema
validates it and its ``@post_load`` builds the dataclass, for an operator's PUT and for
every read alike.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields


class StrictInt(fields.Integer):
    """An integer given as a JSON integer: not a string, a float, or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def about(description: str) -> dict[str, str]:
    """A field's description in the OpenAPI document: ``fields.Integer(metadata=about(...))``."""
    return {"description": description}


class InvalidSettingsDocument(Exception):
    """A stored settings document its schema refuses: the server's data is wrong, not the
    request, so it is not a DomainError (it answers 500 and is logged with this message)."""

    def __init__(self, key: str, messages: Any) -> None:
        super().__init__(f"The stored settings document {key!r} is not valid: {messages}")
        self.key = key
        self.messages = messages


def parse(schema: Schema, key: str, document: Any) -> Any:
    """The typed value of a stored document, or InvalidSettingsDocument naming what is wrong."""
    try:
        return schema.load(document)
    except ValidationError as error:
        raise InvalidSettingsDocument(key, error.messages) from None

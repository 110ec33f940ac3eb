"""docs/openapi.json, the contract the mini-program and store systems read, is the one
the code generates: regenerate it with `flask --app wsgi openapi --output docs/openapi.json`."""

import json
from pathlib import Path

from app.web.openapi import build_openapi

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_current(app):
    committed = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    generated = json.loads(json.dumps(build_openapi(app)))
    assert committed == generated, (
        "docs/openapi.json is stale: run `flask --app wsgi openapi --output docs/openapi.json`"
    )

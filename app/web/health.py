from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from app.web.deps import container
from app.web.openapi import build_openapi

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    deps = container()
    failed: list[str] = []
    try:
        with deps.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        log.warning("readiness: database unavailable", exc_info=True)
        failed.append("database")
    try:
        deps.redis.ping()
    except Exception:
        log.warning("readiness: redis unavailable", exc_info=True)
        failed.append("redis")
    if failed:
        body = {"status": "unavailable", "failed": failed}
        return jsonify(body), 503
    return jsonify({"status": "ok"})


@bp.get("/openapi.json")
def openapi() -> Any:
    app: Flask = current_app  # type: ignore[assignment]
    spec = app.extensions.get("huiyuan.openapi")
    if spec is None:
        spec = app.extensions["huiyuan.openapi"] = build_openapi(app)
    return jsonify(spec)

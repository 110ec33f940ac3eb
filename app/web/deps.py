from __future__ import annotations

from flask import current_app

from app.container import Container


def container() -> Container:
    return current_app.extensions["huiyuan"]  # type: ignore[no-any-return]

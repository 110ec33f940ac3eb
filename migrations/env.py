"""Alembic environment: runs on the connection the app hands it (see app/migrate.py)."""

from __future__ import annotations

from alembic import context

import app.models  # noqa: F401 - registers every table on the metadata
from app.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `flask --app wsgi db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

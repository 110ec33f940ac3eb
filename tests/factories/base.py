"""The base every factory shares: rows are flushed into the bound session, never committed."""

from __future__ import annotations

from factory.alchemy import SQLAlchemyModelFactory


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"

"""Operator and staff accounts."""

from __future__ import annotations

import factory

from app.admins.models import AdminUser
from tests.factories.base import BaseFactory


class AdminFactory(BaseFactory):
    class Meta:
        model = AdminUser

    username = factory.Sequence(lambda n: f"admin{n}")
    password_hash = "not-a-usable-hash"
    role = "admin"

"""Where the tests run: SQLite and an in-process Redis by default, MariaDB and Redis in CI.

TEST_DATABASE_URL / TEST_REDIS_URL select the real services (see .ci/run).
"""

from __future__ import annotations

import os

from app.config import normalise_database_url

DATABASE_URL = normalise_database_url(os.environ.get("TEST_DATABASE_URL", "").strip() or "")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip() or None
ON_MARIADB = DATABASE_URL.startswith("mysql")
SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"

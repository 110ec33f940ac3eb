"""The instant service tests stand at: 12:00 on 1 June 2025 in Shanghai, where the
``frozen`` fixture of tests/services/conftest.py stops the clock."""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai

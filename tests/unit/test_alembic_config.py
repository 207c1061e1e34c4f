"""Migrations find the database whatever its URL holds: a percent-encoded socket path or
password reaches Alembic unchanged (configparser would read "%" as interpolation)."""

from __future__ import annotations

from services.shared.db import alembic_config
from services.shared.settings import Settings


def test_a_percent_encoded_url_reaches_alembic_unchanged() -> None:
    url = "postgresql+asyncpg://svc:p%40ss@/casework?host=%2Ftmp%2Fpg"
    config = alembic_config(Settings(service_name="allocation", database_url=url))
    assert config.get_main_option("sqlalchemy.url") == url

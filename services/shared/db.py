"""Async SQLAlchemy engine and Alembic migrations. Each service owns one PostgreSQL schema,
named after the service; its migrations live in `services/<name>/migrations/`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.shared.settings import Settings

ALEMBIC_DIR = Path(__file__).parent / "alembic"
SERVICES_DIR = Path(__file__).parent.parent
# The plumbing's own revisions (outbox, inbox and their companions), a branch beside each
# service's chain.
PLUMBING_MIGRATIONS = Path(__file__).parent / "plumbing_migrations"


async def insert_many(conn: AsyncConnection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Inserts rows with one executemany (asyncpg pipelines the rows in one round trip)."""
    if rows:
        await conn.execute(statement, rows)


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=8,
        max_overflow=4,
        pool_pre_ping=True,
        # TR07: a failed statement's parameters (a webhook secret, say) stay out of logs and
        # dead-letter reasons.
        hide_parameters=True,
        # The read API and the consumer see committed data only; no ORM, no expiry.
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("version_path_separator", "os")
    config.set_main_option(
        "version_locations",
        os.pathsep.join(
            [str(SERVICES_DIR / settings.service_name / "migrations"), str(PLUMBING_MIGRATIONS)]
        ),
    )
    # Alembic's options go through configparser, which reads "%" as interpolation: a URL with a
    # percent-encoded socket path or password must have it doubled.
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    config.set_main_option("schema", settings.db_schema)
    return config


async def migrate(settings: Settings) -> None:
    """Bring the service's schema to the newest revision (safe with several instances: the
    migration holds an advisory lock)."""
    await asyncio.to_thread(command.upgrade, alembic_config(settings), "heads")

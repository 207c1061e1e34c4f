"""Alembic environment shared by every service: the service's schema is created if missing and
migrations run under an advisory lock so concurrent instances do not race."""

import asyncio

from alembic import context
from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config
SCHEMA = config.get_main_option("schema") or "public"


def _run(connection: Connection) -> None:
    connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"migrate:{SCHEMA}"))))
    # Written as the service (what an audit trigger records as the writer: migration access_0004).
    connection.execute(select(func.set_config("application_name", SCHEMA, True)))
    # Only when missing: a service's own role may not create schemas (deploy/db_roles.py), and
    # CREATE SCHEMA IF NOT EXISTS asks for that right even when the schema is there.
    exists = connection.scalar(text("select 1 from pg_namespace where nspname = :s"), {"s": SCHEMA})
    if not exists:
        connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    context.configure(
        connection=connection,
        version_table_schema=SCHEMA,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())

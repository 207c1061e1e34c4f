"""Finds a real broker and a real PostgreSQL, in this order: environment variables,
testcontainers (where a Docker engine answers), the embedded stack; makes a fresh database and
the platform's topics on them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from deploy.stack import EmbeddedBroker, EmbeddedPostgres, create_database, create_topics


@dataclass
class Infra:
    bootstrap_servers: str
    database_url: str  # a fresh database of its own for this test session
    origin: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # a missing engine shows up as assorted exceptions
        return False


@contextlib.contextmanager
def _broker(own: bool = False) -> Iterator[tuple[str, str]]:
    if not own and (servers := os.environ.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS")):
        yield servers, "env"
        return
    if _docker_answers():
        try:
            from testcontainers.kafka import KafkaContainer

            with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
                yield kafka.get_bootstrap_server(), "testcontainers"
            return
        except Exception:
            pass
    broker = EmbeddedBroker()
    try:
        yield broker.start(), "embedded"
    finally:
        broker.stop()


@contextlib.contextmanager
def _postgres(tmp: Path) -> Iterator[tuple[str, str]]:
    if url := os.environ.get("CASEWORK_DATABASE_URL"):
        yield url, "env"
        return
    if _docker_answers():
        try:
            from testcontainers.postgres import PostgresContainer

            with PostgresContainer("postgres:16", driver="asyncpg") as pg:
                yield pg.get_connection_url(), "testcontainers"
            return
        except Exception:
            pass
    server = EmbeddedPostgres(tmp / "pgdata", database="postgres")
    try:
        yield server.start(), "embedded"
    finally:
        server.stop()


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


@contextlib.contextmanager
def infrastructure(tmp: Path, *, own_broker: bool = False) -> Iterator[Infra]:
    """`own_broker`: never the environment's broker (a platform started beside other services
    on it would share their consumer groups)."""
    with _broker(own_broker) as (servers, broker_origin), _postgres(tmp) as (server_url, pg_origin):
        name = f"casework_test_{uuid.uuid4().hex[:12]}"
        admin = _with_database(server_url, "postgres")
        asyncio.run(create_database(admin, name))
        asyncio.run(create_topics(servers))
        try:
            yield Infra(
                servers, _with_database(server_url, name), f"broker={broker_origin} db={pg_origin}"
            )
        finally:
            with contextlib.suppress(Exception):
                asyncio.run(_drop_database(admin, name))


@contextlib.contextmanager
def isolated_infrastructure(infra: Infra, label: str) -> Iterator[tuple[str, str]]:
    """A broker of its own (embedded tansu) and a fresh database on the session's server, for
    tests whose messages must not meet the session's services: killed processes and their
    replays, or a service's partner simulated by the test itself."""
    broker = EmbeddedBroker()
    bootstrap = broker.start()
    asyncio.run(create_topics(bootstrap))
    name = f"casework_{label}_{uuid.uuid4().hex[:10]}"
    admin = _with_database(infra.database_url, "postgres")
    asyncio.run(create_database(admin, name))
    try:
        yield bootstrap, _with_database(infra.database_url, name)
    finally:
        broker.stop()
        with contextlib.suppress(Exception):
            asyncio.run(_drop_database(admin, name))

"""Each service connects with its own database role that owns only its schema (issue 11's audit
item, TR07's blast radius): one service's credential reaches one service's data. Attacks as the
allocation service's role on the other services' schemas, on `public` and on new schemas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from deploy.db_roles import provision, role_name
from deploy.stack import SERVICES, create_database
from services.shared import db
from services.shared.settings import Settings
from tests.support.infra import Infra


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _other_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
async def service_urls(infra: Infra) -> AsyncIterator[dict[str, str]]:
    """A database of its own, provisioned and migrated by every service as its own role."""
    name = f"roles_{uuid.uuid4().hex[:8]}"
    admin = _other_database(infra.database_url, name)
    await create_database(_other_database(infra.database_url, "postgres"), name)
    urls = await provision(admin, SERVICES)
    for service, url in urls.items():
        await db.migrate(Settings(service_name=service, database_url=url))
    yield urls


async def _as(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_libpq(url))


async def test_every_service_migrates_its_schema_as_its_own_role(
    service_urls: dict[str, str],
) -> None:
    for service, url in service_urls.items():
        conn = await _as(url)
        try:
            owner = await conn.fetchval(
                "select pg_get_userbyid(nspowner) from pg_namespace where nspname = $1", service
            )
            tables = await conn.fetchval(
                "select count(*) from pg_tables where schemaname = $1 and tableowner = $2",
                service,
                role_name(service),
            )
        finally:
            await conn.close()
        assert owner == role_name(service) and tables >= 4  # its own tables, outbox and inbox


@pytest.mark.parametrize(
    "statement",
    [
        "select * from signoff.inbox",
        "select * from access.outbox",
        "insert into notifications.inbox (message_id) values (gen_random_uuid())",
        "delete from access.inbox",
        "create table signoff.planted (x int)",
        "create table public.planted (x int)",
        "create schema planted",
    ],
)
async def test_a_services_role_cannot_touch_another_services_schema(
    service_urls: dict[str, str], statement: str
) -> None:
    conn = await _as(service_urls["allocation"])
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_provisioning_again_changes_nothing_and_adopts_a_schema_made_before_roles(
    infra: Infra,
) -> None:
    name = f"roles_{uuid.uuid4().hex[:8]}"
    admin = _other_database(infra.database_url, name)
    await create_database(_other_database(infra.database_url, "postgres"), name)
    # An older stack: the schema and its tables were made by the administrator.
    await db.migrate(Settings(service_name="signoff", database_url=admin))
    urls = await provision(admin, ["signoff"])
    assert urls == await provision(admin, ["signoff"])
    conn = await _as(urls["signoff"])
    try:
        await conn.execute("delete from signoff.inbox")  # its own again
        foreign = await conn.fetchval(
            "select count(*) from pg_tables where schemaname = 'signoff' and tableowner <> $1",
            role_name("signoff"),
        )
    finally:
        await conn.close()
    assert foreign == 0

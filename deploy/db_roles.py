"""One database role per service: each service connects as itself and owns only its schema.

A service's role may connect to the platform's database and use its own schema (which it owns,
so its migrations create and change tables there); it cannot create schemas, cannot use any
other service's schema, and cannot create objects in `public`. A bug or a stolen credential in
one service therefore reaches one service's data only (TR07's blast radius, issue 11).

`provision` is run once per database by an administrator: by the embedded stack on start, by
the compose file's init script, by the Kubernetes provisioning Job (`python -m
deploy.db_roles`). It is idempotent."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

ROLE_PREFIX = "casework_"


def role_name(service: str) -> str:
    return f"{ROLE_PREFIX}{service}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def service_url(admin_url: str, service: str, password: str | None = None) -> str:
    """`admin_url` (any SQLAlchemy or libpq URL of the database) with the service's role."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = quote(role_name(service), safe="")
    secret = f":{quote(password, safe='')}" if password else ""
    return urlunsplit(parts._replace(netloc=f"{user}{secret}@{host}"))


async def _provision_once(
    conn: asyncpg.Connection, services: list[str], passwords: Mapping[str, str]
) -> None:
    database = await conn.fetchval("select current_database()")
    async with conn.transaction():
        # Nobody but the roles named here connects or creates anything in `public`.
        await conn.execute(f"revoke all on database {_ident(database)} from public")
        await conn.execute("revoke create on schema public from public")
        for service in services:
            role = role_name(service)
            exists = await conn.fetchval("select 1 from pg_roles where rolname = $1", role)
            if not exists:
                await conn.execute(f"create role {_ident(role)} login")
            password = passwords.get(service)
            if password:
                literal = "'" + password.replace("'", "''") + "'"
                await conn.execute(f"alter role {_ident(role)} password {literal}")
            await conn.execute(
                f"grant connect, temporary on database {_ident(database)} to {_ident(role)}"
            )
            await conn.execute(
                f"create schema if not exists {_ident(service)} authorization {_ident(role)}"
            )
            await conn.execute(f"alter schema {_ident(service)} owner to {_ident(role)}")
            # A schema made before roles existed (an older stack): its objects change owner too
            # (a table's own sequences follow it).
            owned = await conn.fetch(
                """
                select c.relname, c.relkind from pg_class c
                join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'S')
                  and pg_get_userbyid(c.relowner) <> $2
                  and not exists (
                    select 1 from pg_depend d
                    where d.objid = c.oid and d.deptype in ('a', 'i') and c.relkind = 'S'
                  )
                order by c.relkind = 'S'
                """,
                service,
                role,
            )
            for relname, relkind in owned:
                kind = {"S": "sequence", "v": "view", "m": "materialized view"}.get(
                    relkind, "table"
                )
                await conn.execute(
                    f"alter {kind} {_ident(service)}.{_ident(relname)} owner to {_ident(role)}"
                )


async def provision(
    admin_url: str, services: Iterable[str], passwords: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Creates (or brings up to date) each service's role and schema in the database of
    `admin_url`, a superuser's URL; returns each service's own URL (same host and database)."""
    wanted = list(services)
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        for attempt in range(5):
            try:
                await _provision_once(conn, wanted, passwords or {})
                break
            except (asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError):
                # Roles belong to the whole server: another database's provisioning may have
                # created the same role a moment ago. The next attempt finds it.
                if attempt == 4:
                    raise
            except asyncpg.InternalServerError as exc:  # "tuple concurrently updated"
                if "concurrently" not in str(exc) or attempt == 4:
                    raise
    finally:
        await conn.close()
    return {s: service_url(admin_url, s, (passwords or {}).get(s)) for s in wanted}


def main() -> None:
    """`python -m deploy.db_roles`: provisions the roles named by CASEWORK_SERVICES (comma
    separated) in CASEWORK_ADMIN_DATABASE_URL's database, each with the password in
    CASEWORK_DB_PASSWORD_<SERVICE> (supplied as a Secret; a role without one has none)."""
    services = [s for s in os.environ.get("CASEWORK_SERVICES", "").split(",") if s]
    passwords = {
        s: os.environ[f"CASEWORK_DB_PASSWORD_{s.upper()}"]
        for s in services
        if os.environ.get(f"CASEWORK_DB_PASSWORD_{s.upper()}")
    }
    urls = asyncio.run(provision(os.environ["CASEWORK_ADMIN_DATABASE_URL"], services, passwords))
    for service in urls:
        print(f"{service}: role {role_name(service)} owns schema {service}")


if __name__ == "__main__":
    main()

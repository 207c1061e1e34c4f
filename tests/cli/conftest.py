"""The `casework` CLI run as a subprocess against the real stack: the four services as their own
processes over a broker of their own (so no other test's in-process services answer their
commands) and a fresh database on the test infrastructure's PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from deploy.client import write_stack_file
from deploy.stack import (
    DEV_ROLE_HOLDERS,
    EDGE,
    DevIdentityProvider,
    EmbeddedBroker,
    Stack,
    available_services,
    create_database,
    create_topics,
)
from tests.support.infra import Infra

ROOT = Path(__file__).resolve().parents[2]


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


@pytest.fixture
def fresh_database(infra: Infra) -> Iterator[str]:
    """A database of its own on the infrastructure's server, dropped afterwards."""
    name = f"casework_cli_{uuid.uuid4().hex[:10]}"
    admin = with_database(infra.database_url, "postgres")
    asyncio.run(create_database(admin, name))
    try:
        yield with_database(infra.database_url, name)
    finally:
        asyncio.run(drop_database(admin, name))


def cli_env(**overrides: str) -> dict[str, str]:
    """The environment of a CLI run: nothing inherited that points at a broker or key, so the
    CLI finds the stack through its state directory (or starts its own)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CASEWORK_") or k == "CASEWORK_LOG_LEVEL"
    }
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONUNBUFFERED="1", **overrides)
    return env


@dataclass
class Cli:
    state_dir: Path

    def login(self, *users: str) -> None:
        """`casework login USER` for each: people sign in before they send or read."""
        for user in users:
            result = self(*("login", user))
            assert result.returncode == 0, result.stderr

    def __call__(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deploy", "--state-dir", str(self.state_dir), *args],
            cwd=ROOT,
            env=env or cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The services as processes, recorded in the state directory's stack.json as `casework up`
    records them; stopped when the module's tests are done."""
    state_dir = tmp_path_factory.mktemp("casework")
    name = f"casework_cli_{uuid.uuid4().hex[:10]}"
    admin = with_database(infra.database_url, "postgres")
    asyncio.run(create_database(admin, name))
    broker = EmbeddedBroker()
    stack = Stack(state_dir=state_dir)
    stack.identity = DevIdentityProvider(DEV_ROLE_HOLDERS)
    try:
        bootstrap = broker.start()
        asyncio.run(create_topics(bootstrap))
        (state_dir / "logs").mkdir()
        public, private = stack.edge_keys()
        stack.env = {
            "CASEWORK_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CASEWORK_DATABASE_URL": with_database(infra.database_url, name),
            "CASEWORK_OIDC_ISSUER": stack.identity.start(str(state_dir / "logs" / "idp.log")),
            "CASEWORK_ASSERTION_KEYS": public,
            "CASEWORK_LOG_JSON": "false",
            "CASEWORK_LOG_LEVEL": "WARNING",
        }
        stack.edge_env = {"CASEWORK_ASSERTION_SIGNING_KEY": private}
        for service in [*available_services(), EDGE]:
            stack.start_service(service, log_path=state_dir / "logs" / f"{service}.log")
        stack.wait_ready(timeout=120)
        write_stack_file(stack, state_dir)
        yield stack
    finally:
        stack.stop()
        broker.stop()
        asyncio.run(drop_database(admin, name))


@pytest.fixture(scope="module")
def cli(stack: Stack) -> Cli:
    cli = Cli(stack.state_dir)
    # The people the CLI tests act as (the directory's), signed in on the development provider.
    cli.login("so-north", "sm-enf", "hub-2", "directory-admin", "so-hub")  # so-hub: the default
    return cli

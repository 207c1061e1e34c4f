"""Shared fixtures: one real broker and one fresh PostgreSQL database per test session, an event
log reading every event topic, a command client, and the services running in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from services.shared import logs
from services.shared.auth import KeyPair, TokenIssuer
from services.shared.runtime import ServiceRuntime, ServiceSpec
from services.shared.settings import Settings
from tests.support.client import CommandClient, EventLog
from tests.support.infra import Infra, infrastructure

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    logs.configure("WARNING", json=False)
    with infrastructure(tmp_path_factory.mktemp("infra")) as found:
        yield found


@pytest.fixture(scope="session")
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(scope="session")
def issuer(keys: KeyPair) -> TokenIssuer:
    return TokenIssuer(keys.private_pem)


@pytest.fixture(scope="session")
def settings_for(infra: Infra, keys: KeyPair) -> Callable[..., Settings]:
    def make(name: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "service_name": name,
            "kafka_bootstrap_servers": infra.bootstrap_servers,
            "database_url": infra.database_url,
            "actor_public_key": keys.public_pem,
            "consumer_group": f"{name}-{RUN_ID}",
            "log_json": False,
            "relay_poll_seconds": 0.2,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
async def event_log(infra: Infra) -> AsyncIterator[EventLog]:
    log = EventLog(infra.bootstrap_servers)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture(scope="session")
async def commands(infra: Infra, issuer: TokenIssuer) -> AsyncIterator[CommandClient]:
    client = CommandClient(infra.bootstrap_servers, issuer)
    await client.start()
    yield client
    await client.stop()


class RunningService:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=runtime.asgi()), base_url="http://service"
        )


async def start_service(spec: ServiceSpec, settings: Settings) -> RunningService:
    runtime = ServiceRuntime(spec, settings)
    await runtime.start()
    return RunningService(runtime)


@pytest.fixture(scope="session")
async def allocation(settings_for: Callable[..., Settings]) -> AsyncIterator[RunningService]:
    from services.allocation.service import SPEC

    service = await start_service(SPEC, settings_for("allocation"))
    yield service
    await service.http.aclose()
    await service.runtime.stop()

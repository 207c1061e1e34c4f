"""Shared fixtures: one real broker, one fresh PostgreSQL database and one real OpenID Connect
provider per test session, an edge that publishes people's commands with signed assertions, an
event log reading every event topic, a command client that signs people in and sends through the
edge, and the services running in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from deploy.db_roles import provision
from deploy.identity import DevSignIn, SignedInUsers
from deploy.stack import DEV_ROLE_HOLDERS, SERVICES, DevIdentityProvider
from services.shared import logs
from services.shared.auth import SigningKey, key_set
from services.shared.runtime import ServiceRuntime, ServiceSpec
from services.shared.settings import Settings
from tests.support.client import CommandClient, EventLog, running_edge
from tests.support.infra import Infra, infrastructure

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    logs.configure("WARNING", json=False)
    with infrastructure(tmp_path_factory.mktemp("infra")) as found:
        yield found


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdentityProvider]:
    """The session's OpenID Connect provider, on a loopback port."""
    provider = DevIdentityProvider(DEV_ROLE_HOLDERS)
    provider.start(str(tmp_path_factory.mktemp("identity") / "identity.log"))
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
async def users(identity: DevIdentityProvider) -> AsyncIterator[SignedInUsers]:
    """People signed in through the provider's authorization-code flow, by user id."""
    signin = DevSignIn(identity.issuer)
    yield SignedInUsers(signin)
    await signin.aclose()


@pytest.fixture(scope="session")
def edge_key() -> SigningKey:
    """The test edge's signing key: only the edge holds it; services get its public key set."""
    return SigningKey.generate()


@pytest.fixture(scope="session")
async def service_database_urls(infra: Infra) -> dict[str, str]:
    """Each service connects as its own role, owning only its schema, as deployed."""
    return await provision(infra.database_url, SERVICES)


@pytest.fixture(scope="session")
def settings_for(
    infra: Infra,
    identity: DevIdentityProvider,
    edge_key: SigningKey,
    service_database_urls: dict[str, str],
) -> Callable[..., Settings]:
    def make(name: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "service_name": name,
            "kafka_bootstrap_servers": infra.bootstrap_servers,
            "database_url": service_database_urls.get(name, infra.database_url),
            "oidc_issuer": identity.issuer,
            "assertion_keys": key_set(edge_key),
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
async def edge(
    settings_for: Callable[..., Settings], edge_key: SigningKey
) -> AsyncIterator[httpx.AsyncClient]:
    """The edge's command API (in-process, over ASGI), publishing to the session's broker."""
    async with running_edge(settings_for("edge", assertion_signing_key=edge_key.dumps())) as http:
        yield http


@pytest.fixture(scope="session")
async def commands(
    infra: Infra, edge: httpx.AsyncClient, users: SignedInUsers
) -> AsyncIterator[CommandClient]:
    client = CommandClient(infra.bootstrap_servers, edge, users)
    await client.start()
    yield client
    await client.stop()


class RunningService:
    """A service started in-process; `http` is its read API, `as_user(id)` the same API with
    that user's sign-in token (TR05: every read needs one)."""

    def __init__(self, runtime: ServiceRuntime, users: SignedInUsers | None = None) -> None:
        self.runtime = runtime
        self.users = users
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=runtime.asgi()), base_url="http://service"
        )

    async def get(self, user_id: str, path: str, **params: str) -> httpx.Response:
        """GET `path` as the signed-in `user_id`."""
        assert self.users is not None, "started without signed-in users"
        headers = await self.users.headers(user_id)
        return await self.http.get(path, headers=headers, params=params or None)

    async def post(self, user_id: str, path: str, body: object) -> httpx.Response:
        """POST a JSON body to `path` as the signed-in `user_id`."""
        assert self.users is not None, "started without signed-in users"
        headers = await self.users.headers(user_id)
        return await self.http.post(path, headers=headers, json=body)


async def start_service(
    spec: ServiceSpec, settings: Settings, users: SignedInUsers | None = None
) -> RunningService:
    runtime = ServiceRuntime(spec, settings)
    await runtime.start()
    return RunningService(runtime, users)


@pytest.fixture(scope="session")
async def allocation(
    settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[RunningService]:
    from services.allocation.service import SPEC

    service = await start_service(SPEC, settings_for("allocation"), users)
    yield service
    await service.http.aclose()
    await service.runtime.stop()

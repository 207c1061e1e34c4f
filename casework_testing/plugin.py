"""A pytest plugin for downstream teams: their own tests against the real platform.

Installed with the `casework` package (entry point `pytest11: casework`); its fixtures start the
whole platform once per test session, the four services and the edge as their own processes on
a broker of their own (embedded tansu, or Kafka in a container where Docker answers) and a fresh
PostgreSQL database (the server named by CASEWORK_DATABASE_URL, a container, or the embedded
PostgreSQL), with the development OpenID Connect provider:

- `casework_platform`: where everything is (`.target`: broker, issuer, service URLs).
- `casework_users`: people signed in through the provider (`await users.headers("u1")`).
- `casework_client`: sends commands through the edge as a signed-in person and returns the whole
  outcome: `envelope, outcome = await casework_client.send(command, Actor(user_id=...))`.
- `casework_events`: the event topics from the beginning, typed:
  `await casework_events.next(DirectoryLoaded, lambda e: e.directory_id == "d1")`.

Heavy imports happen inside the fixtures: loading the plugin costs a test session nothing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from contracts import Envelope, Event
    from deploy.client import Bus, EdgeClient, Target
    from deploy.identity import SignedInUsers
    from deploy.stack import Stack

E = TypeVar("E", bound="Event")

# Variables that would point the platform's processes at someone else's identity or keys.
_NOT_INHERITED = (
    "CASEWORK_KAFKA_BOOTSTRAP_SERVERS",
    "CASEWORK_OIDC_ISSUER",
    "CASEWORK_ASSERTION_KEYS",
    "CASEWORK_ASSERTION_SIGNING_KEY",
)


@dataclass
class Platform:
    """The running platform: its processes (`stack`) and where they listen (`target`)."""

    stack: Stack
    target: Target
    state_dir: Path

    @property
    def bootstrap_servers(self) -> str:
        return self.target.broker()

    def url(self, service: str) -> str:
        """`edge`, `allocation`, `signoff`, `access` or `notifications`."""
        return self.target.url(service)


@contextlib.contextmanager
def start_platform(state_dir: Path, ready_timeout: float = 120.0) -> Iterator[Platform]:
    """The whole platform on infrastructure of its own, stopped on exit."""
    from casework_testing.infra import infrastructure
    from deploy.client import Target
    from deploy.stack import Stack

    with infrastructure(state_dir / "infra", own_broker=True) as infra:
        stack = Stack(state_dir=state_dir)
        with pytest.MonkeyPatch.context() as env:
            for name in _NOT_INHERITED:
                env.delenv(name, raising=False)
            env.setenv("CASEWORK_KAFKA_BOOTSTRAP_SERVERS", infra.bootstrap_servers)
            env.setenv("CASEWORK_DATABASE_URL", infra.database_url)
            try:
                settings = stack.start_infrastructure()
                stack.start_services(log_dir=state_dir / "logs")
                stack.wait_ready(timeout=ready_timeout)
            except (OSError, RuntimeError, TimeoutError) as exc:
                stack.stop()
                raise RuntimeError(
                    f"the platform did not start: {exc} (logs in {state_dir / 'logs'})"
                ) from exc
            except BaseException:
                stack.stop()
                raise
        try:
            yield Platform(
                stack,
                Target(
                    settings["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"],
                    settings["CASEWORK_OIDC_ISSUER"],
                    {name: s.url for name, s in stack.services.items()},
                    development_identity=True,
                    state_dir=state_dir,
                ),
                state_dir,
            )
        finally:
            stack.stop()


@pytest.fixture(scope="session")
def casework_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The platform, started once for the session (service logs under its state dir)."""
    with start_platform(tmp_path_factory.mktemp("casework")) as platform:
        yield platform


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def casework_users(casework_platform: Platform) -> AsyncIterator[SignedInUsers]:
    """People signed in through the platform's development OpenID Connect provider; anyone may
    sign in by user id, `directory-admin`, `integration-admin` and `operator` hold roles."""
    from deploy.identity import DevSignIn, SignedInUsers

    assert casework_platform.target.issuer is not None
    signin = DevSignIn(casework_platform.target.issuer)
    yield SignedInUsers(signin)
    await signin.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def casework_client(
    casework_platform: Platform, casework_users: SignedInUsers
) -> AsyncIterator[EdgeClient]:
    """The edge's command API as signed-in people: `send(command, actor)` returns the envelope
    the edge published and the command's whole outcome (its events, or a CommandRejected)."""
    from deploy.client import EdgeClient
    from deploy.stack import EDGE

    client = EdgeClient(casework_platform.url(EDGE), casework_users)
    yield client
    await client.aclose()


class EventStream:
    """Every event topic read from the beginning; records as typed models of `contracts`."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def envelopes(self) -> list[Envelope]:
        return self.bus.envelopes()

    def of(self, model: type[E], where: Callable[[E], Any] = lambda _: True) -> list[E]:
        """The events of `model`'s type so far that satisfy `where`."""
        found = []
        for envelope in self.bus.envelopes():
            if envelope.type == model.TYPE:
                event = model.model_validate(envelope.payload)
                if where(event):
                    found.append(event)
        return found

    async def next(
        self, model: type[E], where: Callable[[E], Any] = lambda _: True, timeout: float = 30.0
    ) -> E:
        """The first event of `model`'s type that satisfies `where`, waiting for it to arrive."""
        began = time.monotonic()
        try:
            found = await self.bus.wait_for(lambda: self.of(model, where), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no {model.TYPE} as wanted within {time.monotonic() - began:.0f}s"
            ) from None
        return found[0]  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def casework_events(casework_platform: Platform) -> AsyncIterator[EventStream]:
    """The platform's event topics from the beginning, typed (`next`, `of`)."""
    from deploy.client import Bus

    bus = Bus(casework_platform.bootstrap_servers)
    await bus.start(from_beginning=True)
    yield EventStream(bus)
    await bus.stop()

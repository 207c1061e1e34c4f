"""What the CLI and the walkthrough talk to: the edge (people's commands, as the signed-in user),
the broker (events in, for `events tail` and the walkthrough's sagas), the identity provider
(`casework login`) and the services' read APIs (with the signed-in user's token).

Where things are: environment variables first (CASEWORK_KAFKA_BOOTSTRAP_SERVERS,
CASEWORK_OIDC_ISSUER, CASEWORK_EDGE_URL, CASEWORK_<SERVICE>_URL), then the file `casework up`
writes (`<state dir>/stack.json`). Sign-ins are kept in `<state dir>/credentials.json`, readable by
its owner only. The CLI holds no signing key: the edge signs each command (TR02)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from contracts import (
    Actor,
    Command,
    CommandRejected,
    Envelope,
)
from deploy.identity import DevSignIn, SignedInUsers, SignInFailed, Tokens
from deploy.stack import EDGE, SERVICES, Stack
from services.edge.app import POSITION_HEADER, command_types
from services.shared.outcomes import outcome_topics

STATE_FILE = "stack.json"
CREDENTIALS_FILE = "credentials.json"


class ClientError(Exception):
    """Something the operator must fix (unknown name, bad field, nothing running): printed as a
    message, never as a traceback. Exit code 2 for invalid input, 1 when the stack fails."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# --- Where the stack is ---------------------------------------------------------------------


def write_stack_file(stack: Stack, state_dir: Path) -> Path:
    """Record the running stack's broker, database, key and service URLs for later commands."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    record = {
        "kafka_bootstrap_servers": stack.env.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS"),
        "database_url": stack.env.get("CASEWORK_DATABASE_URL"),
        "oidc_issuer": stack.env.get("CASEWORK_OIDC_ISSUER"),
        "development_identity": stack.identity is not None,
        "services": {name: service.url for name, service in stack.services.items()},
    }
    path.write_text(json.dumps(record, indent=2))
    return path


def remove_stack_file(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()


@dataclass
class Target:
    """The broker, the identity provider, the edge and the read APIs a command talks to."""

    bootstrap_servers: str | None
    issuer: str | None
    service_urls: dict[str, str] = field(default_factory=dict)
    development_identity: bool = False
    state_dir: Path = field(default_factory=lambda: Path(".casework"))

    @classmethod
    def resolve(cls, state_dir: Path) -> Target:
        recorded: dict[str, Any] = {}
        path = state_dir / STATE_FILE
        if path.exists():
            with contextlib.suppress(ValueError):
                recorded = json.loads(path.read_text())
        bootstrap = os.environ.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS") or recorded.get(
            "kafka_bootstrap_servers"
        )
        issuer = os.environ.get("CASEWORK_OIDC_ISSUER") or recorded.get("oidc_issuer")
        urls = dict(recorded.get("services") or {})
        for name in (*SERVICES, EDGE):
            if url := os.environ.get(f"CASEWORK_{name.upper()}_URL"):
                urls[name] = url
        development = bool(recorded.get("development_identity")) and not os.environ.get(
            "CASEWORK_OIDC_ISSUER"
        )
        return cls(bootstrap, issuer, urls, development, state_dir)

    def broker(self) -> str:
        if not self.bootstrap_servers:
            raise ClientError(
                "no broker: start the stack with `casework up` or set "
                "CASEWORK_KAFKA_BOOTSTRAP_SERVERS"
            )
        return self.bootstrap_servers

    def url(self, service: str) -> str:
        try:
            return self.service_urls[service].rstrip("/")
        except KeyError:
            raise ClientError(
                f"the {service} service's URL is unknown: set CASEWORK_{service.upper()}_URL or "
                "start the stack with `casework up`"
            ) from None

    def credentials(self) -> Credentials:
        return Credentials(self.state_dir / CREDENTIALS_FILE)


# --- Signing in -----------------------------------------------------------------------------


class Credentials:
    """Each signed-in user's tokens, and who signed in last (the default `--as`), in a file only
    its owner may read (as other CLIs keep theirs)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return dict(json.loads(self.path.read_text()))
        return {"users": {}, "current": None}

    def save(self, tokens: Tokens) -> None:
        data = self._read()
        data.setdefault("users", {})[tokens.user_id] = tokens.to_json()
        data["current"] = tokens.user_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600, exist_ok=True)
        self.path.chmod(0o600)
        self.path.write_text(json.dumps(data, indent=2))

    def current(self) -> str | None:
        current = self._read().get("current")
        return str(current) if current else None

    def tokens(self, user_id: str | None) -> Tokens:
        user_id = user_id or self.current()
        if not user_id:
            raise ClientError("nobody is signed in: run `casework login`")
        stored = self._read().get("users", {}).get(user_id)
        if stored is None:
            raise ClientError(f"not signed in as {user_id!r}: run `casework login {user_id}`")
        tokens = Tokens.from_json(stored)
        if not tokens.fresh():
            raise ClientError(f"the sign-in of {user_id!r} has expired: run `casework login`")
        return tokens


async def development_sign_in(target: Target, user_id: str) -> Tokens:
    """Signs `user_id` in on the embedded stack's development provider."""
    if not target.issuer:
        raise ClientError("no identity provider: start the stack or set CASEWORK_OIDC_ISSUER")
    signin = DevSignIn(target.issuer)
    try:
        return await signin.sign_in(user_id)
    except (SignInFailed, httpx.HTTPError) as exc:
        raise ClientError(f"sign-in failed: {exc}", 1) from None
    finally:
        await signin.aclose()


class StoredUsers(SignedInUsers):
    """People's tokens as `casework login` kept them."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def token(self, user_id: str) -> str:
        return self.credentials.tokens(user_id).id_token


# --- The edge -------------------------------------------------------------------------------


class EdgeClient:
    """Sends commands through the edge's command API as signed-in people; the edge publishes
    each with its assertion and answers with the outcome."""

    def __init__(self, edge_url: str, users: SignedInUsers, timeout: float = 30.0) -> None:
        self.users = users
        self.timeout = timeout
        self.http = httpx.AsyncClient(base_url=edge_url, timeout=timeout + 10)

    async def send(
        self, command: Command, actor: Actor, correlation_id: uuid.UUID | None = None
    ) -> tuple[Envelope, list[Envelope]]:
        """The envelope published and the command's whole outcome (events, or a rejection)."""
        headers = await self.users.headers(actor.user_id)
        if actor.position_id:
            headers[POSITION_HEADER] = actor.position_id
        params = {"timeout": str(self.timeout)}
        if correlation_id:
            params["correlation_id"] = str(correlation_id)
        try:
            response = await self.http.post(
                f"/commands/{command.TYPE}",
                json=command.model_dump(mode="json"),
                headers=headers,
                params=params,
            )
        except httpx.HTTPError as exc:
            raise ClientError(
                f"the edge at {self.http.base_url} does not answer: {exc}", 1
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text}
        if response.status_code in (200, 422):
            return Envelope.model_validate(body["command"]), [
                Envelope.model_validate(e) for e in body["outcome"]
            ]
        if response.status_code == 504:
            raise ClientError(
                f"no outcome for {command.TYPE} within {self.timeout:.0f}s: is its service "
                "running?",
                1,
            )
        reason = body.get("error", body)
        problems = "; ".join(f"{p['field']}: {p['problem']}" for p in body.get("problems", []))
        raise ClientError(
            f"{command.TYPE} refused by the edge ({response.status_code}): {reason}"
            + (f" ({problems})" if problems else "")
        )

    async def aclose(self) -> None:
        await self.http.aclose()


# --- Commands by name -----------------------------------------------------------------------


def find_command(name: str) -> type[Command]:
    """A command by its type (`allocation.assign_work.v1`), without the version
    (`allocation.assign_work`) or by its bare name when unambiguous (`assign_work`)."""
    types = command_types()
    if name in types:
        return types[name]
    matches = [
        model
        for type_name, model in types.items()
        if type_name.rsplit(".", 1)[0] == name or type_name.split(".")[1] == name
    ]
    if len({m.TYPE.rsplit(".", 1)[0] for m in matches}) == 1:
        return max(matches, key=_version)  # the newest version of one command
    if len(matches) > 1:
        raise ClientError(f"{name!r} is ambiguous: " + ", ".join(sorted(m.TYPE for m in matches)))
    raise ClientError(
        f"unknown command {name!r}; `casework commands` lists them (e.g. {next(iter(types), '')})"
    )


def _version(model: type[Command]) -> int:
    suffix = model.TYPE.rsplit(".", 1)[-1]
    return int(suffix[1:]) if suffix[:1] == "v" and suffix[1:].isdigit() else 0


def parse_fields(pairs: Iterable[str]) -> dict[str, Any]:
    """`name=value` pairs; a value that starts with `[` or `{` is JSON, anything else is a
    string the model coerces (numbers, booleans, UUIDs, dates, enums)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ClientError(f"--field expects name=value, got {pair!r}")
        if value.strip()[:1] in ("[", "{"):
            try:
                values[name.strip()] = json.loads(value)
            except ValueError as exc:
                raise ClientError(f"field {name}: not valid JSON ({exc})") from None
        else:
            values[name.strip()] = value
    return values


def build_command(model: type[Command], values: dict[str, Any]) -> Command:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(command)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ClientError(f"invalid {model.TYPE}: {problems}") from None


# --- The broker -----------------------------------------------------------------------------


def event_topics() -> list[str]:
    return outcome_topics()


@dataclass
class Received:
    topic: str
    envelope: Envelope | None
    raw: bytes
    headers: dict[str, str]


class Arrivals:
    """What a reader of the broker has received so far, and waiting until it shows what a caller
    expects: woken by each batch that arrives, never by a timer. The one way the CLI, the
    walkthrough and the tests wait for an outcome."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()

    async def arrived(self, keep: Callable[[], None]) -> None:
        """Keep a batch (`keep` stores it) and wake whoever waits."""
        async with self._changed:
            keep()
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """`predicate()` once it is truthy; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("not observed in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)


async def poll(check: Callable[[], Awaitable[Any]], timeout: float, interval: float = 0.1) -> Any:
    """`await check()` once it is truthy, asked again every `interval` seconds: for read sides
    that announce nothing (projections, read APIs). TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("not observed in time")
        await asyncio.sleep(interval)


class Bus(Arrivals):
    """Reads the event topics (and the command dead letters) from the moment it starts (or from
    the beginning), so a caller sees what its commands caused further on (sagas)."""

    def __init__(self, bootstrap_servers: str) -> None:
        super().__init__()
        self._servers = bootstrap_servers
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.received: list[Received] = []

    async def start(self, topics: list[str] | None = None, from_beginning: bool = False) -> None:
        try:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self._servers,
                enable_auto_commit=False,
                fetch_max_wait_ms=20,  # an outcome is seen as soon as it is published
                request_timeout_ms=10000,
                connections_max_idle_ms=60000,
            )
            await asyncio.wait_for(self._consumer.start(), 15)
        except Exception as exc:
            await self.stop()
            raise ClientError(f"cannot reach the broker at {self._servers}: {exc}", 1) from None
        await self._consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics or event_topics()
            for p in sorted(self._consumer.partitions_for_topic(topic) or {0})
        ]
        self._consumer.assign(partitions)
        if from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            for tp, offset in (await self._consumer.end_offsets(partitions)).items():
                self._consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            if batch:
                await self.arrived(functools.partial(self._keep, batch))

    def _keep(self, batch: dict[Any, list[Any]]) -> None:
        for records in batch.values():
            for r in records:
                envelope = None
                with contextlib.suppress(ValidationError, TypeError):
                    envelope = Envelope.model_validate_json(r.value)
                headers = {k: v.decode(errors="replace") for k, v in r.headers or []}
                self.received.append(Received(r.topic, envelope, r.value, headers))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    def envelopes(self) -> list[Envelope]:
        return [r.envelope for r in self.received if r.envelope and r.topic.endswith(".events")]

    def caused_by(self, message_id: uuid.UUID) -> list[Envelope]:
        return [e for e in self.envelopes() if e.causation_id == message_id]

    def dead_lettered(self, message_id: uuid.UUID) -> Received | None:
        for r in self.received:
            if r.topic.endswith(".dlq") and r.envelope and r.envelope.message_id == message_id:
                return r
        return None


def rejection(events: list[Envelope]) -> CommandRejected | None:
    for e in events:
        if e.type == CommandRejected.TYPE:
            return CommandRejected.model_validate(e.payload)
    return None


# --- Read APIs ------------------------------------------------------------------------------


class ReadApi:
    """The services' read APIs as a signed-in user (TR05: every read needs a sign-in)."""

    def __init__(self, target: Target, user_id: str | None, timeout: float = 10.0) -> None:
        self.target = target
        tokens = target.credentials().tokens(user_id)
        self.http = httpx.Client(
            timeout=timeout, headers={"Authorization": f"Bearer {tokens.id_token}"}
        )

    def get(self, service: str, path: str, **params: Any) -> tuple[int, Any]:
        url = f"{self.target.url(service)}{path}"
        try:
            response = self.http.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise ClientError(f"the {service} service at {url} does not answer: {exc}", 1) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text}
        return response.status_code, body

    def close(self) -> None:
        self.http.close()

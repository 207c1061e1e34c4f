"""The walkthrough's test driver: sends commands as signed-in people and waits for what they
cause (their outcome, a later event of a saga, a read API that shows it, a notification in
someone's inbox). Nothing is assumed: what is not observed in time fails the step.

It sends through anything with the edge client's `send` (the CLI's `EdgeClient` over HTTP; the
tests' edge in-process) and watches anything with the bus's `envelopes`/`caused_by`/`wait_for`
(`deploy.client.Bus`, the tests' `EventLog`): the tests drive the services with it too."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from contracts import Actor, Command, CommandRejected, Envelope, Event
from deploy.client import poll, rejection
from deploy.identity import SignedInUsers
from services.edge.app import POSITION_HEADER

E = TypeVar("E", bound=Event)


class StepFailed(Exception):
    """An expected outcome was not observed (or something else was)."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StepFailed(what)


class Sender(Protocol):
    async def send(self, command: Command, actor: Actor) -> tuple[Envelope, list[Envelope]]:
        """Publishes `command` as `actor`; the envelope published and its whole outcome."""
        ...


class Watched(Protocol):
    def envelopes(self) -> list[Envelope]: ...

    def caused_by(self, message_id: uuid.UUID) -> list[Envelope]: ...

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = ...) -> Any: ...


def one(events: list[Envelope], model: type[E]) -> E:
    """The single event of `model`'s type among `events`."""
    found = [e for e in events if e.type == model.TYPE]
    if len(found) != 1:
        raise StepFailed(f"expected one {model.TYPE}, got {[e.type for e in events]}")
    return model.model_validate(found[0].payload)


@dataclass
class Driver:
    """People's commands through `sender`, the events on `bus`, the read APIs at `urls` as the
    signed-in `users`; `timeout` bounds every wait."""

    sender: Sender
    bus: Watched
    timeout: float
    users: SignedInUsers | None = None
    urls: dict[str, str] = field(default_factory=dict)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))
    notes: list[str] = field(default_factory=list)  # the notifications seen in this step
    last: Envelope | None = None  # the envelope of the event `ok` or `followed` returned last
    outcome: list[Envelope] = field(default_factory=list)  # the last command's whole outcome

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- commands and events --------------------------------------------------------------

    async def ok(self, command: Command, actor: Actor, expected: type[E]) -> E:
        """Send a command that must be applied; the expected event it caused."""
        _, events = await self.sender.send(command, actor)
        self.outcome = events
        refused = rejection(events)
        if refused is not None:
            raise StepFailed(f"{command.TYPE} rejected by {refused.rule}: {refused.reason}")
        found = one(events, expected)
        self.last = next(e for e in events if e.type == expected.TYPE)
        return found

    async def refused(self, command: Command, actor: Actor, rule: str) -> CommandRejected:
        """Send a command that must be refused by `rule`; the rejection."""
        _, events = await self.sender.send(command, actor)
        self.outcome = events
        refused = rejection(events)
        if refused is None:
            raise StepFailed(f"{command.TYPE} was applied; expected a refusal by {rule}")
        if refused.rule != rule:
            raise StepFailed(f"refused by {refused.rule} ({refused.reason}); expected {rule}")
        return refused

    async def caused(self, cause: Envelope, expected: type[Event], count: int) -> list[Envelope]:
        """The `count` events of `expected`'s type another service published in answer to
        `cause`, once all have arrived."""

        def found() -> list[Envelope]:
            events = [e for e in self.bus.caused_by(cause.message_id) if e.type == expected.TYPE]
            return events if len(events) == count else []

        try:
            events: list[Envelope] = await self.bus.wait_for(found, self.timeout)
        except TimeoutError:
            raise StepFailed(f"not {count} {expected.TYPE} in answer to {cause.type}") from None
        return events

    async def followed(self, cause: Envelope | None, expected: type[E]) -> E:
        """The event another service published in answer to `cause`."""
        if cause is None:
            raise StepFailed(f"nothing to follow for {expected.TYPE}")
        (found,) = await self.caused(cause, expected, 1)
        self.last = found
        return expected.model_validate(found.payload)

    async def event(self, expected: type[E], **payload: Any) -> E:
        """An event of this type whose payload has these values (a saga's later step)."""

        def match() -> list[Envelope]:
            return [
                e
                for e in self.bus.envelopes()
                if e.type == expected.TYPE
                and all(str(e.payload.get(k)) == str(v) for k, v in payload.items())
            ]

        try:
            found = await self.bus.wait_for(match, self.timeout)
        except TimeoutError:
            raise StepFailed(f"no {expected.TYPE} with {payload}") from None
        return expected.model_validate(found[0].payload)

    # --- read APIs ------------------------------------------------------------------------

    async def read(
        self, reader: Actor, service: str, path: str, check: Callable[[Any], Any], what: str
    ) -> Any:
        """A read API's body as the signed-in `reader` (TR05) once `check(body)` is truthy
        (projections converge after the event); fails with `what` after the timeout."""
        if service not in self.urls or self.users is None:
            raise StepFailed(f"the {service} service is not running")
        users, url = self.users, f"{self.urls[service]}{path}"
        last: list[Any] = [None]

        async def shown() -> Any:
            try:
                headers = await users.headers(reader.user_id)
                if reader.position_id:
                    headers[POSITION_HEADER] = reader.position_id
                response = await self.http.get(url, headers=headers)
                last[0] = response.json() if response.status_code == 200 else response.text
                return response.status_code == 200 and check(last[0]) and (last[0],)
            except (httpx.HTTPError, ValueError) as exc:
                last[0] = str(exc)
                return None

        try:
            (body,) = await poll(shown, self.timeout)
        except TimeoutError:
            raise StepFailed(
                f"{what}: not seen in {service} {path} ({str(last[0])[:200]})"
            ) from None
        return body

    async def notified(self, user: str, rule: str, **data: Any) -> dict[str, Any]:
        """The notification `rule` in `user`'s inbox whose data has these values."""

        def find(body: Any) -> Any:
            for item in body["items"]:
                values = item.get("data") or {}
                if item["rule"] == rule and all(
                    str(values.get(k)) == str(v) for k, v in data.items()
                ):
                    return item
            return None

        body = await self.read(
            Actor(user_id=user), "notifications", "/me/inbox?limit=1000", find, f"{rule} for {user}"
        )
        item: dict[str, Any] = find(body)
        self.notes.append(f"{user} ({rule}): {item['subject']}")
        return item


def items(body: Any, *lists: str) -> set[str]:
    """The work item ids in a workview's lists."""
    return {i["work_item_id"] for name in lists for i in body[name]}

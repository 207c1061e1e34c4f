"""The pytest plugin as a downstream team uses it (docs/subscribing.md shows this test): the
platform started for the session, a signed-in client, a typed event stream; and the subscriber
that docs/subscribing.md shows, run as written. Nothing here comes from the platform's own test
suite: only `contracts`, `deploy.client` and the plugin's fixtures."""

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from casework_testing.plugin import EventStream, Platform
from contracts import Actor, Event
from contracts.access import (
    DirectoryLoaded,
    LoadDirectory,
    PositionGranted,
    PrimaryPositionSpec,
    Role,
    UnitKind,
    UnitSpec,
    UserSpec,
)
from deploy.client import EdgeClient, rejection


async def test_a_downstream_team_sees_the_directory_it_loaded(
    casework_client: EdgeClient, casework_events: EventStream
) -> None:
    directory = LoadDirectory(
        directory_id="downstream-example",
        units=[UnitSpec(unit_id="example-team", name="Example Team", kind=UnitKind.TEAM)],
        users=[UserSpec(user_id="example-worker", name="Example Worker")],
        positions=[
            PrimaryPositionSpec(
                position_id="example-position",
                user_id="example-worker",
                unit_id="example-team",
                role=Role.CASEWORKER,
            )
        ],
    )
    await casework_client.send(directory, Actor(user_id="directory-admin"))
    loaded = await casework_events.next(
        DirectoryLoaded, lambda e: e.directory_id == "downstream-example"
    )
    granted = await casework_events.next(
        PositionGranted, lambda e: e.position_id == "example-position"
    )
    assert (loaded.units, loaded.users, granted.user_id) == (1, 1, "example-worker")
    # Someone without the directory administrator's role is refused, naming the rule.
    _, outcome = await casework_client.send(directory, Actor(user_id="example-worker"))
    refused = rejection(outcome)
    assert refused is not None and refused.rule == "TR03"


def _documented_subscriber() -> str:
    """The subscriber of docs/subscribing.md, as a downstream team would copy it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "subscribing.md").read_text()
    block = text.split("<!-- subscriber -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    return textwrap.dedent(block)


class _Seen(Exception):
    pass


async def test_the_documented_subscriber_receives_typed_events(
    casework_platform: Platform, casework_client: EdgeClient
) -> None:
    directory = LoadDirectory(
        directory_id="subscriber-example",
        units=[UnitSpec(unit_id="subscriber-team", name="Subscriber Team", kind=UnitKind.TEAM)],
    )
    await casework_client.send(directory, Actor(user_id="directory-admin"))
    namespace: dict[str, Any] = {}
    exec(compile(_documented_subscriber(), "docs/subscribing.md", "exec"), namespace)
    received: list[Event] = []

    async def handle(event: Event) -> None:
        received.append(event)
        if isinstance(event, DirectoryLoaded) and event.directory_id == "subscriber-example":
            raise _Seen  # the subscriber runs forever; the test stops it here

    with pytest.raises(_Seen):
        await asyncio.wait_for(
            namespace["subscribe"](casework_platform.bootstrap_servers, handle), timeout=60
        )
    assert {type(e) for e in received} <= {DirectoryLoaded, PositionGranted}

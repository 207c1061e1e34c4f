"""The pytest plugin as a downstream team uses it (docs/subscribing.md shows this test): the
platform started for the session, a signed-in client, a typed event stream. Nothing here comes
from the platform's own test suite: only `contracts`, `deploy.client` and the plugin's fixtures."""

from casework_testing.plugin import EventStream
from contracts import Actor
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

"""The CLI's pure helpers: finding a command by name, parsing `--field` values, validating."""

from __future__ import annotations

import re
import uuid
from typing import cast

import pytest

from contracts import Command, registered_types
from contracts.allocation import AssignWork
from contracts.signoff import AddNextActions
from deploy import client
from deploy.client import ClientError, build_command, command_types, find_command, parse_fields


def _probes() -> dict[str, type[Command]]:
    """Versions of one command and a namesake in another service, made without registering
    them (the registry is the platform's, shared by every test)."""
    made = {}
    for name in ("clitest.probe.v1", "clitest.probe.v2", "clitestother.probe.v1"):
        model = cast(type[Command], type(f"Probe_{name.replace('.', '_')}", (Command,), {}))
        model.TYPE = name  # set after creation, so nothing is registered
        made[name] = model
    assert not set(made) & set(registered_types())
    return {**command_types(), **made}


def test_a_command_is_found_by_type_by_type_without_version_or_by_bare_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert find_command("allocation.assign_work.v1") is AssignWork
    assert find_command("allocation.assign_work") is AssignWork
    assert find_command("assign_work") is AssignWork
    with pytest.raises(ClientError, match=re.escape("unknown command 'allocation.nope'")) as e:
        find_command("allocation.nope")
    assert e.value.code == 2
    event = "allocation.work_item_assigned.v1"  # an event, not a command
    with pytest.raises(ClientError, match=re.escape(f"unknown command '{event}'")):
        find_command(event)

    probes = _probes()
    monkeypatch.setattr(client, "command_types", lambda: probes)
    assert find_command("clitest.probe") is probes["clitest.probe.v2"]  # the newest version
    assert find_command("clitest.probe.v1") is probes["clitest.probe.v1"]
    ambiguous = "'probe' is ambiguous: clitest.probe.v1, clitest.probe.v2, clitestother.probe.v1"
    with pytest.raises(ClientError, match=re.escape(ambiguous)):
        find_command("probe")


def test_field_values_are_strings_for_the_model_to_coerce_or_json_lists_and_objects() -> None:
    step = uuid.uuid4()
    values = parse_fields(
        [
            f"step_id={step}",
            "person_id=P-1",
            'actions=[{"action_type": "WB Close Case", "assignee_kind": "team", '
            '"assignee_id": "Wellbeing Service North Team", "note": "a=b"}]',
        ]
    )
    command = build_command(AddNextActions, values)
    assert isinstance(command, AddNextActions)
    assert command.step_id == step and command.actions[0].note == "a=b"
    assert parse_fields(["note=x=y", "priority=high"]) == {"note": "x=y", "priority": "high"}
    with pytest.raises(ClientError, match=re.escape("--field expects name=value, got 'oops'")):
        parse_fields(["oops"])
    with pytest.raises(ClientError, match="field actions: not valid JSON"):
        parse_fields(["actions=[nope"])


def test_an_invalid_command_names_every_bad_field() -> None:
    with pytest.raises(ClientError) as raised:
        build_command(AssignWork, {"person_id": "", "work_item_id": "x", "colour": "red"})
    message = str(raised.value)
    assert message.startswith("invalid allocation.assign_work.v1: ")
    for problem in (
        "person_id: String should have at least 1 character",
        "work_item_id: Input should be a valid UUID",
        "to_position_id: Field required",
        "colour: Extra inputs are not permitted",
    ):
        assert problem in message

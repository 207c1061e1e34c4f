"""Read commands with `--json`: the services' answers as JSON on stdout (one JSON document, or
JSON Lines for `events tail`), for scripts, against the services running as processes."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

from tests.cli.conftest import ROOT, Cli

DIRECTORY = ROOT / "services" / "access" / "walkthrough_directory.json"
HUB_TEAM = "Wellbeing Service Hub Team"
TRIAGE = "WB Initial Risk Assessment and Triage"


def parsed(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)  # the whole of stdout: nothing but the document


def test_read_commands_print_json_with_json(cli: Cli) -> None:
    assert cli("directory", "load", str(DIRECTORY)).returncode == 0
    person = f"P-{uuid.uuid4().hex[:8]}"
    sent = cli(
        "send",
        "allocation.receive_referral",
        "--as",
        "so-hub",
        "-f",
        f"person_id={person}",
        "-f",
        "person_name=Jay Json",
        "-f",
        "area=North",
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr

    work = parsed(cli("workview", HUB_TEAM, "--as", "so-hub", "--json"))
    (item,) = [w for w in work["incoming_work"] if w["person_id"] == person]
    assert item["step_type"] == TRIAGE and item["person_name"] == "Jay Json"

    record = parsed(cli("person", person, "--as", "so-hub", "--json"))
    assert [w["step_type"] for w in record["current_work"]] == [TRIAGE]

    mine = parsed(cli("positions", "--as", "so-hub", "--json"))
    assert mine["primary"]["position_id"] == "pos-so-hub"
    assert isinstance(mine["secondary"], list)

    inbox = parsed(cli("inbox", "--as", "so-hub", "--json"))
    assert isinstance(inbox["items"], list)

    tail = cli("events", "tail", "allocation.events", "--from-beginning", "--idle", "3", "--json")
    assert tail.returncode == 0, tail.stderr
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert lines and all(line["topic"] == "allocation.events" for line in lines)
    created = [
        line["envelope"]
        for line in lines
        if line["envelope"]["type"] == "allocation.work_item_created.v1"
        and line["envelope"]["payload"]["person_id"] == person
    ]
    assert len(created) == 1


def test_read_command_errors_stay_off_stdout_with_json(cli: Cli) -> None:
    refused = cli("person", "P-nobody", "--as", "so-hub", "--json")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "no such person 'P-nobody'" in refused.stderr

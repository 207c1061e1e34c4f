"""`casework` commands as an operator runs them, against the services running as processes:
invalid input is a clear message and a non-zero exit without a traceback; a valid command prints
its events; a refused one exits 1 naming the rule; the read-API tables show what happened."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

from rich.console import Console

from deploy.client import Target
from deploy.stack import Stack
from deploy.walkthrough import Result, scenario, summary_table
from tests.cli.conftest import ROOT, Cli, cli_env

DIRECTORY = ROOT / "services" / "access" / "walkthrough_directory.json"
HUB_TEAM = "Wellbeing Service Hub Team"


def failed_cleanly(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    return " ".join(result.stderr.split())


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_invalid_input_is_a_clear_message_without_a_traceback(cli: Cli, tmp_path: Path) -> None:
    assert "unknown command 'allocation.no_such_thing'" in failed_cleanly(
        cli("send", "allocation.no_such_thing", "--field", "x=1")
    )
    bad_field = failed_cleanly(
        cli(
            "send",
            "allocation.assign_work",
            "--field",
            "person_id=P-1",
            "--field",
            "work_item_id=not-a-uuid",
            "--field",
            "to_position_id=pos-hub-1",
        )
    )
    assert "invalid allocation.assign_work.v1" in bad_field and "work_item_id" in bad_field
    assert "name=value" in failed_cleanly(cli("send", "allocation.start_step", "--field", "oops"))
    unknown_field = failed_cleanly(
        cli("send", "access.change_position", "-f", "user_id=u", "-f", "position_id=p", "-f", "x=1")
    )
    assert "x: Extra inputs are not permitted" in unknown_field
    bad_file = tmp_path / "directory.json"
    bad_file.write_text(json.dumps({"units": [{"unit_id": "t"}]}))
    assert "invalid access.load_directory.v1" in failed_cleanly(
        cli("directory", "load", str(bad_file))
    )
    assert "unknown team 'No Such Team'" in failed_cleanly(cli("workview", "No Such Team"))
    assert "no such person 'P-nobody'" in failed_cleanly(cli("person", "P-nobody"))
    assert "not signed in as 'nobody'" in failed_cleanly(cli("positions", "--as", "nobody"))
    assert "unknown topic 'nope'" in failed_cleanly(cli("events", "tail", "nope"))
    # Without a stack to talk to, the CLI says so.
    nowhere = Cli(tmp_path / "no-stack")
    assert "the edge service's URL is unknown" in failed_cleanly(
        nowhere("send", "access.change_position", "-f", "user_id=u", "-f", "position_id=p")
    )


def test_send_prints_its_events_and_a_refusal_exits_1_with_the_rule(
    cli: Cli, tmp_path: Path
) -> None:
    data = json.loads(DIRECTORY.read_text())
    counts = (len(data["units"]), len(data["users"]), len(data["positions"]))
    assert "loaded {} units, {} users, {} positions".format(*counts) in succeeded(
        cli("directory", "load", str(DIRECTORY))
    )
    person = f"P-{uuid.uuid4().hex[:8]}"
    created = succeeded(
        cli(
            "send",
            "allocation.receive_referral",
            "--as",
            "so-hub",
            "--field",
            f"person_id={person}",
            "--field",
            "person_name=Clara Cli",
            "--field",
            "area=North",
        )
    )
    assert "applied allocation.receive_referral.v1" in created
    assert "allocation.work_item_created.v1" in created and person in created
    assert '"owner_id": "Wellbeing Service Hub Team"' in created

    # A Trusted Assessment step (fields from a JSON file), then allocating it to the Trusted
    # Assessor without an Involved Worker relationship: refused by AL05, exit code 1.
    step = uuid.uuid4()
    fields = tmp_path / "step.json"
    fields.write_text(
        json.dumps(
            {
                "person_id": person,
                "step_type": "WB Trusted Assessment and Support Planning",
                "area": "North",
                "work_item_id": str(step),
            }
        )
    )
    assert str(step) in succeeded(
        cli("send", "create_step", "--json", str(fields), "--as", "so-hub")
    )
    refused = failed_cleanly(
        cli(
            "send",
            "allocation.assign_work.v1",
            "--as",
            "so-north",
            "--position",
            "pos-so-north",
            "-f",
            f"person_id={person}",
            "-f",
            f"work_item_id={step}",
            "-f",
            "to_position_id=pos-ta-north-1",
        ),
        code=1,
    )
    assert "rejected allocation.assign_work.v1 by rule AL05" in refused
    assert "Involved Worker" in refused
    # An unknown team in a command's fields is the service's to judge: refused naming AC04.
    unknown_team = failed_cleanly(
        cli(
            "send",
            "access.request_absence_access",
            "--as",
            "sm-enf",
            "-f",
            "user_id=tl-enf-1",
            "-f",
            'unit_ids=["No Such Team"]',
            "-f",
            "discussion_held=true",
        ),
        code=1,
    )
    assert (
        "by rule AC04" in unknown_team and "unknown team or segment 'No Such Team'" in unknown_team
    )

    # The read-API tables show the referral, the person's record and the directory.
    # TR05: read as the Hub Team's Senior Officer, who screens the Hub Team's work.
    hub = succeeded(cli("workview", HUB_TEAM, "--as", "so-hub"))
    assert "Clara Cli" in hub and "WB Initial Risk Assessment and Triage" in hub
    record = succeeded(cli("person", person, "--as", "so-hub"))
    assert "WB Trusted Assessment and Support Planning" in record and "created" in record
    assert "pos-so-hub" in succeeded(cli("positions", "--as", "so-hub"))
    # The events as they went by, from the beginning of allocation's event topic.
    tail = succeeded(
        cli(
            "events",
            "tail",
            "allocation.events",
            "--from-beginning",
            "--limit",
            "50",
            "--idle",
            "3",
        )
    )
    assert "allocation.work_item_created.v1" in tail and person in tail
    assert "platform.command_rejected.v1" in tail and "rule=AL05" in tail


def test_inbox_shows_the_notification_of_an_assignment(cli: Cli) -> None:
    succeeded(cli("directory", "load", str(DIRECTORY)))
    person = f"P-{uuid.uuid4().hex[:8]}"
    step = uuid.uuid4()
    succeeded(
        cli(
            "send",
            "allocation.create_step",
            "--as",
            "so-hub",
            "-f",
            f"person_id={person}",
            "-f",
            "step_type=WB Initial Risk Assessment and Triage",
            "-f",
            f"work_item_id={step}",
        )
    )
    assigned = succeeded(
        cli(
            "send",
            "allocation.assign_work",
            "--as",
            "so-hub",
            "-f",
            f"person_id={person}",
            "-f",
            f"work_item_id={step}",
            "-f",
            "to_position_id=pos-hub-2",
            "-f",
            "note=Please triage",
        )
    )
    assert "allocation.work_item_assigned.v1" in assigned
    # The notification arrives after the event: the operator looks again, as one would.
    for _ in range(20):
        inbox = succeeded(cli("inbox", "--as", "hub-2"))
        if "NT01" in inbox:
            break
    assert "NT01" in inbox and "New work" in inbox


def test_commands_lists_every_command_type() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "deploy", "commands"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0, listing.stderr
    for name in ("allocation.assign_work.v1", "signoff.finish_step.v1", "access.lodge_p30.v1"):
        assert name in listing.stdout


async def test_walkthrough_steps_fail_when_their_outcome_is_not_observed(
    cli: Cli, stack: Stack
) -> None:
    """Nothing is faked: run against a stack whose notifications service cannot be read, every
    step that must see a notification fails, the rest of its procedure is not run, and the
    steps that need no notification still pass."""
    target = Target.resolve(stack.state_dir)
    target.service_urls.pop("notifications")
    results: list[Result] = []
    await scenario(target, 20.0, Console(file=io.StringIO()), results)
    outcome = {(r.procedure, r.title): (r.ok, r.observed) for r in results}
    assert outcome[("Directory", "walkthrough directory loaded")][0] is True
    assert outcome[("Wellbeing referral", "referral received")][0] is True
    ok, observed = outcome[("Wellbeing referral", "triage assigned to a Hub Team worker")]
    assert ok is False and "notifications service is not running" in observed
    ok, observed = outcome[("Wellbeing referral", "request returned with a note")]
    assert ok is False and observed == "not run: an earlier step failed"
    ok, observed = outcome[("Secondary access", "standing absence-related access")]
    assert ok is False and "notifications" in observed
    assert not any(r.ok for r in results if r.procedure == "Secondary access")
    table = Console(file=io.StringIO(), width=200)
    table.print(summary_table(results, 1.0))
    passed = sum(1 for r in results if r.ok)
    assert f"walkthrough: {passed}/{len(results)} expected outcomes" in table.file.getvalue()  # type: ignore[attr-defined]


def test_walkthrough_against_the_running_stack(cli: Cli) -> None:
    """`--running` drives the stack `casework up` recorded; run after the other tests here, it
    also shows that the walkthrough can be repeated on a stack that has seen it before."""
    result = cli("walkthrough", "--running", timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "every expected outcome observed" in output

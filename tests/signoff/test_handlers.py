"""Sign-off's command handlers without I/O: each runs with `HandlerContext.for_message` over a
fake repository (tests/signoff/fakes.py), so these tests prove the handlers' rules (SO01-SO10,
AL13) and what they save and emit; the integration tests beside them prove the plumbing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from contracts import Actor, Command
from contracts.access import Role
from contracts.allocation import StepType
from contracts.signoff import (
    CLOSE_CASE_ACTION,
    MANAGEMENT_TEAM,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    AddNextActions,
    ChangeNextAction,
    CompleteRequest,
    FinishStep,
    NextActionChanged,
    NextActionInput,
    NextActionRemoved,
    NextActionsAdded,
    RemoveNextAction,
    RequestCompleted,
    RequestReturned,
    RequestSent,
    ReturnRequest,
    SaveStep,
    SendRequest,
    StepFinished,
    StepSaved,
)
from services.shared.positions import Position
from services.shared.rules import RuleViolation
from services.shared.transaction import HandlerContext
from services.signoff.domain import UNKNOWN_STEP, Step
from tests.signoff.fakes import FakeSteps

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NORTH_TEAM = "Wellbeing Service North Team"
HUB_TEAM = "Wellbeing Service Hub Team"


def _position(user: str, role: Role, team: str) -> Position:
    return Position(f"pos-{user}", user, team, role.value, "primary", False, True, team)


SO_MGMT = _position("so-mgmt", Role.SENIOR_OFFICER, MANAGEMENT_TEAM)
SO_NORTH = _position("so-north", Role.SENIOR_OFFICER, NORTH_TEAM)
ASSESSOR = _position("ta-north-1", Role.TRUSTED_ASSESSOR, NORTH_TEAM)
OTHER_ASSESSOR = _position("ta-north-2", Role.TRUSTED_ASSESSOR, NORTH_TEAM)
SUPPORT_OFFICER = _position("gso-north-1", Role.GENERIC_SUPPORT_OFFICER, NORTH_TEAM)
HUB_WORKER = _position("hub-1", Role.HUB_TEAM_WORKER, HUB_TEAM)
OTHER_HUB_WORKER = _position("hub-2", Role.HUB_TEAM_WORKER, HUB_TEAM)
EVERYONE = (SO_MGMT, SO_NORTH, ASSESSOR, OTHER_ASSESSOR, SUPPORT_OFFICER, HUB_WORKER)

ASSESSMENT_ANSWERS = {
    "what_matters": "Staying independent at home",
    "presenting_needs": "Help with shopping and meals",
    "support_plan": "Weekly visits from a support officer",
    "progressing_to_support_officer": "Yes",
}
TRIAGE_ANSWERS = {
    "reason_for_referral": "Isolated since a fall",
    "risks_identified": "Falls at night",
    "risk_level": "Medium",
    "trusted_assessment_needed": "No",
    "monitoring_needed": "No",
}


def _actor(position: Position) -> Actor:
    return Actor(user_id=position.user_id, position_id=position.position_id)


class Signoff:
    """The handlers over a fake repository holding one step and the directory's positions."""

    def __init__(self, step_type: StepType = StepType.TRUSTED_ASSESSMENT) -> None:
        holder = HUB_WORKER if step_type is StepType.TRIAGE else ASSESSOR
        self.step = Step(uuid.uuid4(), "P-1", step_type, "worker", holder.position_id)
        self.repository = FakeSteps(
            steps={self.step.step_id: self.step},
            positions={p.position_id: p for p in EVERYONE},
        )
        self.dispatcher = self.repository.dispatcher()

    # The commands, about this step.
    def save(self, answers: dict[str, str]) -> SaveStep:
        return SaveStep(step_id=self.step.step_id, person_id=self.step.person_id, answers=answers)

    def send(self) -> SendRequest:
        return SendRequest(step_id=self.step.step_id, person_id=self.step.person_id)

    def add(self, *actions: NextActionInput) -> AddNextActions:
        return AddNextActions(
            step_id=self.step.step_id, person_id=self.step.person_id, actions=list(actions)
        )

    def change(self, action_id: uuid.UUID, action: NextActionInput) -> ChangeNextAction:
        return ChangeNextAction(
            step_id=self.step.step_id,
            person_id=self.step.person_id,
            action_id=action_id,
            action=action,
        )

    def remove(self, action_id: uuid.UUID) -> RemoveNextAction:
        return RemoveNextAction(
            step_id=self.step.step_id, person_id=self.step.person_id, action_id=action_id
        )

    def complete(self, request_id: uuid.UUID) -> CompleteRequest:
        return CompleteRequest(
            step_id=self.step.step_id, person_id=self.step.person_id, request_id=request_id
        )

    def give_back(self, request_id: uuid.UUID, note: str) -> ReturnRequest:
        return ReturnRequest(
            step_id=self.step.step_id,
            person_id=self.step.person_id,
            request_id=request_id,
            note=note,
        )

    def finish(self) -> FinishStep:
        return FinishStep(step_id=self.step.step_id, person_id=self.step.person_id)

    async def run(self, command: Command, by: Position) -> HandlerContext[Command]:
        ctx = HandlerContext.for_message(command, now=NOW, actor=_actor(by))
        await self.dispatcher.dispatch(ctx)
        return ctx

    async def ok(self, command: Command, by: Position) -> object:
        """The one event the command caused, after it was saved."""
        saved = len(self.repository.saved)
        (event,) = (await self.run(command, by)).events
        assert [c.event for c in self.repository.saved[saved:]] == [event]
        return event

    async def refused(self, command: Command, by: Position) -> str:
        """The rule that refused the command; nothing was saved."""
        saved = len(self.repository.saved)
        with pytest.raises(RuleViolation) as refused:
            await self.run(command, by)
        assert len(self.repository.saved) == saved
        return refused.value.rule

    def transfer(self, note: str = "Please deliver the support plan") -> NextActionInput:
        return NextActionInput(
            action_type=TRANSFER_TO_SUPPORT_OFFICER,
            assignee_kind="worker",
            assignee_id=SUPPORT_OFFICER.position_id,
            note=note,
        )

    async def requested(self) -> uuid.UUID:
        """The form complete and the mandatory request sent by the assessor."""
        await self.ok(self.save(ASSESSMENT_ANSWERS), ASSESSOR)
        sent = await self.ok(self.send(), ASSESSOR)
        assert isinstance(sent, RequestSent)
        return sent.request_id

    async def ready_to_finish(self) -> None:
        request_id = await self.requested()
        await self.ok(self.add(self.transfer()), SO_MGMT)
        await self.ok(self.complete(request_id), SO_MGMT)


async def test_so01_so02_the_assessor_sends_the_request_to_the_management_team() -> None:
    s = Signoff()
    await s.ok(s.save(ASSESSMENT_ANSWERS), ASSESSOR)
    command = s.send()
    ctx = await s.run(command, ASSESSOR)
    (sent,) = ctx.events
    assert isinstance(sent, RequestSent)
    assert sent.title == f"{REQUEST_NAME} - {StepType.TRUSTED_ASSESSMENT.value}"  # SO02
    assert sent.team == MANAGEMENT_TEAM and sent.sent_by_position_id == ASSESSOR.position_id
    # The request's id is the command's: a redelivered command would make the same one.
    assert sent.request_id == uuid.uuid5(ctx.envelope.message_id, "request")
    assert s.repository.saved[-1].by == ASSESSOR.position_id
    assert [r.request_id for r in s.step.outstanding()] == [sent.request_id]


async def test_so01_the_request_comes_once_from_the_steps_own_worker() -> None:
    s = Signoff()
    assert await s.refused(s.send(), OTHER_ASSESSOR) == "SO01"
    assert await s.refused(s.send(), SO_MGMT) == "SO01"
    await s.requested()
    assert await s.refused(s.send(), ASSESSOR) == "SO01"  # already outstanding
    triage = Signoff(StepType.TRIAGE)
    assert await triage.refused(triage.send(), HUB_WORKER) == "SO01"


async def test_so01_an_actor_in_a_position_they_do_not_hold_is_nobody() -> None:
    s = Signoff()
    impostor = Actor(user_id="mallory", position_id=ASSESSOR.position_id)
    ctx = HandlerContext.for_message(s.send(), now=NOW, actor=impostor)
    with pytest.raises(RuleViolation) as refused:
        await s.dispatcher.dispatch(ctx)
    assert refused.value.rule == "SO01" and "without a known position" in refused.value.reason


async def test_so03_so04_the_senior_officer_records_next_actions_on_the_step() -> None:
    s = Signoff()
    await s.requested()
    close = NextActionInput(
        action_type=CLOSE_CASE_ACTION, assignee_kind="team", assignee_id=NORTH_TEAM, note="Close"
    )
    command = s.add(s.transfer(), close)
    ctx = await s.run(command, SO_MGMT)
    (added,) = ctx.events
    assert isinstance(added, NextActionsAdded)
    assert [a.action_type for a in added.next_actions] == [
        TRANSFER_TO_SUPPORT_OFFICER,
        "Close",
    ] or [a.action_type for a in added.next_actions] == [
        TRANSFER_TO_SUPPORT_OFFICER,
        CLOSE_CASE_ACTION,
    ]
    assert [a.action_id for a in added.next_actions] == [
        uuid.uuid5(ctx.envelope.message_id, f"action-{i}") for i in range(2)
    ]
    assert s.step.next_actions == added.next_actions
    # SO03: a Senior Officer of another team does not review this step.
    assert await s.refused(s.add(close), SO_NORTH) == "SO04"


async def test_so04_a_next_action_names_a_known_worker_and_a_note_when_passed_on() -> None:
    s = Signoff()
    unknown = s.transfer().model_copy(update={"assignee_id": "pos-nobody"})
    assert await s.refused(s.add(unknown), SO_MGMT) == "SO04"
    silent = s.transfer(note=" ")
    assert await s.refused(s.add(silent), SO_MGMT) == "SO04"
    assert s.step.next_actions == []


async def test_so05_a_step_without_a_next_action_is_not_finished() -> None:
    s = Signoff()
    request_id = await s.requested()
    await s.ok(s.complete(request_id), SO_MGMT)
    assert await s.refused(s.finish(), SO_MGMT) == "SO05"


async def test_so06_so09_finishing_locks_the_step_and_sends_the_transfer_to_the_officer() -> None:
    s = Signoff()
    await s.ready_to_finish()
    finished = await s.ok(s.finish(), SO_MGMT)
    assert isinstance(finished, StepFinished)
    (sent,) = finished.next_actions
    assert (sent.action_type, sent.assignee_id) == (
        TRANSFER_TO_SUPPORT_OFFICER,
        SUPPORT_OFFICER.position_id,
    )
    assert finished.finished_by_position_id == SO_MGMT.position_id
    answers = {a.name: a.answer for section in finished.sections for a in section.answers}
    assert answers["what_matters"] == ASSESSMENT_ANSWERS["what_matters"]  # AL15
    assert s.step.finished
    # SO09: locked, no further input; finishing again is refused, so StepFinished is sent once.
    assert await s.refused(s.finish(), SO_MGMT) == "SO09"
    save = s.save({"risks": "none"})
    assert await s.refused(save, ASSESSOR) == "SO09"


async def test_so07_the_senior_officer_completes_or_returns_the_request_with_a_note() -> None:
    s = Signoff()
    request_id = await s.requested()
    complete = s.complete(request_id)
    assert await s.refused(complete, ASSESSOR) == "SO07"
    assert await s.refused(complete, SO_NORTH) == "SO07"
    no_note = s.give_back(request_id, " ")
    assert await s.refused(no_note, SO_MGMT) == "SO07"
    note = "Please describe the outcomes in more detail"
    returned = await s.ok(s.give_back(request_id, note), SO_MGMT)
    assert isinstance(returned, RequestReturned)
    assert returned.return_to_position_id == ASSESSOR.position_id and returned.note == note
    assert not s.step.finished and s.step.outstanding() == []
    assert await s.refused(complete, SO_MGMT) == "SO07"  # no longer outstanding
    again = await s.ok(s.send(), ASSESSOR)
    assert isinstance(again, RequestSent)
    completed = await s.ok(s.complete(again.request_id), SO_MGMT)
    assert isinstance(completed, RequestCompleted) and s.repository.saved[-1].by == "pos-so-mgmt"


async def test_so08_not_finished_while_a_field_is_empty_or_a_request_is_outstanding() -> None:
    s = Signoff()
    await s.requested()
    await s.ok(s.add(s.transfer()), SO_MGMT)
    assert await s.refused(s.finish(), SO_MGMT) == "SO08"  # the request outstanding
    empty = Signoff()
    empty.step.next_actions = list(s.step.next_actions)
    assert await empty.refused(empty.finish(), SO_MGMT) == "SO08"  # nothing filled in


async def test_so09_saving_keeps_the_step_open_and_checks_the_form() -> None:
    s = Signoff()
    saved = await s.ok(s.save({"what_matters": "Home"}), ASSESSOR)
    assert isinstance(saved, StepSaved)
    assert saved.answers == {"what_matters": "Home"} and not s.step.finished
    assert "Assessment/presenting_needs" in saved.incomplete_mandatory
    unknown = s.save({"no_such_field": "x"})
    assert await s.refused(unknown, ASSESSOR) == "SO09"
    assert await s.refused(s.save({"risks": "x"}), SUPPORT_OFFICER) == "SO09"


async def test_so10_a_next_action_is_changed_or_removed_until_the_step_is_finished() -> None:
    s = Signoff()
    await s.ready_to_finish()
    (action,) = s.step.next_actions
    to_team = s.transfer().model_copy(update={"assignee_kind": "team", "assignee_id": NORTH_TEAM})
    change = s.change(action.action_id, to_team)
    assert await s.refused(change, SO_MGMT) == "SO10"  # the transfer goes to a support officer
    urgent = s.transfer().model_copy(update={"priority": "urgent"})
    changed = await s.ok(
        s.change(action.action_id, urgent),
        SO_MGMT,
    )
    assert isinstance(changed, NextActionChanged) and changed.next_action.priority == "urgent"
    assert s.step.next_actions == [changed.next_action]
    remove = s.remove(action.action_id)
    removed = await s.ok(remove, SO_MGMT)
    assert isinstance(removed, NextActionRemoved) and s.step.next_actions == []
    assert await s.refused(remove, SO_MGMT) == "SO10"  # no such action any more


async def test_al13_triage_is_saved_and_finished_by_the_worker_holding_it() -> None:
    s = Signoff(StepType.TRIAGE)
    assert await s.refused(s.save(TRIAGE_ANSWERS), OTHER_HUB_WORKER) == "AL13"
    await s.ok(s.save(TRIAGE_ANSWERS), HUB_WORKER)
    close = NextActionInput(
        action_type=CLOSE_CASE_ACTION,
        assignee_kind="worker",
        assignee_id=HUB_WORKER.position_id,
        note="",
    )  # to themselves: no note needed (SO04)
    await s.ok(s.add(close), HUB_WORKER)
    assert await s.refused(s.finish(), SO_MGMT) == "AL13"
    finished = await s.ok(s.finish(), HUB_WORKER)
    assert isinstance(finished, StepFinished) and finished.step_type == StepType.TRIAGE.value


async def test_a_command_about_a_step_signoff_does_not_keep_is_refused() -> None:
    s = Signoff()
    nowhere = SendRequest(step_id=uuid.uuid4(), person_id=s.step.person_id)
    assert await s.refused(nowhere, ASSESSOR) == UNKNOWN_STEP
    other_person = SendRequest(step_id=s.step.step_id, person_id="P-other")
    assert await s.refused(other_person, ASSESSOR) == UNKNOWN_STEP


def test_the_signoff_domain_imports_no_database_or_broker_library() -> None:
    """The domain is pure: importing it (and the shared Position and RuleViolation it uses)
    loads none of the plumbing's libraries."""
    heavy = ("sqlalchemy", "alembic", "faststream", "aiokafka")
    code = (
        "import sys, services.signoff.domain; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""

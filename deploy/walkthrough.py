"""`casework walkthrough`: both seed procedures end to end over Kafka, against the four services
running as their own processes.

The Wellbeing referral (seed 000): triage in the Hub Team finished into the Trusted Assessment,
which is refused without `Involved Worker` and then allocated, sign-off with a next action to a
Generic Support Officer, and a returned request. The agency's secondary access (seed 003):
standing absence-related access, an emergency grant and its later P30, hierarchical access to
Appeals and its removal with the held work moved back to the hopper. Each step checks what it
expects on the event topics, through the read APIs, and in the inboxes of the people the
notifications service must tell. Nothing is assumed: a step whose outcome is not observed in time
fails, and so does every later step of its procedure."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts import Actor, Command, CommandRejected, Envelope, Event
from contracts.access import (
    AccessGrantRecorded,
    AccessKind,
    ActionP30,
    AnswerEmergencyRequest,
    ChangePosition,
    CurrentPositionChanged,
    DirectoryLoaded,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    EmergencyAccessScheduled,
    LoadDirectory,
    LodgeP30,
    P30Lodged,
    P30Recorded,
    PositionReleaseRequested,
    PositionRevoked,
    RequestAbsenceAccess,
    RequestAccessRemoval,
    RequestEmergencyAbsenceAccess,
    RequestHierarchicalAccess,
)
from contracts.allocation import (
    AssignWork,
    PositionWorkReleased,
    Priority,
    ReassignWork,
    ReceiveReferral,
    ReceiveServiceRequest,
    RecordWorkerRelationship,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssigned,
    WorkItemCreated,
    WorkItemOverdue,
    WorkItemReturned,
    WorkItemStarted,
)
from contracts.signoff import (
    CASE_MONITORING_ACTION,
    MANAGEMENT_TEAM,
    REQUEST_NAME,
    TRANSFER_TO_SUPPORT_OFFICER,
    TRUSTED_ASSESSMENT_ACTION,
    AddNextActions,
    CompleteRequest,
    FinishStep,
    NextActionInput,
    NextActionsAdded,
    RequestCompleted,
    RequestReturned,
    RequestSent,
    ReturnRequest,
    SaveStep,
    SendRequest,
    StepFinished,
    StepSaved,
    StepTracked,
)
from deploy.client import Bus, ClientError, EdgeClient, StoredUsers, Target, rejection
from deploy.identity import DevSignIn, SignedInUsers
from deploy.stack import EDGE, SERVICES_DIR, Stack
from services.allocation import deadlines

DIRECTORY_FILE = SERVICES_DIR / "access" / "walkthrough_directory.json"

HUB_TEAM = "Wellbeing Service Hub Team"
NORTH_TEAM = "Wellbeing Service North Team"
APPEALS_TEAM = "team-appeals-1"
APPEALS_HOPPER = "hopper-team-appeals-1"


def seat(user: str) -> Actor:
    """The walkthrough directory's people act in their primary position `pos-<user>`."""
    return Actor(user_id=user, position_id=f"pos-{user}")


ADMIN = Actor(user_id="directory-admin")
SO_HUB, HUB_WORKER = seat("so-hub"), seat("hub-1")
SO_NORTH, SO_MGMT = seat("so-north"), seat("so-mgmt")
ASSESSOR, SUPPORT_OFFICER = seat("ta-north-1"), seat("gso-north-1")
SM_ENF, TL_ENF_1, TL_ENF_2 = seat("sm-enf"), seat("tl-enf-1"), seat("tl-enf-2")
CW_ENF_1, TL_APPEALS = seat("cw-enf-1"), seat("tl-appeals-1")
FLLS_1, FLLS_2 = seat("flls-1"), seat("flls-2")  # the access administration team (AC20)
SM_JUD_REV, TL_JUD_REV = seat("sm-jud-rev"), seat("tl-jud-rev-1")
SPECIAL_CLIENT_TEAM = "team-special-client-1"

TRIAGE_ANSWERS = {
    "reason_for_referral": "Isolated since a fall",
    "risks_identified": "Falls at night",
    "risk_level": "Medium",
    "trusted_assessment_needed": "Yes",
    "monitoring_needed": "Yes",
}
ASSESSMENT_ANSWERS = {
    "what_matters": "Staying independent at home",
    "presenting_needs": "Help with shopping and meals",
    "risks": "Falls at night",
    "support_plan": "Weekly visits from a support officer",
    "progressing_to_support_officer": "Yes",
}
DELIVERY_ANSWERS = {
    "actions_delivered": "Weekly visits arranged",
    "outcomes": "Shopping and meals in place",
    "further_support_needed": "Yes",
}


class StepFailed(Exception):
    pass


@dataclass
class Result:
    procedure: str
    title: str
    ok: bool = False
    observed: str = ""
    seconds: float = 0.0
    notifications: list[str] = field(default_factory=list)


@dataclass
class Walk:
    """The running walkthrough: people's commands through the edge as the signed-in users, the
    bus for what follows them, the read APIs and what has been learnt so far."""

    edge: EdgeClient
    bus: Bus
    urls: dict[str, str]
    timeout: float
    users: SignedInUsers
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))
    facts: dict[str, Any] = field(default_factory=dict)  # ids learnt along the way
    notes: list[str] = field(default_factory=list)  # the notifications seen in this step
    last: Envelope | None = None  # the envelope of the event `ok` or `followed` returned last

    # --- commands and events --------------------------------------------------------------

    async def ok(self, command: Command, actor: Actor, expect: type[Event]) -> Any:
        """Send a command that must be applied; the expected event it caused."""
        _, events = await self._send(command, actor, expect)
        refused = rejection(events)
        if refused is not None:
            raise StepFailed(f"{command.TYPE} rejected by {refused.rule}: {refused.reason}")
        found = _one(events, expect)
        self.last = next(e for e in events if e.type == expect.TYPE)
        return found

    async def refused(self, command: Command, actor: Actor, rule: str) -> CommandRejected:
        """Send a command that must be refused by `rule`; the rejection."""
        _, events = await self._send(command, actor, CommandRejected)
        refused = rejection(events)
        if refused is None:
            raise StepFailed(f"{command.TYPE} was applied; expected a refusal by {rule}")
        if refused.rule != rule:
            raise StepFailed(f"refused by {refused.rule} ({refused.reason}); expected {rule}")
        return refused

    async def _send(
        self, command: Command, actor: Actor, expect: type[Event]
    ) -> tuple[Envelope, list[Envelope]]:
        """Through the edge as `actor`; the command's whole outcome."""
        return await self.edge.send(command, actor)

    async def followed(self, cause: Envelope | None, expect: type[Event]) -> Any:
        """An event another service published in answer to `cause`."""
        if cause is None:
            raise StepFailed(f"nothing to follow for {expect.TYPE}")
        try:
            (found,) = await self.bus.wait_for(
                lambda: [e for e in self.bus.caused_by(cause.message_id) if e.type == expect.TYPE],
                self.timeout,
            )
        except TimeoutError:
            raise StepFailed(f"no {expect.TYPE} in answer to {cause.type}") from None
        self.last = found
        return expect.model_validate(found.payload)

    async def event(self, expect: type[Event], **payload: Any) -> Any:
        """An event of this type whose payload has these values (a saga's later step)."""

        def match() -> list[Envelope]:
            return [
                e
                for e in self.bus.envelopes()
                if e.type == expect.TYPE
                and all(str(e.payload.get(k)) == str(v) for k, v in payload.items())
            ]

        try:
            found = await self.bus.wait_for(match, self.timeout)
        except TimeoutError:
            raise StepFailed(f"no {expect.TYPE} with {payload}") from None
        return expect.model_validate(found[0].payload)

    # --- read APIs ------------------------------------------------------------------------

    async def read(
        self, reader: Actor, service: str, path: str, check: Callable[[Any], Any], what: str
    ) -> Any:
        """Poll a read API as the signed-in `reader` (TR05) until `check(body)` is truthy
        (projections converge after the event): the body; fails with `what` after the
        timeout."""
        if service not in self.urls:
            raise StepFailed(f"the {service} service is not running")
        deadline = time.monotonic() + self.timeout
        last: Any = None
        while True:
            try:
                headers = await self.users.headers(reader.user_id)
                if reader.position_id:
                    headers["X-Acting-Position"] = reader.position_id
                response = await self.http.get(f"{self.urls[service]}{path}", headers=headers)
                last = response.json() if response.status_code == 200 else response.text
                if response.status_code == 200 and check(last):
                    return last
            except (httpx.HTTPError, ValueError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise StepFailed(f"{what}: not seen in {service} {path} ({str(last)[:200]})")
            await asyncio.sleep(0.1)

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


def _one(events: list[Envelope], model: type[Event]) -> Any:
    found = [e for e in events if e.type == model.TYPE]
    if len(found) != 1:
        raise StepFailed(f"expected one {model.TYPE}, got {[e.type for e in events]}")
    return model.model_validate(found[0].payload)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise StepFailed(what)


def _items(body: Any, *lists: str) -> set[str]:
    return {i["work_item_id"] for name in lists for i in body[name]}


# --- The Wellbeing referral (seed 000) -----------------------------------------------------


async def referral(w: Walk) -> str:
    person = f"P-{uuid.uuid4().hex[:8]}"
    w.facts["person"] = person
    created = await w.ok(
        ReceiveReferral(
            person_id=person, person_name="Edith Walker", area="North", reason="GP referral"
        ),
        SO_HUB,
        WorkItemCreated,
    )
    expect(created.step_type == StepType.TRIAGE, f"created {created.step_type}")
    expect((created.owner_kind, created.owner_id) == ("team", HUB_TEAM), "not the Hub Team's")
    w.facts["triage"] = created.work_item_id
    # DL01: due two working days on (weekends and bank holidays do not count).
    due = deadlines.due_at_for(StepType.TRIAGE, created.created_at)
    expect(created.due_at == due, f"triage due {created.due_at}, not {due}")
    await w.read(
        SO_HUB,
        "allocation",
        f"/teams/{HUB_TEAM}/work",
        lambda b: any(
            i["work_item_id"] == str(created.work_item_id) and i["overdue"] is False
            for i in b["incoming_work"]
        ),
        "triage in the Hub Team's incoming work, not overdue",
    )
    return (
        f"triage {created.work_item_id} in the Hub Team's incoming work (AL01), "
        f"due {due.date().isoformat()} (DL01)"
    )


async def late_referral_overdue(w: Walk) -> str:
    """DL01, DL02: a referral that reached the service a week before it was logged is due from
    its receipt, so it is overdue at once; the service's own sweep flags it and the Hub Team's
    Senior Officer is told."""
    received = datetime.now(UTC) - timedelta(days=7)
    created = await w.ok(
        ReceiveReferral(
            person_id=f"P-{uuid.uuid4().hex[:8]}",
            person_name="Owen Late",
            area="South",
            reason="referral letter received by post last week",
            received_at=received,
        ),
        SO_HUB,
        WorkItemCreated,
    )
    due = deadlines.due_at_for(StepType.TRIAGE, received)
    expect(created.due_at == due, f"due {created.due_at}, not {due} from its receipt")
    await w.event(WorkItemOverdue, person_id=created.person_id)
    await w.read(
        SO_HUB,
        "allocation",
        f"/teams/{HUB_TEAM}/work",
        lambda b: any(
            i["work_item_id"] == str(created.work_item_id) and i["overdue"] is True
            for i in b["incoming_work"]
        ),
        "the late triage flagged overdue in the Hub Team's incoming work",
    )
    await w.notified(SO_HUB.user_id, "DL02", work_item_id=created.work_item_id)
    return (
        f"triage received {received.date().isoformat()}, due {due.date().isoformat()}: "
        "flagged overdue and its Senior Officer told (DL01, DL02)"
    )


async def triage_assigned(w: Walk) -> str:
    assigned = await w.ok(
        AssignWork(
            person_id=w.facts["person"],
            work_item_id=w.facts["triage"],
            to_position_id=HUB_WORKER.position_id or "",
            note="Please triage today",
            priority=Priority.HIGH,
        ),
        SO_HUB,
        WorkItemAssigned,
    )
    expect(assigned.item.owner_id == HUB_WORKER.position_id, "not with the Hub worker")
    expect(assigned.item.priority == Priority.HIGH, "priority unchanged")
    await w.notified(HUB_WORKER.user_id, "NT01", work_item_id=w.facts["triage"])
    return "with hub-1, priority high (AL06, AL07)"


async def triage_started(w: Walk) -> str:
    started = await w.ok(
        StartStep(person_id=w.facts["person"], work_item_id=w.facts["triage"]),
        HUB_WORKER,
        WorkItemStarted,
    )
    expect(started.item.state == "incomplete", f"state {started.item.state}")
    return "triage now in hub-1's incomplete work"


async def triage_finished(w: Walk) -> str:
    """AL13: the Hub Team worker fills triage in, adds its next actions and finishes it; the
    Trusted Assessment step follows (to the North Team by the person's area, AL02) with Case
    Monitoring in the Hub Team's incoming work (AL03)."""
    person, triage = w.facts["person"], w.facts["triage"]
    saved = await w.ok(
        SaveStep(step_id=triage, person_id=person, answers=TRIAGE_ANSWERS), HUB_WORKER, StepSaved
    )
    expect(saved.incomplete_mandatory == [], f"incomplete: {saved.incomplete_mandatory}")
    expect(
        saved.prompted_actions == [TRUSTED_ASSESSMENT_ACTION, CASE_MONITORING_ACTION],
        f"prompted {saved.prompted_actions}",
    )
    await w.ok(
        AddNextActions(
            step_id=triage,
            person_id=person,
            actions=[
                NextActionInput(
                    action_type=TRUSTED_ASSESSMENT_ACTION,
                    assignee_kind="team",
                    assignee_id=NORTH_TEAM,
                    note="Please assess and plan support",
                ),
                NextActionInput(
                    action_type=CASE_MONITORING_ACTION,
                    assignee_kind="team",
                    assignee_id=HUB_TEAM,
                    note="Monitor until the assessment starts",
                ),
            ],
        ),
        HUB_WORKER,
        NextActionsAdded,
    )
    await w.ok(FinishStep(step_id=triage, person_id=person), HUB_WORKER, StepFinished)
    finished = w.last
    assert finished is not None

    def two_steps() -> list[Envelope]:
        found = [e for e in w.bus.caused_by(finished.message_id) if e.type == WorkItemCreated.TYPE]
        return found if len(found) == 2 else []

    try:
        created_envelopes = await w.bus.wait_for(two_steps, w.timeout)
    except TimeoutError:
        raise StepFailed("triage's next actions did not become two new steps") from None
    created = {
        c.step_type: c
        for c in (WorkItemCreated.model_validate(e.payload) for e in created_envelopes)
    }
    assessment = created.get(StepType.TRUSTED_ASSESSMENT)
    monitoring = created.get(StepType.CASE_MONITORING)
    expect(assessment is not None and monitoring is not None, f"created {sorted(created)}")
    assert assessment is not None and monitoring is not None
    expect(assessment.owner_id == NORTH_TEAM, f"routed to {assessment.owner_id}")
    expect(monitoring.owner_id == HUB_TEAM, f"Case Monitoring routed to {monitoring.owner_id}")
    w.facts["assessment"], w.facts["monitoring"] = assessment.work_item_id, monitoring.work_item_id
    await w.event(StepTracked, step_id=assessment.work_item_id)
    return (
        "triage finished by hub-1 (AL13); its next actions: Trusted Assessment in the North "
        "Team's incoming work (AL02), Case Monitoring in the Hub Team's (AL03)"
    )


async def allocation_refused(w: Walk) -> str:
    refused = await w.refused(
        AssignWork(
            person_id=w.facts["person"],
            work_item_id=w.facts["assessment"],
            to_position_id=ASSESSOR.position_id or "",
        ),
        SO_NORTH,
        "AL05",
    )
    return f"refused: AL05 {refused.reason}"


async def involved_worker(w: Walk) -> str:
    recorded = await w.ok(
        RecordWorkerRelationship(
            person_id=w.facts["person"], worker_position_id=ASSESSOR.position_id or ""
        ),
        SO_NORTH,
        WorkerRelationshipRecorded,
    )
    return f"{recorded.relationship_type} {recorded.worker_user_id} from {recorded.from_date}"


async def assessment_allocated(w: Walk) -> str:
    assigned = await w.ok(
        AssignWork(
            person_id=w.facts["person"],
            work_item_id=w.facts["assessment"],
            to_position_id=ASSESSOR.position_id or "",
            note="Assessment for you",
        ),
        SO_NORTH,
        WorkItemAssigned,
    )
    expect(assigned.item.owner_id == ASSESSOR.position_id, "not with the Trusted Assessor")
    await w.notified(ASSESSOR.user_id, "NT01", work_item_id=w.facts["assessment"])
    return "with ta-north-1 (AL05, AL06)"


async def monitoring_reassigned(w: Walk) -> str:
    person, step = w.facts["person"], w.facts["monitoring"]
    started = await w.ok(
        StartStep(person_id=person, work_item_id=step), HUB_WORKER, WorkItemStarted
    )
    inbox = started.item.owner_id
    expect(started.item.owner_kind == "inbox", f"started into {started.item.owner_kind}")
    reassigned = await w.ok(
        ReassignWork(
            person_id=person,
            work_item_id=step,
            to_position_id=ASSESSOR.position_id or "",
            note="Monitoring alongside the assessment",
        ),
        SO_NORTH,
        WorkItemAssigned,
    )
    expect(reassigned.reassigned, "not a reassignment")
    await w.read(
        ASSESSOR,
        "allocation",
        f"/workers/{ASSESSOR.position_id}/work",
        lambda b: str(step) in _items(b, "incomplete_work"),
        "Case Monitoring in the Trusted Assessor's incomplete work",
    )
    await w.notified(ASSESSOR.user_id, "NT01", work_item_id=step)
    return (
        f"Hub Team incoming work, started into {inbox} (AL03), reassigned to ta-north-1's "
        "incomplete work (AL09)"
    )


async def assessment_done(w: Walk) -> str:
    person, step = w.facts["person"], w.facts["assessment"]
    await w.ok(StartStep(person_id=person, work_item_id=step), ASSESSOR, WorkItemStarted)
    saved = await w.ok(
        SaveStep(step_id=step, person_id=person, answers=ASSESSMENT_ANSWERS), ASSESSOR, StepSaved
    )
    expect(saved.incomplete_mandatory == [], f"incomplete: {saved.incomplete_mandatory}")
    return f"started, form saved; prompted next action: {', '.join(saved.prompted_actions)}"


async def request_sent(w: Walk) -> str:
    sent = await w.ok(
        SendRequest(step_id=w.facts["assessment"], person_id=w.facts["person"]),
        ASSESSOR,
        RequestSent,
    )
    title = f"{REQUEST_NAME} - {StepType.TRUSTED_ASSESSMENT.value}"
    expect(sent.title == title, f"title {sent.title!r}")
    expect(sent.team == MANAGEMENT_TEAM, f"sent to {sent.team}")
    w.facts["request"] = sent.request_id
    await w.read(
        SO_MGMT,
        "allocation",
        f"/teams/{MANAGEMENT_TEAM}/work",
        lambda b: str(sent.request_id) in {r["request_id"] for r in b["incoming_requests"]},
        "the request in the Management Team's incoming requests",
    )
    await w.notified(SO_MGMT.user_id, "NT02", request_id=sent.request_id)
    return "in the Management Team's incoming requests (SO01, SO02)"


async def next_action_added(w: Walk) -> str:
    added = await w.ok(
        AddNextActions(
            step_id=w.facts["assessment"],
            person_id=w.facts["person"],
            actions=[
                NextActionInput(
                    action_type=TRANSFER_TO_SUPPORT_OFFICER,
                    assignee_kind="worker",
                    assignee_id=SUPPORT_OFFICER.position_id or "",
                    note="Please deliver the support plan",
                )
            ],
        ),
        SO_MGMT,
        NextActionsAdded,
    )
    return f"{added.next_actions[0].action_type} to gso-north-1 (SO04, SO06)"


async def request_completed(w: Walk) -> str:
    await w.ok(
        CompleteRequest(
            request_id=w.facts["request"],
            step_id=w.facts["assessment"],
            person_id=w.facts["person"],
        ),
        SO_MGMT,
        RequestCompleted,
    )
    return "accepted (SO07)"


async def step_finished(w: Walk) -> str:
    await w.ok(
        FinishStep(step_id=w.facts["assessment"], person_id=w.facts["person"]),
        SO_MGMT,
        StepFinished,
    )
    created = await w.followed(w.last, WorkItemCreated)
    expect(created.step_type == StepType.SUPPORT_PLAN_DELIVERY, f"created {created.step_type}")
    expect(created.owner_id == SUPPORT_OFFICER.position_id, f"owned by {created.owner_id}")
    w.facts["delivery"] = created.work_item_id
    w.facts["delivery_created"] = w.last
    await w.read(
        SO_NORTH,
        "allocation",
        f"/work-items/{w.facts['assessment']}",
        lambda b: b["state"] == "finished",
        "the assessment locked",
    )
    await w.notified(SUPPORT_OFFICER.user_id, "NT01", work_item_id=created.work_item_id)
    # SO10, AL11: the Senior Officer is prompted to record the officer as Involved Worker.
    await w.notified(SO_MGMT.user_id, "SO10", work_item_id=created.work_item_id)
    return (
        "assessment locked; Support Action Plan Delivery with gso-north-1 (SO09); so-mgmt "
        "prompted to record the Involved Worker (SO10)"
    )


async def officer_involved(w: Walk) -> str:
    await w.ok(
        RecordWorkerRelationship(
            person_id=w.facts["person"], worker_position_id=SUPPORT_OFFICER.position_id or ""
        ),
        SO_NORTH,
        WorkerRelationshipRecorded,
    )
    record = await w.read(
        SO_NORTH,
        "allocation",
        f"/persons/{w.facts['person']}",
        lambda b: len(b["professional_relationships"]) == 2,
        "both Involved Worker relationships on the record",
    )
    return f"Involved Worker gso-north-1 (AL11); history has {len(record['work_history'])} entries"


async def delivery_sent(w: Walk) -> str:
    person, step = w.facts["person"], w.facts["delivery"]
    await w.followed(w.facts["delivery_created"], StepTracked)
    await w.ok(StartStep(person_id=person, work_item_id=step), SUPPORT_OFFICER, WorkItemStarted)
    await w.ok(
        SaveStep(step_id=step, person_id=person, answers=DELIVERY_ANSWERS),
        SUPPORT_OFFICER,
        StepSaved,
    )
    sent = await w.ok(SendRequest(step_id=step, person_id=person), SUPPORT_OFFICER, RequestSent)
    w.facts["delivery_request"] = sent.request_id
    await w.notified(SO_MGMT.user_id, "NT02", request_id=sent.request_id)
    return "delivery step started, saved, request sent (SO01)"


async def request_returned(w: Walk) -> str:
    person, step = w.facts["person"], w.facts["delivery"]
    note = "Please describe the outcomes in more detail"
    returned = await w.ok(
        ReturnRequest(
            request_id=w.facts["delivery_request"], step_id=step, person_id=person, note=note
        ),
        SO_MGMT,
        RequestReturned,
    )
    expect(returned.return_to_position_id == SUPPORT_OFFICER.position_id, "returned elsewhere")
    back = await w.followed(w.last, WorkItemReturned)
    expect(back.item.state == "incomplete", f"state {back.item.state}")
    await w.read(
        SUPPORT_OFFICER,
        "allocation",
        f"/workers/{SUPPORT_OFFICER.position_id}/work",
        lambda b: str(step) in _items(b, "incomplete_work"),
        "the step back in the officer's incomplete work",
    )
    await w.notified(SUPPORT_OFFICER.user_id, "NT03", request_id=w.facts["delivery_request"])
    return "back in gso-north-1's incomplete work, not finished (SO07)"


async def person_record(w: Walk) -> str:
    person = w.facts["person"]
    steps = {str(w.facts[k]) for k in ("triage", "assessment", "delivery")}

    def complete(b: Any) -> bool:
        history = {h["work_item_id"] for h in b["work_history"]}
        return steps <= history and len(b["professional_relationships"]) == 2

    record = await w.read(
        SO_NORTH, "allocation", f"/persons/{person}", complete, "the person's record"
    )
    documents = {d["work_item_id"]: d["step_type"] for d in record["documents"]}
    expect(
        documents
        == {
            str(w.facts["triage"]): StepType.TRIAGE.value,
            str(w.facts["assessment"]): StepType.TRUSTED_ASSESSMENT.value,
        },
        f"documents {documents}",
    )
    # AL15: each document shows its sections and answers.
    answers = {
        a["name"]: a["answer"]
        for d in record["documents"]
        for section in d["sections"]
        for a in section["answers"]
    }
    expect(answers.get("what_matters") == ASSESSMENT_ANSWERS["what_matters"], "no content")
    current = {c["work_item_id"] for c in record["current_work"]}
    expect(str(w.facts["delivery"]) in current, "the delivery step is not current work")
    changes = [h["change"] for h in record["work_history"]]
    expect({"created", "assigned", "started", "reassigned"} <= set(changes), f"{changes}")
    workers = sorted(r["worker_user_id"] for r in record["professional_relationships"])
    return (
        f"documents: triage and the assessment with their answers (AL15); {len(current)} steps "
        f"current; work history of "
        f"{len(changes)} changes ({', '.join(sorted(set(changes)))}) (AL04, AL12); Involved "
        f"Workers {', '.join(workers)}"
    )


# --- The agency's secondary access (seed 003) ----------------------------------------------


async def actioned(w: Walk, submitted: P30Recorded, by: Actor, outcome: type[Event]) -> Any:
    """AC20: the access team actions the submitted P30; the grant or removal happens then."""
    if submitted.state != "submitted":
        raise StepFailed(f"the P30 is {submitted.state}, not submitted to the access team")
    return await w.ok(ActionP30(user_id=submitted.user_id, p30_id=submitted.p30_id), by, outcome)


async def absence_access(w: Walk) -> str:
    submitted = await w.ok(
        RequestAbsenceAccess(
            user_id=TL_ENF_1.user_id,
            unit_ids=["team-enf-2"],
            reason="Standing cover for Enforcement team 2",
            discussion_held=True,
            discussed_with=TL_ENF_2.user_id,
        ),
        SM_ENF,
        P30Recorded,
    )
    granted = await actioned(w, submitted, FLLS_1, AccessGrantRecorded)
    expect(granted.kind == AccessKind.ABSENCE, f"kind {granted.kind}")
    expect(granted.review_due_at is not None, "no six-monthly review date")
    await w.read(
        TL_ENF_1,
        "access",
        "/me/positions",
        lambda b: granted.position_id in {s["position_id"] for s in b["secondary"]},
        "the absence-related position",
    )
    await w.notified(TL_ENF_1.user_id, "NT06", position_id=granted.position_id)
    return (
        f"asked by sm-enf, approved by tl-enf-2, actioned by flls-1 (AC20): tl-enf-1 holds "
        f"{granted.position_id}, review due {granted.review_due_at:%Y-%m-%d} (AC06-AC09)"
    )


async def emergency_access(w: Walk) -> str:
    requested = await w.ok(
        RequestEmergencyAbsenceAccess(
            user_id=TL_ENF_2.user_id,
            unit_id="team-enf-1",
            absent_user_id=TL_ENF_1.user_id,
            reason="Team leader unexpectedly absent",
        ),
        SM_ENF,
        EmergencyAccessRequested,
    )
    started = time.perf_counter()
    granted = await w.ok(
        AnswerEmergencyRequest(user_id=TL_ENF_2.user_id, p30_id=requested.p30_id),
        FLLS_1,
        EmergencyAccessGranted,
    )
    took = (time.perf_counter() - started) * 1000
    w.facts["emergency_p30"] = granted.p30_id
    w.facts["emergency_position"] = granted.position_id
    await w.read(
        SM_ENF,
        "access",
        "/p30s/outstanding",
        lambda b: str(granted.p30_id) in {o["p30_id"] for o in b["outstanding"]},
        "the P30 flagged outstanding",
    )
    await w.notified(TL_ENF_2.user_id, "NT04", position_id=granted.position_id)
    await w.notified(SM_ENF.user_id, "NT04", position_id=granted.position_id)
    return (
        f"nobody else held team-enf-1 (AC21); the access team granted it in {took:.0f} ms, "
        "P30 outstanding (AC11)"
    )


async def emergency_scheduled(w: Walk) -> str:
    """AC21: the access team lacks capacity and answers with a time scale; the access scheduler
    makes the grant then, and the requester is told either way."""
    requested = await w.ok(
        RequestEmergencyAbsenceAccess(
            user_id=TL_JUD_REV.user_id,
            unit_id=SPECIAL_CLIENT_TEAM,
            absent_user_id="tl-special-client-1",
            reason="Special client records TL unexpectedly absent",
        ),
        SM_JUD_REV,
        EmergencyAccessRequested,
    )
    grant_at = datetime.now(UTC) + timedelta(seconds=12)  # well after the answer arrives
    scheduled = await w.ok(
        AnswerEmergencyRequest(
            user_id=TL_JUD_REV.user_id, p30_id=requested.p30_id, grant_at=grant_at
        ),
        FLLS_2,
        EmergencyAccessScheduled,
    )
    await w.notified(SM_JUD_REV.user_id, "AC21", user_id=TL_JUD_REV.user_id)
    granted = await w.event(EmergencyAccessGranted, p30_id=requested.p30_id)
    w.facts["scheduled_position"] = granted.position_id
    await w.notified(SM_JUD_REV.user_id, "NT04", position_id=granted.position_id)
    return (
        f"flls-2 answered with a time scale ({scheduled.grant_at:%H:%M:%S}); the scheduler "
        f"granted {granted.position_id} then, P30 outstanding (AC21, AC11)"
    )


async def p30_lodged(w: Walk) -> str:
    p30 = w.facts["emergency_p30"]
    lodged = await w.ok(
        LodgeP30(
            user_id=TL_ENF_2.user_id,
            p30_id=p30,
            discussion_held=True,
            discussed_with=TL_ENF_1.user_id,
            reason="Team leader unexpectedly absent",
        ),
        SM_ENF,
        P30Lodged,
    )
    await w.read(
        SM_ENF,
        "access",
        "/p30s/outstanding",
        lambda b: str(p30) not in {o["p30_id"] for o in b["outstanding"]},
        "the P30 no longer outstanding",
    )
    return f"P30 lodged{' late' if lodged.late else ''}; no longer outstanding (AC04, AC11)"


async def hierarchical_access(w: Walk) -> str:
    submitted = await w.ok(
        RequestHierarchicalAccess(
            user_id=CW_ENF_1.user_id,
            unit_ids=[APPEALS_TEAM],
            agreed_with=TL_APPEALS.user_id,
            reason="Appeals needs enforcement casework completed",
        ),
        TL_ENF_1,
        P30Recorded,
    )
    granted = await actioned(w, submitted, FLLS_2, AccessGrantRecorded)
    expect(granted.kind == AccessKind.HIERARCHICAL, f"kind {granted.kind}")
    w.facts["appeals_position"] = granted.position_id
    await w.read(
        TL_APPEALS,
        "allocation",
        f"/teams/{APPEALS_TEAM}",
        lambda b: granted.position_id in {m["position_id"] for m in b["workers"]},
        "allocation knows the Appeals position",
    )
    await w.notified(CW_ENF_1.user_id, "NT06", position_id=granted.position_id)
    return f"cw-enf-1 holds {granted.position_id} (AC12-AC14)"


async def appeals_intake(w: Walk) -> str:
    """A customer's appeal enters the Appeals team's hopper (AC19)."""
    person = f"P-{uuid.uuid4().hex[:8]}"
    item = await w.ok(
        ReceiveServiceRequest(
            person_id=person,
            person_name="Agency Customer",
            unit_id=APPEALS_TEAM,
            description="Appeal lodged",
        ),
        TL_APPEALS,
        WorkItemCreated,
    )
    expect((item.owner_kind, item.owner_id) == ("hopper", APPEALS_HOPPER), f"in {item.owner_id}")
    w.facts["appeals_item"], w.facts["appeals_person"] = item.work_item_id, person
    return f"service request {item.work_item_id} waits in {APPEALS_HOPPER} (AC19)"


async def appeals_work_assigned(w: Walk) -> str:
    position = w.facts["appeals_position"]
    assigned = await w.ok(
        AssignWork(
            person_id=w.facts["appeals_person"],
            work_item_id=w.facts["appeals_item"],
            to_position_id=position,
            note="Please work this appeal",
        ),
        TL_APPEALS,
        WorkItemAssigned,
    )
    expect(assigned.item.owner_id == position, f"with {assigned.item.owner_id}")
    await w.notified(CW_ENF_1.user_id, "NT01", work_item_id=w.facts["appeals_item"])
    await w.ok(
        ChangePosition(user_id=CW_ENF_1.user_id, position_id=position),
        CW_ENF_1,
        CurrentPositionChanged,
    )
    await w.read(
        CW_ENF_1,
        "access",
        "/me/my-service-requests",
        lambda b: str(w.facts["appeals_item"]) in {i["work_item_id"] for i in b["items"]},
        "the item in cw-enf-1's service requests in the Appeals position",
    )
    return "tl-appeals-1 passes it to cw-enf-1's Appeals position (AC17, AC18)"


async def hierarchical_removed(w: Walk) -> str:
    position = w.facts["appeals_position"]
    submitted = await w.ok(
        RequestAccessRemoval(
            user_id=CW_ENF_1.user_id,
            position_id=position,
            kind=AccessKind.HIERARCHICAL,
            reason="Appeals work completed",
        ),
        SM_ENF,
        P30Recorded,
    )
    requested = await actioned(w, submitted, FLLS_1, PositionReleaseRequested)
    released = await w.event(PositionWorkReleased, release_id=requested.release_id)
    moved = {(str(m.work_item_id), m.to_owner.id) for m in released.moved}
    expect((str(w.facts["appeals_item"]), APPEALS_HOPPER) in moved, f"moved {moved}")
    await w.event(PositionRevoked, position_id=position)
    await w.read(
        TL_APPEALS,
        "allocation",
        f"/queues/hopper/{APPEALS_HOPPER}/work",
        lambda b: str(w.facts["appeals_item"]) in _items(b, "incoming_work", "incomplete_work"),
        "the item back in the Appeals hopper",
    )
    await w.read(
        TL_APPEALS,
        "allocation",
        f"/workers/{position}/work",
        lambda b: not _items(b, "incoming_work", "incomplete_work"),
        "nothing left on the removed position",
    )
    await w.read(
        CW_ENF_1,
        "access",
        "/me/positions",
        lambda b: b["secondary"] == [],
        "the Appeals position gone",
    )

    def trail(body: Any) -> list[tuple[str, str]]:
        return [
            (p["action"], p["state"])
            for p in body["p30s"]
            if p["kind"] == AccessKind.HIERARCHICAL and APPEALS_TEAM in p["unit_ids"]
        ]

    await w.read(
        CW_ENF_1,
        "access",
        "/me/p30s",
        lambda b: trail(b)[-2:] == [("set-up", "complete"), ("removal", "complete")],
        "the Appeals access's P30 set-up and removal records, both complete",
    )
    await w.notified(CW_ENF_1.user_id, "NT06", position_id=position, access_kind="hierarchical")
    return (
        f"removed by the line manager (AC15); {len(released.moved)} item(s) back to "
        f"{APPEALS_HOPPER} first, then the access went (AC16); P30 set-up and removal "
        "records complete (AC04)"
    )


async def emergency_removed(w: Walk) -> str:
    """The absent team leaders are back: both emergency accesses are removed through a P30 the
    access team actions (AC20) and the release of work (AC16), so that nobody but them holds
    their teams again (AC21)."""
    removals = [
        (TL_ENF_2, SM_ENF, w.facts["emergency_position"], TL_ENF_1),
        (TL_JUD_REV, SM_JUD_REV, w.facts["scheduled_position"], None),
    ]
    for user, requester, position, approver in removals:
        submitted = await w.ok(
            RequestAccessRemoval(
                user_id=user.user_id,
                position_id=position,
                kind=AccessKind.ABSENCE,
                reason="Team leader back",
                discussion_held=True,
                discussed_with=approver.user_id if approver else None,
            ),
            requester,
            P30Recorded,
        )
        await actioned(w, submitted, FLLS_2, PositionReleaseRequested)
        await w.event(PositionRevoked, position_id=position)
    return "both emergency accesses removed when actioned by flls-2 (AC20, AC16)"


StepFn = Callable[[Walk], Awaitable[str]]
WELLBEING = "Wellbeing referral"
AGENCY = "Secondary access"
PROCEDURES: list[tuple[str, list[tuple[str, StepFn]]]] = [
    (
        WELLBEING,
        [
            ("referral received", referral),
            ("triage assigned to a Hub Team worker", triage_assigned),
            ("triage started", triage_started),
            ("triage finished into the Trusted Assessment step", triage_finished),
            ("allocation without Involved Worker refused", allocation_refused),
            ("Involved Worker recorded", involved_worker),
            ("Trusted Assessment allocated", assessment_allocated),
            ("Case Monitoring reassigned from the inbox", monitoring_reassigned),
            ("assessment started and filled in", assessment_done),
            ("request sent for sign-off", request_sent),
            ("next action to a Generic Support Officer", next_action_added),
            ("request completed", request_completed),
            ("step finished, next action sent", step_finished),
            ("Involved Worker recorded for the officer", officer_involved),
            ("support plan delivered, request sent", delivery_sent),
            ("request returned with a note", request_returned),
            ("the person's record shows the whole path", person_record),
            ("a referral received late is overdue and escalated", late_referral_overdue),
        ],
    ),
    (
        AGENCY,
        [
            ("standing absence-related access", absence_access),
            ("emergency access granted at once by the access team", emergency_access),
            ("the P30 arrives later", p30_lodged),
            ("emergency access answered with a time scale", emergency_scheduled),
            ("hierarchical access to Appeals", hierarchical_access),
            ("Appeals work in the team hopper", appeals_intake),
            ("Appeals work passed to the caseworker", appeals_work_assigned),
            ("hierarchical access removed", hierarchical_removed),
            ("emergency accesses removed", emergency_removed),
        ],
    ),
]


async def load_directory(w: Walk) -> str:
    command = LoadDirectory.model_validate(json.loads(DIRECTORY_FILE.read_text()))
    loaded = await w.ok(command, ADMIN, DirectoryLoaded)
    wanted = {p.position_id for p in command.positions if p.unit_id == NORTH_TEAM}
    await w.read(
        SO_NORTH,
        "allocation",
        f"/teams/{NORTH_TEAM}",
        lambda b: wanted <= {m["position_id"] for m in b["workers"]},
        "the directory projected by allocation",
    )
    return f"{loaded.units} units, {loaded.users} users, {loaded.positions} positions"


async def scenario(target: Target, timeout: float, console: Console, results: list[Result]) -> None:
    bus = Bus(target.broker())
    await bus.start()
    # On the embedded stack every person signs in through the development provider; on another
    # stack, as `casework login` kept them.
    signin = DevSignIn(target.issuer) if target.development_identity and target.issuer else None
    users = SignedInUsers(signin) if signin else StoredUsers(target.credentials())
    edge = EdgeClient(target.url(EDGE), users, timeout)
    urls = {k: v.rstrip("/") for k, v in target.service_urls.items()}
    w = Walk(edge, bus, urls, timeout, users)
    all_steps: list[tuple[str, list[tuple[str, StepFn]]]] = [
        ("Directory", [("walkthrough directory loaded", load_directory)]),
        *PROCEDURES,
    ]
    total = sum(len(steps) for _, steps in all_steps)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("walkthrough", total=total)
            no_directory = False
            for procedure, steps in all_steps:
                failed = no_directory  # a failed step stops its procedure; no directory, all
                for title, fn in steps:
                    result = Result(procedure, title)
                    results.append(result)
                    progress.update(task, description=f"{procedure}: {title}")
                    if failed:
                        result.observed = "not run: an earlier step failed"
                        _print(console, result)
                        progress.advance(task)
                        continue
                    started = time.perf_counter()
                    w.notes.clear()
                    try:
                        result.observed = await fn(w)
                        result.ok = True
                    except (StepFailed, ClientError) as exc:
                        result.observed, failed = str(exc), True
                    except Exception as exc:  # an answer of an unexpected shape: a failed step
                        result.observed, failed = f"{type(exc).__name__}: {exc}", True
                    result.seconds = time.perf_counter() - started
                    result.notifications = list(w.notes)
                    _print(console, result)
                    progress.advance(task)
                no_directory = no_directory or (procedure == "Directory" and failed)
    finally:
        await w.http.aclose()
        await edge.aclose()
        await bus.stop()
        if signin:
            await signin.aclose()


def _print(console: Console, result: Result) -> None:
    mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
    console.print(
        f"{mark} [bold]{result.procedure}[/] · {result.title} "
        f"[dim]({result.seconds * 1000:.0f} ms)[/]\n    {result.observed}"
    )
    for note in result.notifications:
        console.print(f"    [magenta]notified[/] {note}")


def summary_table(results: list[Result], seconds: float) -> Table:
    passed = sum(1 for r in results if r.ok)
    table = Table(
        title=f"walkthrough: {passed}/{len(results)} expected outcomes observed in {seconds:.1f} s"
    )
    for column in ("procedure", "step", "outcome", "ms"):
        table.add_column(column)
    for r in results:
        status = "[green]observed[/]" if r.ok else "[red]FAILED[/]"
        table.add_row(r.procedure, r.title, status, f"{r.seconds * 1000:.0f}")
    return table


def walk(target: Target, console: Console, timeout: float) -> tuple[bool, float]:
    """Run both procedures against a running stack and print the summary: (every outcome
    observed, seconds the walkthrough took)."""
    results: list[Result] = []
    began = time.perf_counter()
    asyncio.run(scenario(target, timeout, console, results))
    walked = time.perf_counter() - began
    console.print(summary_table(results, walked))
    ok = bool(results) and all(r.ok for r in results)
    verdict = "[green]every expected outcome observed[/]" if ok else "[red]some outcomes missing[/]"
    console.print(f"{verdict}: the walkthrough took {walked:.1f} s")
    return ok, walked


def run(state_dir: Path, console: Console, timeout: float = 30.0) -> bool:
    """Start the stack, run the walkthrough, stop the stack; True if every outcome was seen."""
    began = time.perf_counter()
    if not os.environ.get("CASEWORK_DATABASE_URL"):
        shutil.rmtree(state_dir / "pgdata", ignore_errors=True)  # a fresh embedded database
    stack = Stack(state_dir=state_dir)
    logs = state_dir / "logs"
    try:
        try:
            with console.status("starting the stack…"):
                env = stack.start_infrastructure()
                stack.start_services(log_dir=logs)
                stack.wait_ready(timeout=120)
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise ClientError(f"the stack did not start: {exc} (logs in {logs})", 1) from None
        console.print(
            f"stack ready in {time.perf_counter() - began:.1f} s: broker "
            f"{env['CASEWORK_KAFKA_BOOTSTRAP_SERVERS']}, services "
            + ", ".join(f"{n} {s.url}" for n, s in stack.services.items())
        )
        target = Target(
            env["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"],
            env["CASEWORK_OIDC_ISSUER"],
            {name: service.url for name, service in stack.services.items()},
            development_identity=stack.identity is not None,
            state_dir=state_dir,
        )
        ok, _ = walk(target, console, timeout)
    finally:
        with console.status("stopping the stack…"):
            stack.stop()
    console.print(
        f"{time.perf_counter() - began:.1f} s in all with the stack's start and stop "
        f"(service logs in {logs})"
    )
    return ok

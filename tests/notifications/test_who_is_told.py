"""NT01, NT02, NT03, NT06 over the real broker, database and SMTP server: who is told what, in the
in-app inbox and by e-mail; channel preferences; the inbox read API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import Actor, CommandRejected, Topics
from contracts.access import AccessKind, PositionGranted, PositionRevoked, Role, UserRegistered
from contracts.allocation import (
    BulkAssigned,
    Owner,
    StepType,
    WorkItemAssignedV2,
    WorkItemCreatedV2,
    WorkItemSnapshot,
    WorkState,
)
from contracts.notifications import (
    Channel,
    ChannelPreferencesSet,
    NotificationParked,
    SetChannelPreferences,
)
from contracts.signoff import RequestReturned, RequestSent
from tests.conftest import RunningService
from tests.notifications.conftest import (
    Org,
    SmtpSink,
    deliveries,
    inbox_of,
    outcomes,
    publish,
    sent_events,
    uid,
)
from tests.support.client import CommandClient, EventLog


def _snapshot(owner_position: str, owner_user: str | None = None) -> WorkItemSnapshot:
    return WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id=uid("P"),
        step_type=StepType.TRUSTED_ASSESSMENT,
        state=WorkState.INCOMING,
        owner_kind="worker",
        owner_id=owner_position,
        owner_user_id=owner_user,
        priority="normal",
    )


async def test_nt01_worker_told_when_work_is_assigned_in_inbox_and_by_email(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    smtp: tuple[SmtpSink, int],
) -> None:
    await org.define()
    worker = await org.person("worker", Role.TRUSTED_ASSESSOR)
    await org.known()
    item = _snapshot(worker.position_id)  # no owner_user_id: found through the directory
    sent = await publish(
        commands,
        Topics.ALLOCATION_EVENTS,
        WorkItemAssignedV2(
            person_id=item.person_id,
            items=[item],
            from_owners=[Owner(kind="team", id=org.unit_id)],
            note="please visit this week",
        ),
    )
    events = await event_log.wait_for(lambda: len(sent_events(event_log, sent.message_id)) == 2)
    assert events
    channels = {
        (e.recipient_id, e.channel, e.rule) for e in sent_events(event_log, sent.message_id)
    }
    assert channels == {(worker.user_id, "inbox", "NT01"), (worker.user_id, "email", "NT01")}
    (item_in_inbox,) = await inbox_of(notifications, worker.user_id)
    assert item_in_inbox["rule"] == "NT01"
    assert "please visit this week" in item_in_inbox["body"]
    assert item.person_id in item_in_inbox["body"]
    (mail,) = smtp[0].to(worker.email or "")
    assert "please visit this week" in mail.get_content()
    (inbox_sent,) = [e for e in sent_events(event_log, sent.message_id) if e.channel == "email"]
    assert mail["Message-ID"] == f"<{inbox_sent.notification_id}@casework.local>"


async def test_nt01_next_action_and_bulk_assignment_land_as_work_but_team_work_tells_no_one(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    await org.define()
    officer = await org.person("gso", Role.GENERIC_SUPPORT_OFFICER, email=False)
    await org.known()
    new_item = WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id=uid("P"),
        step_type=StepType.SUPPORT_PLAN_DELIVERY,
        state=WorkState.INCOMING,
        owner_kind="worker",
        owner_id=officer.position_id,
        owner_user_id=officer.user_id,
        priority="normal",
    )
    created = WorkItemCreatedV2(
        person_id=new_item.person_id,
        items=[new_item],
        created_at=datetime.now(UTC),
        note="support plan agreed",
    )
    team_item = new_item.model_copy(
        update={"work_item_id": uuid.uuid4(), "owner_kind": "team", "owner_id": org.unit_id}
    )
    to_team = created.model_copy(update={"items": [team_item]})
    items = [_snapshot(officer.position_id, officer.user_id) for _ in range(3)]
    bulk = BulkAssigned(
        to_position_id=officer.position_id,
        to_user_id=officer.user_id,
        note="all of these",
        items=items,
        from_owners=[Owner(kind="team", id=org.unit_id)] * 3,
    )
    team_env = await publish(commands, Topics.ALLOCATION_EVENTS, to_team)
    created_env = await publish(commands, Topics.ALLOCATION_EVENTS, created)
    bulk_env = await publish(commands, Topics.ALLOCATION_EVENTS, bulk, occurred_at=None)
    await event_log.wait_for(
        lambda: (
            sent_events(event_log, created_env.message_id)
            and sent_events(event_log, bulk_env.message_id)
        )
    )
    inbox = await inbox_of(notifications, officer.user_id)
    assert len(inbox) == 2  # one per event: the bulk assignment is one notice for its 3 items
    bulk_notice = next(i for i in inbox if "3 items" in i["subject"])
    assert all(str(i.work_item_id) in bulk_notice["body"] for i in items)
    assert "next action sent" in next(i for i in inbox if i is not bulk_notice)["body"]
    assert sent_events(event_log, team_env.message_id) == []  # team queues are not people


async def test_nt02_senior_officers_of_the_receiving_team_are_told_of_a_request(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    team_name = f"Management Team {uuid.uuid4().hex[:6]}"
    await org.define(name=team_name)
    first = await org.person("so1", Role.SENIOR_OFFICER)
    second = await org.person("so2", Role.SENIOR_OFFICER, email=False)
    other = await org.person("ta", Role.TRUSTED_ASSESSOR)
    await org.known()
    sent = await publish(
        commands,
        Topics.SIGNOFF_EVENTS,
        RequestSent(
            request_id=uuid.uuid4(),
            step_id=uuid.uuid4(),
            person_id=uid("P"),
            title="WB Transfer to Senior Officer - WB Trusted Assessment and Support Planning",
            team=team_name,
        ),
    )
    # so1: inbox and e-mail; so2 (no address): inbox only; the Trusted Assessor: nothing.
    await event_log.wait_for(lambda: len(sent_events(event_log, sent.message_id)) == 3)
    told = {(e.recipient_id, e.channel) for e in sent_events(event_log, sent.message_id)}
    assert told == {(first.user_id, "inbox"), (first.user_id, "email"), (second.user_id, "inbox")}
    assert all(e.rule == "NT02" for e in sent_events(event_log, sent.message_id))
    assert await inbox_of(notifications, other.user_id) == []


async def test_nt03_worker_who_completed_the_step_is_told_of_the_return_with_the_note(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    smtp: tuple[SmtpSink, int],
) -> None:
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR)
    await org.known()
    sent = await publish(
        commands,
        Topics.SIGNOFF_EVENTS,
        RequestReturned(
            request_id=uuid.uuid4(),
            step_id=uuid.uuid4(),
            person_id=uid("P"),
            note="risk section is empty",
            return_to_position_id=worker.position_id,
        ),
    )
    await event_log.wait_for(lambda: len(sent_events(event_log, sent.message_id)) == 2)
    (notice,) = await inbox_of(notifications, worker.user_id)
    assert notice["rule"] == "NT03" and "risk section is empty" in notice["body"]
    (mail,) = smtp[0].to(worker.email or "")
    assert "risk section is empty" in mail.get_content()


async def test_nt06_user_told_when_secondary_access_granted_and_removed_not_for_primary(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    await org.define()
    user = await org.person("cw", Role.CASEWORKER, email=False)
    await org.known()
    assert await inbox_of(notifications, user.user_id) == []  # the primary grant told no one
    grant = PositionGranted(
        user_id=user.user_id,
        position_id=uid("pos-hier"),
        unit_id=org.segment_id,
        role=Role.CASEWORKER,
        kind=AccessKind.HIERARCHICAL,
        p30_id=uuid.uuid4(),
    )
    granted = await publish(commands, Topics.ACCESS_EVENTS, grant)
    revoked = await publish(
        commands,
        Topics.ACCESS_EVENTS,
        PositionRevoked(user_id=user.user_id, position_id=grant.position_id, p30_id=uuid.uuid4()),
    )
    await event_log.wait_for(
        lambda: (
            sent_events(event_log, granted.message_id)
            and sent_events(event_log, revoked.message_id)
        )
    )
    kinds = {e.kind for e in sent_events(event_log, granted.message_id)} | {
        e.kind for e in sent_events(event_log, revoked.message_id)
    }
    assert kinds == {"secondary_access_granted", "secondary_access_removed"}
    inbox = await inbox_of(notifications, user.user_id)
    assert {i["rule"] for i in inbox} == {"NT06"}
    assert all(org.segment_id in i["body"] for i in inbox)


async def test_nt07_preferences_switch_email_off_but_never_the_inbox(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    smtp: tuple[SmtpSink, int],
) -> None:
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR)
    await org.known()
    actor = Actor(user_id=worker.user_id, position_id=worker.position_id)
    refused = await commands.send(SetChannelPreferences(user_id=worker.user_id, channels=[]), actor)
    (answer,) = await event_log.outcome(refused.message_id)
    assert CommandRejected.model_validate(answer.payload).rule == "NT07"
    other = await commands.send(
        SetChannelPreferences(user_id=worker.user_id, channels=[Channel.INBOX]),
        Actor(user_id="someone-else"),
    )
    (answer,) = await event_log.outcome(other.message_id)
    assert CommandRejected.model_validate(answer.payload).rule == "actor-token"
    ok = await commands.send(
        SetChannelPreferences(user_id=worker.user_id, channels=[Channel.INBOX]), actor
    )
    (answer,) = await event_log.outcome(ok.message_id)
    assert ChannelPreferencesSet.model_validate(answer.payload).channels == [Channel.INBOX]

    sent = await publish(
        commands,
        Topics.SIGNOFF_EVENTS,
        RequestReturned(
            request_id=uuid.uuid4(),
            step_id=uuid.uuid4(),
            person_id=uid("P"),
            note="again",
            return_to_position_id=worker.position_id,
        ),
    )
    (event,) = await event_log.wait_for(lambda: sent_events(event_log, sent.message_id))
    assert event.channel == "inbox"
    assert smtp[0].to(worker.email or "") == []


async def test_inbox_lists_counts_unread_and_marks_read(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR, email=False)
    await org.known()
    envelopes = []
    for note in ("one", "two", "three"):
        envelopes.append(
            await publish(
                commands,
                Topics.SIGNOFF_EVENTS,
                RequestReturned(
                    request_id=uuid.uuid4(),
                    step_id=uuid.uuid4(),
                    person_id=uid("P"),
                    note=note,
                    return_to_position_id=worker.position_id,
                ),
            )
        )
    await event_log.wait_for(lambda: all(sent_events(event_log, e.message_id) for e in envelopes))
    me = worker.user_id  # TR05: the inbox read and marked is the signed-in user's own
    count = await notifications.get(me, "/me/inbox/unread-count")
    assert count.json() == {"user_id": me, "unread": 3}
    first = (await inbox_of(notifications, me))[0]["notification_id"]
    marked = await notifications.post(me, "/me/inbox/read", {"notification_ids": [first]})
    assert marked.json()["marked"] == 1
    assert (await notifications.get(me, "/me/inbox/unread-count")).json()["unread"] == 2
    unread = (await notifications.get(me, "/me/inbox", unread="true")).json()
    assert first not in {i["notification_id"] for i in unread["items"]}
    assert (await notifications.post(me, "/me/inbox/read", {})).json()["marked"] == 2
    assert (await notifications.get(me, "/me/inbox/unread-count")).json()["unread"] == 0


async def test_nt07_notice_for_a_position_the_directory_does_not_know_yet_waits_then_arrives(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    """Topics are not ordered with each other: a return may arrive before the grant of the
    position it names. The notice waits, parked and visible, never silently dropped."""
    await org.define()
    user_id, position_id = uid("late"), uid("pos-late")
    returned = await publish(
        commands,
        Topics.SIGNOFF_EVENTS,
        RequestReturned(
            request_id=uuid.uuid4(),
            step_id=uuid.uuid4(),
            person_id=uid("P"),
            note="arrived early",
            return_to_position_id=position_id,
        ),
    )
    (parked,) = await event_log.wait_for(
        lambda: outcomes(event_log, returned.message_id, NotificationParked)
    )
    assert parked.recipient_id == f"position:{position_id}"
    listed = await deliveries(notifications, status="parked", recipient_id=parked.recipient_id)
    assert [d["delivery_id"] for d in listed] == [str(parked.notification_id)]

    await publish(
        commands, Topics.ACCESS_EVENTS, UserRegistered(user_id=user_id, name="late", email=None)
    )
    granted = await publish(
        commands,
        Topics.ACCESS_EVENTS,
        PositionGranted(
            user_id=user_id,
            position_id=position_id,
            unit_id=org.unit_id,
            role=Role.TRUSTED_ASSESSOR,
            kind=AccessKind.PRIMARY,
        ),
    )
    (sent,) = await event_log.wait_for(lambda: sent_events(event_log, granted.message_id))
    assert (sent.recipient_id, sent.channel, sent.rule) == (user_id, "inbox", "NT03")
    (notice,) = await inbox_of(notifications, user_id)
    assert "arrived early" in notice["body"]
    assert await deliveries(notifications, status="parked", recipient_id=parked.recipient_id) == []

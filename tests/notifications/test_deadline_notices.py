"""DL02 over the real broker, database and SMTP server: when allocation's sweep flags work due
and then overdue, its assignee and their team leader are told, in the inbox and by e-mail, once
each, even when the event reaches notifications twice."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from contracts import Actor, Topics
from contracts.access import AccessKind, PositionGranted, Role, UnitDefined, UnitKind
from contracts.access import UserRegistered as Registered
from contracts.allocation import (
    AssignWork,
    ReceiveServiceRequest,
    StepType,
    WorkItemCreated,
    WorkItemDueV2,
    WorkItemOverdueV2,
)
from contracts.notifications import NotificationSent
from services.notifications import domain, store
from tests.allocation.helpers import new_person, ok, only, publish_directory
from tests.allocation.test_deadlines import (
    applied_at,
    created_for,
    due_day,
    flagged,
    on,
    sweep_at,
)
from tests.conftest import RunningService
from tests.notifications.conftest import SmtpSink, publish, sent_events, uid, wait_until
from tests.support.client import CommandClient, EventLog

# A service started late in a session first reads the allocation events of every earlier test
# (thousands of items from the bulk tests): its answers to ours come after that backlog.
CATCH_UP = 180.0


async def test_dl02_assignee_and_team_leader_told_once_when_work_falls_due_and_when_overdue(
    allocation: RunningService,
    notifications: RunningService,
    commands: CommandClient,
    event_log: EventLog,
    smtp: tuple[SmtpSink, int],
) -> None:
    segment, team = uid("segment"), uid("team")
    people = {label: uid(label) for label in ("tl", "cw", "other-cw")}
    roles = {"tl": Role.TEAM_LEADER, "cw": Role.CASEWORKER, "other-cw": Role.CASEWORKER}
    await publish_directory(
        commands,
        allocation,
        [
            UnitDefined(unit_id=segment, name=segment, kind=UnitKind.SEGMENT),
            UnitDefined(
                unit_id=team,
                name=team,
                kind=UnitKind.TEAM,
                parent_id=segment,
                hopper_id=f"hopper-{team}",
            ),
            *(Registered(user_id=u, name=u, email=f"{u}@example.org") for u in people.values()),
            *(
                PositionGranted(
                    user_id=people[label],
                    position_id=f"pos-{people[label]}",
                    unit_id=team,
                    role=roles[label],
                    kind=AccessKind.PRIMARY,
                )
                for label in people
            ),
        ],
    )
    positions = [f"pos-{u}" for u in people.values()]

    async def known() -> bool:
        t = store.directory_t.positions
        async with notifications.runtime.engine.connect() as conn:
            n = await conn.scalar(sa.select(sa.func.count()).where(t.c.position_id.in_(positions)))
        return n == len(positions)

    await wait_until(known)
    tl = Actor(user_id=people["tl"], position_id=f"pos-{people['tl']}")
    cw = people["cw"]

    due = due_day()
    with applied_at(allocation, created_for(StepType.SERVICE_REQUEST, due)):
        created = only(
            await ok(
                commands,
                event_log,
                ReceiveServiceRequest(
                    person_id=new_person(), person_name="Alan Turing", unit_id=team
                ),
                tl,
            ),
            WorkItemCreated,
        )
        await ok(
            commands,
            event_log,
            AssignWork(
                person_id=created.person_id,
                work_item_id=created.work_item_id,
                to_position_id=f"pos-{cw}",
            ),
            tl,
        )
    item = created.work_item_id
    told = {(u, channel) for u in (cw, people["tl"]) for channel in ("inbox", "email")}

    def notices(envelope_id: uuid.UUID, kind: str) -> list[NotificationSent]:
        """The notice's deliveries: in the inbox as the event is consumed (caused by it), by
        e-mail from the delivery worker (caused by the notice's source, DL02's per item)."""
        source = domain.deadline_source(item, kind)
        return [*sent_events(event_log, envelope_id), *sent_events(event_log, source)]

    async def notified(model: type[WorkItemDueV2 | WorkItemOverdueV2], rule_kind: str) -> uuid.UUID:
        await event_log.wait_for(lambda: len(flagged(event_log, model, item)) == 1)
        envelope = next(
            e
            for e in event_log.envelopes()
            if e.type == model.TYPE and e.payload["items"][0]["work_item_id"] == str(item)
        )
        await event_log.wait_for(
            lambda: len(notices(envelope.message_id, rule_kind)) == len(told), CATCH_UP
        )
        sent = notices(envelope.message_id, rule_kind)
        assert {(n.recipient_id, n.channel) for n in sent} == told
        assert {(n.rule, n.kind) for n in sent} == {("DL02", rule_kind)}
        return envelope.message_id

    await sweep_at(allocation.runtime, on(due, 8))
    due_id = await notified(WorkItemDueV2, domain.Kind.WORK_DUE)
    await sweep_at(allocation.runtime, on(due, 23, 59, 59, 500_000))
    overdue_id = await notified(WorkItemOverdueV2, domain.Kind.WORK_OVERDUE)

    # The overdue event reaches notifications again, as a new message (an operator replaying
    # allocation's events): the notice is the item's, so nobody is told twice (NT07).
    again = next(e for e in event_log.envelopes() if e.message_id == overdue_id)
    replayed = again.model_copy(update={"message_id": uuid.uuid4()})
    await publish(
        commands,
        Topics.ALLOCATION_EVENTS,
        WorkItemOverdueV2.model_validate(again.payload),
        envelope=replayed,
    )

    async def applied() -> bool:
        async with notifications.runtime.engine.connect() as conn:
            seen = await conn.scalar(
                sa.select(sa.func.count()).where(store.inbox.c.message_id == replayed.message_id)
            )
        return seen == 1

    await wait_until(applied, CATCH_UP)
    d = store.deliveries
    async with notifications.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(d.c.recipient_id, d.c.channel, d.c.kind).where(
                    d.c.source_id.in_(
                        [
                            domain.deadline_source(item, domain.Kind.WORK_DUE),
                            domain.deadline_source(item, domain.Kind.WORK_OVERDUE),
                        ]
                    )
                )
            )
        ).all()
    assert sorted(rows) == sorted(
        (u, channel, kind)
        for u, channel in told
        for kind in (domain.Kind.WORK_DUE, domain.Kind.WORK_OVERDUE)
    )
    assert not sent_events(event_log, replayed.message_id)
    assert due_id != overdue_id
    # The other caseworker of the team is told nothing.
    assert people["other-cw"] not in {r.recipient_id for r in rows}

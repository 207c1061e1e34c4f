"""Allocation's message handlers: decode (done by the plumbing), authorise, decide (domain),
persist (store), emit.

Commands arrive on allocation.commands; the directory (access.events) and sign-off's outcomes
(signoff.events) arrive as events."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import Event, Topics
from contracts.access import (
    PositionReleaseRequested,
    PositionRevoked,
)
from contracts.allocation import (
    BULK_EVENT_ITEMS,
    AbsentCaseworkerWorkMovedV2,
    AmendWorkerRelationship,
    AssignWork,
    BulkAssign,
    BulkAssigned,
    BulkAssignPreviewed,
    BulkItemOutcome,
    ChangePriority,
    CompleteServiceRequest,
    CreateStep,
    IncomingRequestRecorded,
    InvolvedWorkerPrompted,
    MoveAbsentCaseworkerWork,
    PositionWorkReleasedV2,
    PositionWorkReleaseFailed,
    PreviewBulkAssign,
    Priority,
    ReassignWork,
    ReceiveReferral,
    ReceiveServiceRequest,
    RecordWorkerRelationship,
    ResumeStep,
    SendToSegmentHopper,
    ServiceRequestCompletedV2,
    StartStep,
    StepType,
    WorkerRelationshipRecorded,
    WorkItemAssignedV2,
    WorkItemCreatedV2,
    WorkItemFinishedV2,
    WorkItemMovedV2,
    WorkItemPriorityChangedV2,
    WorkItemResumedV2,
    WorkItemReturnedV2,
    WorkItemSnapshot,
    WorkItemStartedV2,
    WorkState,
)
from contracts.signoff import RequestCompleted, RequestReturned, RequestSent, StepFinished
from services.allocation import deadlines, domain, store
from services.allocation.versions import predecessor
from services.shared import logs
from services.shared.directory import register as register_directory
from services.shared.rules import RuleViolation
from services.shared.transaction import Dispatcher, HandlerContext

log = logs.get(__name__)
dispatcher = Dispatcher()
CONSUMES = [Topics.ALLOCATION_COMMANDS, Topics.ACCESS_EVENTS, Topics.SIGNOFF_EVENTS]
register_directory(dispatcher, store.directory_t)
Ctx = HandlerContext[Any]


# --- helpers ---------------------------------------------------------------------------------


def _emit(ctx: Ctx, event: Event) -> None:
    """A v2 event, after its v1 predecessor while subscribers move (docs/subscribing.md)."""
    if (older := predecessor(event)) is not None:
        ctx.emit(older)
    ctx.emit(event)


def _actor_user(ctx: Ctx) -> str | None:
    return ctx.actor.user_id if ctx.actor else None


async def _actor_seat(ctx: Ctx) -> domain.Seat | None:
    """The signed actor's position, only if that user holds it (AL10)."""
    if ctx.actor is None:
        return None
    found = await store.seat(ctx.conn, ctx.actor.position_id)
    if found is None or found.position.user_id != ctx.actor.user_id:
        return None
    return found


async def _authorise(ctx: Ctx, owning_unit: str | None, what: str) -> domain.Position:
    """AL10 / AC19 for work owned by `owning_unit`, with the lookups the rule needs."""
    actor = await _actor_seat(ctx)
    units = await store.hierarchy(ctx.conn)
    return domain.authorise_allocation(actor, owning_unit, units, what)


async def _load(
    ctx: Ctx, work_item_id: uuid.UUID, person_id: str | None, rule: str
) -> domain.WorkItem:
    item = await store.load_item(ctx.conn, work_item_id)
    if item is None or (person_id is not None and item.person_id != person_id):
        raise RuleViolation(rule, f"no work item {work_item_id} for person {person_id}")
    return item


async def _snapshot(ctx: Ctx, item: domain.WorkItem) -> WorkItemSnapshot:
    owner_seat = await store.seat(ctx.conn, item.owner_id) if item.owner_kind == "worker" else None
    return store.snapshot(
        item,
        person_name=item.person_name,
        owner_seat=owner_seat,
        owner_unit=await store.owning_unit(ctx.conn, item.owner_kind, item.owner_id),
        actor_user_id=_actor_user(ctx),
        actor_position_id=ctx.actor.position_id if ctx.actor else None,
    )


def _owner(item: domain.WorkItem | domain.Placement) -> str:
    return store.owner_text(item.owner_kind, item.owner_id)


async def _move(
    ctx: Ctx,
    item: domain.WorkItem,
    to: domain.Placement,
    change: str,
    *,
    priority: str | None = None,
    note: str = "",
    detail: dict[str, Any] | None = None,
) -> domain.WorkItem:
    """Write one item's new placement (and priority, note) with its history row (AL12)."""
    after = replace(
        item,
        state=to.state,
        owner_kind=to.owner_kind,
        owner_id=to.owner_id,
        priority=priority or item.priority,
    )
    note_row = {"note": note, "by": _actor_user(ctx), "at": ctx.now.isoformat()} if note else None
    await ctx.execute(
        store.move_statement(
            [item.work_item_id], to, at=ctx.now, keep_state=False, priority=priority, note=note_row
        )
    )
    history = {"note": note} if note else {}
    if priority and priority != item.priority:
        history.update(priority_from=item.priority, priority_to=priority)
    await ctx.execute(
        store.work_history.insert().values(
            store.history_row(
                item,
                change,
                actor_user_id=_actor_user(ctx),
                at=ctx.now,
                from_owner=_owner(item),
                to_owner=_owner(to),
                detail={**history, **(detail or {})},
            )
        )
    )
    return after


# --- creating work (AL01-AL03) ---------------------------------------------------------------


async def _create_work_item(
    ctx: Ctx,
    *,
    work_item_id: uuid.UUID,
    person_id: str,
    person_name: str | None,
    step_type: StepType,
    placement: domain.Placement,
    priority: str = domain.DEFAULT_PRIORITY,
    note: str = "",
    id_from_message: bool = False,
    counted_from: datetime | None = None,
) -> bool:
    """Creates the item, its history entry and its event. An id derived from the consumed
    message (`id_from_message`) is new by construction (the inbox applies a message once), so
    its rows are staged and written with the rest of the batch; a caller-chosen id is checked."""
    notes = [{"note": note, "by": _actor_user(ctx), "at": ctx.now.isoformat()}] if note else []
    due_at = deadlines.due_at_for(step_type, counted_from or ctx.now)  # DL01
    row = {
        "work_item_id": work_item_id,
        "person_id": person_id,
        "step_type": step_type.value,
        "state": placement.state.value,
        "owner_kind": placement.owner_kind,
        "owner_id": placement.owner_id,
        "priority": priority,
        "notes": notes,
        "created_at": ctx.now,
        "updated_at": ctx.now,
        "due_at": due_at,
    }
    history = {
        "work_item_id": work_item_id,
        "person_id": person_id,
        "change": "created",
        "actor_user_id": _actor_user(ctx),
        "from_owner": None,
        "to_owner": _owner(placement),
        "detail": {"step_type": step_type.value, **({"note": note} if note else {})},
        "at": ctx.now,
    }
    if id_from_message:
        ctx.stage(store.WORK_ITEM_INSERT, row)
        ctx.stage(store.HISTORY_INSERT, history)
    else:
        inserted = await ctx.execute(
            pg_insert(store.work_items).values(**row).on_conflict_do_nothing()
        )
        if inserted.rowcount == 0:
            return False  # a replay: the item exists already
        await ctx.execute(store.work_history.insert().values(**history))
    created = domain.WorkItem(
        work_item_id=work_item_id,
        person_id=person_id,
        step_type=step_type,
        state=placement.state,
        owner_kind=placement.owner_kind,
        owner_id=placement.owner_id,
        priority=priority,
        person_name=person_name,
        due_at=due_at,
    )
    _emit(
        ctx,
        WorkItemCreatedV2(
            person_id=person_id,
            items=[await _snapshot(ctx, created)],
            created_at=ctx.now,
            note=note,
        ),
    )
    return True


async def _intake(
    ctx: Ctx,
    *,
    person_id: str,
    person_name: str,
    area: str | None,
    step_type: StepType,
    placement: domain.Placement,
    note: str,
    received_at: datetime | None,
) -> None:
    """New work from outside (a referral, a service request): the person and the item, staged."""
    start = deadlines.counted_from(received_at, ctx.now)  # DL01: decided before anything is staged
    ctx.stage(
        store.PERSON_UPSERT,
        {"person_id": person_id, "name": person_name, "area": area},
        dedupe_on=("person_id",),
    )
    await _create_work_item(
        ctx,
        work_item_id=uuid.uuid5(ctx.envelope.message_id, step_type.value),
        person_id=person_id,
        person_name=person_name,
        step_type=step_type,
        placement=placement,
        note=note,
        id_from_message=True,
        counted_from=start,
    )


@dispatcher.on(ReceiveReferral)
async def receive_referral(ctx: HandlerContext[ReceiveReferral]) -> None:
    """AL01."""
    cmd = ctx.message
    await _intake(
        ctx,
        person_id=cmd.person_id,
        person_name=cmd.person_name,
        area=cmd.area,
        step_type=StepType.TRIAGE,
        placement=domain.placement_for_new_step(StepType.TRIAGE, cmd.area),
        note=cmd.reason,
        received_at=cmd.received_at,
    )


@dispatcher.on(ReceiveServiceRequest)
async def receive_service_request(ctx: HandlerContext[ReceiveServiceRequest]) -> None:
    """AC19: agency work enters its unit's hopper."""
    cmd = ctx.message
    unit = await store.unit(ctx.conn, cmd.unit_id)
    await _intake(
        ctx,
        person_id=cmd.person_id,
        person_name=cmd.person_name,
        area=None,
        step_type=StepType.SERVICE_REQUEST,
        placement=domain.intake(cmd.unit_id, (unit or {}).get("hopper_id")),
        note=cmd.description,
        received_at=cmd.received_at,
    )


@dispatcher.on(CreateStep)
async def create_step(ctx: HandlerContext[CreateStep]) -> None:
    """AL02, AL03."""
    cmd = ctx.message
    known = await store.person(ctx.conn, cmd.person_id)
    area = cmd.area or (known or {}).get("area")
    placement = domain.placement_for_new_step(cmd.step_type, area)
    work_item_id = cmd.work_item_id or uuid.uuid5(ctx.envelope.message_id, "step")
    domain.require_new_step(
        cmd.step_type, work_item_id, await store.load_item(ctx.conn, work_item_id, lock=False)
    )
    await store.upsert_person(ctx.conn, cmd.person_id, None, cmd.area)
    await _create_work_item(
        ctx,
        work_item_id=work_item_id,
        person_id=cmd.person_id,
        person_name=(known or {}).get("name"),
        step_type=cmd.step_type,
        placement=placement,
    )


@dispatcher.on(StartStep)
async def start_step(ctx: HandlerContext[StartStep]) -> None:
    """AL03: incoming -> incomplete."""
    cmd = ctx.message
    item = await _load(ctx, cmd.work_item_id, cmd.person_id, "AL03")
    person = await store.person(ctx.conn, item.person_id)
    to = domain.start(
        item,
        await _actor_seat(ctx),
        await store.owning_unit(ctx.conn, item.owner_kind, item.owner_id),
        (person or {}).get("area"),
    )
    after = await _move(ctx, item, to, "started")
    _emit(
        ctx,
        WorkItemStartedV2(
            person_id=item.person_id,
            items=[await _snapshot(ctx, after)],
            from_owners=[item.placement.owner],
        ),
    )


@dispatcher.on(ResumeStep)
async def resume_step(ctx: HandlerContext[ResumeStep]) -> None:
    """AL13, AL11: a Generic Support Officer resumes Case Monitoring from the person's current
    work, as the person's Involved Worker."""
    cmd = ctx.message
    item = await _load(ctx, cmd.work_item_id, cmd.person_id, "AL13")
    actor = await _actor_seat(ctx)
    rels = await store.person_relationships(ctx.conn, [item.person_id])
    to = domain.resume(
        item,
        actor,
        involved=actor is not None
        and domain.has_involved_worker(
            rels.get(item.person_id, []), actor.position.user_id, ctx.now.date()
        ),
    )
    after = await _move(ctx, item, to, "resumed")
    _emit(
        ctx,
        WorkItemResumedV2(
            person_id=item.person_id,
            items=[await _snapshot(ctx, after)],
            from_owners=[item.placement.owner],
        ),
    )


@dispatcher.on(CompleteServiceRequest)
async def complete_service_request(ctx: HandlerContext[CompleteServiceRequest]) -> None:
    """AC23 (AC18): completed from My service requests in the position it is assigned to; the
    work item is finished."""
    cmd = ctx.message
    item = await _load(ctx, cmd.work_item_id, cmd.person_id, "AC23")
    to = domain.complete_service_request(item, await _actor_seat(ctx))
    after = await _move(ctx, item, to, "completed")
    _emit(
        ctx,
        ServiceRequestCompletedV2(
            person_id=item.person_id,
            items=[await _snapshot(ctx, after)],
            from_owners=[item.placement.owner],
        ),
    )


# --- assigning (AL05-AL10, AC19) ------------------------------------------------------------


async def _assign(
    ctx: Ctx,
    *,
    work_item_id: uuid.UUID,
    person_id: str,
    to_position_id: str,
    note: str,
    priority: Priority | None,
    from_record: bool,
    started_only: bool,
) -> None:
    item = await _load(ctx, work_item_id, person_id, "AL06")
    person = await store.person(ctx.conn, item.person_id)
    actor = domain.authorise_on_work(  # AL10, AL14
        await _actor_seat(ctx),
        item,
        await store.owning_unit(ctx.conn, item.owner_kind, item.owner_id),
        (person or {}).get("area"),
        await store.hierarchy(ctx.conn),
        "reassign" if started_only else "allocate",
    )
    target = domain.require_active_target(
        await store.seat(ctx.conn, to_position_id), to_position_id
    )
    domain.check_absence_target(actor, target)
    involved = False
    if target.role in domain.RELATIONSHIP_ROLES:  # AL05 asks; no need to read otherwise
        rels = await store.person_relationships(ctx.conn, [item.person_id])
        involved = domain.has_involved_worker(
            rels.get(item.person_id, []), target.user_id, ctx.now.date()
        )
    to, new_priority = domain.assignment(
        item,
        target,
        involved=involved,
        priority=priority,
        from_record=from_record,
        started_only=started_only,
    )
    reassigned = item.state is WorkState.INCOMPLETE
    after = await _move(
        ctx,
        item,
        to,
        "reassigned" if reassigned else "assigned",
        priority=new_priority,
        note=note,
        detail={"by_position_id": actor.position_id},
    )
    _emit(
        ctx,
        WorkItemAssignedV2(
            person_id=item.person_id,
            items=[await _snapshot(ctx, after)],
            from_owners=[item.placement.owner],
            note=note,
            reassigned=reassigned,
            previous_priority=item.priority if new_priority != item.priority else None,
        ),
    )


@dispatcher.on(AssignWork)
async def assign_work(ctx: HandlerContext[AssignWork]) -> None:
    """AL05, AL06, AL07, AL09, AL10, AC16, AC19."""
    cmd = ctx.message
    await _assign(
        ctx,
        work_item_id=cmd.work_item_id,
        person_id=cmd.person_id,
        to_position_id=cmd.to_position_id,
        note=cmd.note,
        priority=cmd.priority,
        from_record=cmd.from_record,
        started_only=False,
    )


@dispatcher.on(ReassignWork)
async def reassign_work(ctx: HandlerContext[ReassignWork]) -> None:
    """AL09 (with AL05, AL10, AC16, AC19)."""
    cmd = ctx.message
    await _assign(
        ctx,
        work_item_id=cmd.work_item_id,
        person_id=cmd.person_id,
        to_position_id=cmd.to_position_id,
        note=cmd.note,
        priority=None,
        from_record=False,
        started_only=True,
    )


@dispatcher.on(ChangePriority)
async def change_priority(ctx: HandlerContext[ChangePriority]) -> None:
    """AL07, AL10."""
    cmd = ctx.message
    item = await _load(ctx, cmd.work_item_id, cmd.person_id, "AL07")
    await _authorise(
        ctx, await store.owning_unit(ctx.conn, item.owner_kind, item.owner_id), "re-prioritise"
    )
    priority = domain.new_priority(item, cmd.priority)
    after = await _move(ctx, item, item.placement, "priority changed", priority=priority)
    _emit(
        ctx,
        WorkItemPriorityChangedV2(
            person_id=item.person_id,
            items=[await _snapshot(ctx, after)],
            previous_priority=item.priority,
        ),
    )


# --- bulk assign (AL08) ---------------------------------------------------------------------


async def _bulk_decide(
    ctx: Ctx, cmd: PreviewBulkAssign
) -> tuple[domain.Position, list[domain.WorkItem], list[BulkItemOutcome]]:
    target = domain.require_active_target(
        await store.seat(ctx.conn, cmd.to_position_id), cmd.to_position_id
    )
    ids = list(dict.fromkeys(cmd.work_item_ids))
    found = await store.load_items(ctx.conn, ids)
    items = [found[i] for i in ids if i in found]
    # AL10 / AC19 once per distinct owner: its answer (the acting position, or the refusal).
    owners: dict[tuple[str, str], domain.Position | RuleViolation] = {}
    for item in items:
        key = (item.owner_kind, item.owner_id)
        if key not in owners:
            try:
                owners[key] = await _authorise(
                    ctx, await store.owning_unit(ctx.conn, *key), "allocate"
                )
            except RuleViolation as violation:
                owners[key] = violation
    rels = await store.person_relationships(ctx.conn, {i.person_id for i in items})
    today = ctx.now.date()
    errors: dict[uuid.UUID, Exception | None] = {}
    for item in items:
        try:
            actor = owners[(item.owner_kind, item.owner_id)]
            if isinstance(actor, RuleViolation):
                raise actor
            domain.check_absence_target(actor, target)
            domain.assignment(
                item,
                target,
                involved=domain.has_involved_worker(
                    rels.get(item.person_id, []), target.user_id, today
                ),
            )
            errors[item.work_item_id] = None
        except RuleViolation as violation:
            errors[item.work_item_id] = violation
    entries: list[domain.WorkItem | uuid.UUID] = [found.get(i, i) for i in ids]
    return target, items, domain.bulk_outcomes(entries, errors)


@dispatcher.on(PreviewBulkAssign)
async def preview_bulk_assign(ctx: HandlerContext[PreviewBulkAssign]) -> None:
    """AL08: each item's outcome; nothing changes."""
    cmd = ctx.message
    _, _, outcomes = await _bulk_decide(ctx, cmd)
    parts = _parts(len(outcomes))
    for part, chunk in enumerate(parts, start=1):
        ctx.emit(
            BulkAssignPreviewed(
                to_position_id=cmd.to_position_id,
                note=cmd.note,
                outcomes=outcomes[chunk],
                would_apply=all(o.ok for o in outcomes),
                part=part,
                parts=len(parts),
            )
        )


def _parts(count: int) -> list[slice]:
    """TR08: a bulk outcome in parts of BULK_EVENT_ITEMS, each fitting the record limit."""
    return [
        slice(start, start + BULK_EVENT_ITEMS)
        for start in range(0, max(count, 1), BULK_EVENT_ITEMS)
    ]


@dispatcher.on(BulkAssign)
async def bulk_assign(ctx: HandlerContext[BulkAssign]) -> None:
    """AL08: all or nothing, one note against every item, one transaction."""
    cmd = ctx.message
    target, items, outcomes = await _bulk_decide(ctx, cmd)
    refusal = domain.bulk_refusal(outcomes)
    if refusal is not None:
        raise refusal
    to = domain.Placement(WorkState.INCOMING, "worker", target.position_id)
    note_row = {"note": cmd.note, "by": _actor_user(ctx), "at": ctx.now.isoformat()}
    await ctx.execute(
        store.move_statement(
            [i.work_item_id for i in items],
            to,
            at=ctx.now,
            note=note_row if cmd.note else None,
        )
    )
    await ctx.execute(
        store.work_history.insert(),
        [
            store.history_row(
                item,
                "reassigned" if item.state is WorkState.INCOMPLETE else "assigned",
                actor_user_id=_actor_user(ctx),
                at=ctx.now,
                from_owner=_owner(item),
                to_owner=_owner(to),
                detail={"bulk": True, **({"note": cmd.note} if cmd.note else {})},
            )
            for item in items
        ],
    )
    target_seat = domain.Seat(target, True)
    snapshots = [
        store.snapshot(
            replace(item, owner_kind="worker", owner_id=target.position_id),
            person_name=item.person_name,
            owner_seat=target_seat,
            owner_unit=target.unit_id,
            actor_user_id=_actor_user(ctx),
            actor_position_id=ctx.actor.position_id if ctx.actor else None,
        )
        for item in items
    ]
    parts = _parts(len(items))
    for part, chunk in enumerate(parts, start=1):
        ctx.emit(
            BulkAssigned(
                to_position_id=target.position_id,
                to_user_id=target.user_id,
                note=cmd.note,
                items=snapshots[chunk],
                from_owners=[item.placement.owner for item in items[chunk]],
                part=part,
                parts=len(parts),
            )
        )


# --- worker relationships (AL05, AL11) -----------------------------------------------------


async def _relationship_event(
    ctx: Ctx, row: dict[str, Any], *, amended: bool
) -> WorkerRelationshipRecorded:
    names = await store.person_names(ctx.conn, [row["person_id"]])
    return WorkerRelationshipRecorded(
        relationship_id=row["relationship_id"],
        person_id=row["person_id"],
        person_name=names.get(row["person_id"]),
        worker_position_id=row["worker_position_id"],
        worker_user_id=row["worker_user_id"],
        relationship_type=row["relationship_type"],
        from_date=row["from_date"],
        end_date=row["end_date"],
        recorded_by_user_id=_actor_user(ctx),
        amended=amended,
    )


@dispatcher.on(RecordWorkerRelationship)
async def record_worker_relationship(ctx: HandlerContext[RecordWorkerRelationship]) -> None:
    """AL05, AL11: a Senior Officer records `Involved Worker` before allocating (AL10)."""
    cmd = ctx.message
    worker = domain.relationship_worker(
        await store.seat(ctx.conn, cmd.worker_position_id), cmd.worker_position_id
    )
    await _authorise(ctx, worker.unit_id, "record worker relationships")
    from_date, end_date = domain.relationship_dates(cmd.from_date, cmd.end_date, ctx.now.date())
    row = {
        "relationship_id": cmd.relationship_id or uuid.uuid5(ctx.envelope.message_id, "rel"),
        "person_id": cmd.person_id,
        "worker_position_id": worker.position_id,
        "worker_user_id": worker.user_id,
        "relationship_type": cmd.relationship_type,
        "from_date": from_date,
        "end_date": end_date,
        "recorded_by": _actor_user(ctx),
        "recorded_at": ctx.now,
    }
    r = store.relationships
    if await ctx.conn.scalar(
        sa.select(r.c.relationship_id).where(r.c.relationship_id == row["relationship_id"])
    ):
        raise RuleViolation("AL05", f"relationship {row['relationship_id']} exists; amend it")
    await store.upsert_person(ctx.conn, cmd.person_id, None, None)
    await ctx.execute(r.insert().values(**row))
    ctx.emit(await _relationship_event(ctx, row, amended=False))


@dispatcher.on(AmendWorkerRelationship)
async def amend_worker_relationship(ctx: HandlerContext[AmendWorkerRelationship]) -> None:
    """AL05: the from-date is amendable; an end-date ends the relationship."""
    cmd = ctx.message
    r = store.relationships
    found = (
        await ctx.conn.execute(
            sa.select(r).where(
                r.c.relationship_id == cmd.relationship_id, r.c.person_id == cmd.person_id
            )
        )
    ).first()
    if found is None:
        raise RuleViolation("AL05", f"no relationship {cmd.relationship_id} on {cmd.person_id}")
    row = dict(found._mapping)
    worker = await store.seat(ctx.conn, row["worker_position_id"])
    await _authorise(ctx, worker.position.unit_id if worker else None, "amend worker relationships")
    from_date, end_date = domain.relationship_dates(
        cmd.from_date or row["from_date"],
        cmd.end_date if cmd.end_date is not None else row["end_date"],
        ctx.now.date(),
    )
    row.update(from_date=from_date, end_date=end_date)
    await ctx.execute(
        r.update()
        .where(r.c.relationship_id == cmd.relationship_id)
        .values(from_date=from_date, end_date=end_date)
    )
    ctx.emit(await _relationship_event(ctx, row, amended=True))


# --- moving work without a chosen assignee (AC07, AC19, AC16) -------------------------------


async def _move_all(
    ctx: Ctx, items: list[domain.WorkItem], to: domain.Placement, rule: str, note: str = ""
) -> list[WorkItemSnapshot]:
    """Move these items to one owner in one statement, keeping each item's state."""
    if not items:
        return []
    await ctx.execute(store.move_statement([i.work_item_id for i in items], to, at=ctx.now))
    await ctx.execute(
        store.work_history.insert(),
        [
            store.history_row(
                item,
                "moved",
                actor_user_id=_actor_user(ctx),
                at=ctx.now,
                from_owner=_owner(item),
                to_owner=_owner(to),
                detail={"rule": rule, **({"note": note} if note else {})},
            )
            for item in items
        ],
    )
    snapshots = []
    for item in items:
        after = replace(item, owner_kind=to.owner_kind, owner_id=to.owner_id)
        snap = await _snapshot(ctx, after)
        snapshots.append(snap)
        _emit(
            ctx,
            WorkItemMovedV2(
                person_id=item.person_id,
                items=[snap],
                from_owners=[item.placement.owner],
                rule=rule,
                note=note,
            ),
        )
    return snapshots


@dispatcher.on(MoveAbsentCaseworkerWork)
async def move_absent_caseworker_work(ctx: HandlerContext[MoveAbsentCaseworkerWork]) -> None:
    """AC07."""
    cmd = ctx.message
    absent = await store.seat(ctx.conn, cmd.from_position_id)
    target = await store.seat(ctx.conn, cmd.to_position_id) if cmd.to_position_id else None
    if cmd.to_position_id and target is None:
        raise RuleViolation("AC07", f"no caseworker position {cmd.to_position_id}")
    team = await store.unit(ctx.conn, absent.position.unit_id) if absent else None
    to = domain.absent_move_target(
        await _actor_seat(ctx), absent, target, (team or {}).get("hopper_id")
    )
    items = await store.items_held(ctx.conn, "worker", cmd.from_position_id)
    moved = await _move_all(ctx, items, to, "AC07", cmd.note)
    _emit(
        ctx,
        AbsentCaseworkerWorkMovedV2(
            from_position_id=cmd.from_position_id, to_owner=to.owner, items=moved
        ),
    )


@dispatcher.on(SendToSegmentHopper)
async def send_to_segment_hopper(ctx: HandlerContext[SendToSegmentHopper]) -> None:
    """AC19 (with AL10)."""
    cmd = ctx.message
    item = await _load(ctx, cmd.work_item_id, cmd.person_id, "AC19")
    unit_id = await store.owning_unit(ctx.conn, item.owner_kind, item.owner_id)
    await _authorise(ctx, unit_id, "move")
    parent_id = (await store.unit(ctx.conn, unit_id) or {}).get("parent_id")
    segment = await store.unit(ctx.conn, parent_id)
    to = domain.segment_hopper(item, (segment or {}).get("hopper_id"), parent_id)
    await _move_all(ctx, [item], to, "AC19", cmd.note)


async def _release(
    ctx: Ctx, position_id: str, successor_id: str | None
) -> tuple[list[domain.WorkItem], domain.Placement | None]:
    """AC16: move everything held in the position; None when nothing is held."""
    items = await store.items_held(ctx.conn, "worker", position_id)
    if not items:
        return [], None
    held_by = await store.seat(ctx.conn, position_id)
    unit = await store.unit(ctx.conn, held_by.position.unit_id) if held_by else None
    to = domain.release_target(
        held_by.position if held_by else None,
        await store.seat(ctx.conn, successor_id),
        successor_id,
        (unit or {}).get("hopper_id"),
    )
    return items, to


@dispatcher.on(PositionReleaseRequested)
async def position_release_requested(ctx: HandlerContext[PositionReleaseRequested]) -> None:
    """AC16, allocation's half of the saga: move the work in one transaction and confirm, or
    say why not."""
    m = ctx.message
    try:
        items, to = await _release(ctx, m.position_id, m.successor_position_id)
    except RuleViolation as violation:
        ctx.emit(
            PositionWorkReleaseFailed(
                release_id=m.release_id,
                user_id=m.user_id,
                position_id=m.position_id,
                reason=f"{violation.rule}: {violation.reason}",
            )
        )
        return
    moved = await _move_all(ctx, items, to, "AC16") if to is not None else []
    _emit(
        ctx,
        PositionWorkReleasedV2(
            release_id=m.release_id, user_id=m.user_id, position_id=m.position_id, items=moved
        ),
    )


@dispatcher.on(PositionRevoked)
async def position_revoked(ctx: HandlerContext[PositionRevoked]) -> None:
    """AC16: a removed position never keeps work. The saga moves it before the revocation; if
    anything is still held when the revocation arrives, it goes back to the hopper now (the
    directory projection's handler, registered first, has applied it already)."""
    try:
        items, to = await _release(ctx, ctx.message.position_id, None)
    except RuleViolation as violation:
        log.warning("revoked position still holds work", reason=violation.reason)
        return
    if to is not None:
        await _move_all(ctx, items, to, "AC16")


# --- sign-off's outcomes (AL04, SO06, SO07, SO09) -------------------------------------------


async def _request_state(ctx: Ctx, request_id: uuid.UUID, state: str) -> None:
    r = store.requests
    row = (
        await ctx.execute(
            r.update()
            .where(r.c.request_id == request_id)
            .values(state=state, updated_at=ctx.now)
            .returning(r)
        )
    ).first()
    if row is not None:
        names = await store.person_names(ctx.conn, [row.person_id])
        ctx.emit(
            IncomingRequestRecorded(
                request_id=row.request_id,
                step_id=row.step_id,
                person_id=row.person_id,
                person_name=names.get(row.person_id),
                title=row.title,
                team=row.team,
                state=state,
            )
        )


@dispatcher.on(RequestSent)
async def request_sent(ctx: HandlerContext[RequestSent]) -> None:
    """AL04: the request shows in the team's incoming requests."""
    m = ctx.message
    inserted = await ctx.execute(
        pg_insert(store.requests)
        .values(
            request_id=m.request_id,
            step_id=m.step_id,
            person_id=m.person_id,
            title=m.title,
            team=m.team,
            state="outstanding",
            sent_by_position_id=m.sent_by_position_id,
            sent_at=ctx.now,
            updated_at=ctx.now,
        )
        .on_conflict_do_nothing()
    )
    if inserted.rowcount:
        names = await store.person_names(ctx.conn, [m.person_id])
        ctx.emit(
            IncomingRequestRecorded(
                request_id=m.request_id,
                step_id=m.step_id,
                person_id=m.person_id,
                person_name=names.get(m.person_id),
                title=m.title,
                team=m.team,
                state="outstanding",
            )
        )


@dispatcher.on(RequestCompleted)
async def request_completed(ctx: HandlerContext[RequestCompleted]) -> None:
    await _request_state(ctx, ctx.message.request_id, "completed")


@dispatcher.on(RequestReturned)
async def request_returned(ctx: HandlerContext[RequestReturned]) -> None:
    """SO07: the step is exited, not finished, and goes back to the incomplete work of the
    worker who completed it."""
    m = ctx.message
    await _request_state(ctx, m.request_id, "returned")
    item = await store.load_item(ctx.conn, m.step_id)
    if item is None or item.state is WorkState.FINISHED:
        return
    back_to = await store.seat(ctx.conn, m.return_to_position_id)
    if back_to is not None and back_to.active:
        to = domain.Placement(WorkState.INCOMPLETE, "worker", back_to.position.position_id)
    else:  # AC16: never to a removed position; the step stays where it is
        to = replace(item.placement, state=WorkState.INCOMPLETE)
    after = await _move(
        ctx, item, to, "returned", note=m.note, detail={"request_id": str(m.request_id)}
    )
    _emit(
        ctx,
        WorkItemReturnedV2(
            person_id=item.person_id,
            items=[await _snapshot(ctx, after)],
            from_owners=[item.placement.owner],
            note=m.note,
            request_id=m.request_id,
        ),
    )


@dispatcher.on(StepFinished)
async def step_finished(ctx: HandlerContext[StepFinished]) -> None:
    """SO09: the step is locked and each next action becomes new incoming work for its
    assignee (SO06); AL13: triage's Trusted Assessment goes to the area's team (AL02). AL15: the
    form's content is kept for the person's Documents. SO10/AL11: a transfer to a Generic
    Support Officer prompts the Senior Officer to record them as Involved Worker. Ids derive
    from the step and the action, so a replay creates nothing."""
    m = ctx.message
    item = await store.load_item(ctx.conn, m.step_id)
    if item is not None and item.state is not WorkState.FINISHED:
        to = replace(item.placement, state=WorkState.FINISHED)
        after = await _move(
            ctx, item, to, "finished", detail={"by_position_id": m.finished_by_position_id}
        )
        _emit(
            ctx, WorkItemFinishedV2(person_id=item.person_id, items=[await _snapshot(ctx, after)])
        )
        await ctx.execute(
            pg_insert(store.documents)
            .values(
                work_item_id=m.step_id,
                person_id=m.person_id,
                step_type=m.step_type,
                sections=[s.model_dump(mode="json") for s in m.sections],
                finished_by_position_id=m.finished_by_position_id,
                finished_at=ctx.now,
            )
            .on_conflict_do_nothing()
        )
    await store.upsert_person(ctx.conn, m.person_id, None, None)
    names = await store.person_names(ctx.conn, [m.person_id])
    person = await store.person(ctx.conn, m.person_id)
    finisher = await store.seat(ctx.conn, m.finished_by_position_id)
    for action in m.next_actions:
        step_type = domain.next_action_step(action.action_type)
        if step_type is None:
            log.warning(
                "next action is no workflow step; nothing to allocate", action=action.action_type
            )
            continue
        assignee = (
            await store.seat(ctx.conn, action.assignee_id)
            if action.assignee_kind == "worker"
            else None
        )
        unit = await store.unit(
            ctx.conn, assignee.position.unit_id if assignee else action.assignee_id
        )
        try:
            placement = domain.placement_for_next_action(
                step_type, action.assignee_kind, (person or {}).get("area")
            ) or domain.next_action_placement(
                action.assignee_kind, action.assignee_id, assignee, (unit or {}).get("hopper_id")
            )
        except RuleViolation as violation:
            log.warning("next action not allocated", reason=violation.reason)
            continue
        work_item_id = uuid.uuid5(m.step_id, f"next-action:{action.action_id}")
        created = await _create_work_item(
            ctx,
            work_item_id=work_item_id,
            person_id=m.person_id,
            person_name=names.get(m.person_id),
            step_type=step_type,
            placement=placement,
            priority=action.priority,
            note=action.note,
        )
        rels = await store.person_relationships(ctx.conn, [m.person_id])
        officer = domain.involved_worker_prompt(
            action.action_type, assignee, rels.get(m.person_id, []), ctx.now.date()
        )
        if created and officer is not None:
            ctx.emit(
                InvolvedWorkerPrompted(
                    person_id=m.person_id,
                    person_name=names.get(m.person_id),
                    work_item_id=work_item_id,
                    worker_position_id=officer.position_id,
                    worker_user_id=officer.user_id,
                    senior_officer_position_id=m.finished_by_position_id,
                    senior_officer_user_id=finisher.position.user_id if finisher else None,
                )
            )

"""Access's message handlers: authorise, decide (domain), persist (store), emit. Commands come on
access.commands (keyed by user id, so one user's grants and removals apply in order); the
answers of the removal saga and the work ownership come from allocation.events."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from contracts import Topics
from contracts.access import (
    AbsenceAccessReviewed,
    AccessKind,
    ActionP30,
    AnswerEmergencyRequest,
    ChangePosition,
    CurrentPositionChanged,
    DirectoryLoaded,
    EmergencyAccessRequested,
    EmergencyAccessScheduled,
    LoadDirectory,
    LodgeP30,
    P30Actioned,
    P30Lodged,
    P30Refused,
    PositionGranted,
    PositionRemovalFailed,
    PositionRevoked,
    RefuseP30,
    RequestAbsenceAccess,
    RequestAccessRemoval,
    RequestEmergencyAbsenceAccess,
    RequestHierarchicalAccess,
    ReviewAbsenceAccess,
    UnitDefined,
    UserRegistered,
)
from contracts.allocation import PositionWorkReleased, PositionWorkReleaseFailed
from services.access import actions, domain, store, work_ownership
from services.access.domain import Held, Holdings
from services.shared.rules import RuleViolation
from services.shared.transaction import Dispatcher, HandlerContext

dispatcher = Dispatcher()
# Work ownership (AC18's views) is projected from every allocation event first, in its own
# module; the saga's handlers below then see the projection up to date.
work_ownership.register(dispatcher)
CONSUMES = [Topics.ACCESS_COMMANDS, Topics.ALLOCATION_EVENTS]
Ctx = HandlerContext[Any]


# --- Directory -----------------------------------------------------------------------------------


@dispatcher.on(LoadDirectory)
async def load_directory(ctx: HandlerContext[LoadDirectory]) -> None:
    """The directory's source of truth: units, users and primary positions, published for the
    other services' projections. TR03: decided whole (by a directory administrator or an HR
    feed, within AC01/AC02, no position moved to another user) before anything is written; each
    creation or change is audited in the same transaction."""
    cmd = ctx.message
    current = await store.directory(
        ctx.conn,
        [u.unit_id for u in cmd.units],
        [*(u.user_id for u in cmd.users), *(p.user_id for p in cmd.positions)],
        [p.position_id for p in cmd.positions],
    )
    plan = domain.plan_directory_load(
        ctx.roles, ctx.actor.user_id if ctx.actor else None, cmd, current
    )
    units, users, positions = plan.of("unit"), plan.of("user"), plan.of("position")
    for unit in cmd.units:
        if unit.unit_id in units:
            values = unit.model_dump(mode="json")
            await ctx.execute(store.upsert(store.units, "unit_id", values))
        ctx.emit(UnitDefined(**unit.model_dump(exclude={"functionally_unique"})))
    if units:
        store.forget_units(ctx.conn)
    for user in cmd.users:
        if user.user_id in users:
            await ctx.execute(store.upsert(store.users, "user_id", user.model_dump(mode="json")))
        ctx.emit(UserRegistered(**user.model_dump()))
    pos = store.positions
    for position in cmd.positions:
        change = positions.get(position.position_id)
        if change is not None and change.action == "created":
            await ctx.execute(
                store.upsert(
                    pos,
                    "position_id",
                    {
                        "position_id": position.position_id,
                        "user_id": position.user_id,
                        "unit_id": position.unit_id,
                        "role": position.role.value,
                        "kind": AccessKind.PRIMARY.value,
                        "state": "active",
                        "granted_at": ctx.now,
                    },
                )
            )
        elif change is not None:
            await ctx.execute(
                pos.update()
                .where(pos.c.position_id == position.position_id)
                .values(
                    unit_id=position.unit_id,
                    role=position.role.value,
                    kind=AccessKind.PRIMARY.value,
                    state="active",
                    removed_at=None,
                )
            )
        ctx.emit(
            PositionGranted(
                user_id=position.user_id,
                position_id=position.position_id,
                unit_id=position.unit_id,
                role=position.role,
                kind=AccessKind.PRIMARY,
            )
        )
    for change in plan.changes:
        ctx.stage(
            store.INSERT_DIRECTORY_CHANGE,
            {
                "change_id": uuid.uuid5(
                    ctx.envelope.message_id, f"{change.entity}:{change.entity_id}"
                ),
                "command_id": ctx.envelope.message_id,
                "changed_by": _actor_id(ctx),
                "authority": list(plan.authority),
                "changed_at": ctx.now,
                "entity": change.entity,
                "entity_id": change.entity_id,
                "action": change.action,
                "before": dict(change.before) if change.before is not None else None,
                "after": dict(change.after),
            },
        )
    ctx.emit(
        DirectoryLoaded(
            directory_id=cmd.directory_id,
            units=len(cmd.units),
            users=len(cmd.users),
            positions=len(cmd.positions),
        )
    )


# --- Shared steps ---------------------------------------------------------------------------


async def _subject(ctx: Ctx, user_id: str) -> Holdings:
    """The user the command is about, locked for the transaction (AC01/AC02 in-transaction)."""
    user = await store.holdings(ctx.conn, user_id, lock=True)
    if user is None:
        raise RuleViolation("AC01", f"unknown user {user_id!r}")
    return user


async def _actor(ctx: Ctx) -> Holdings | None:
    return await store.holdings(ctx.conn, ctx.actor.user_id if ctx.actor else None)


def _actor_id(ctx: Ctx) -> str:
    return ctx.actor.user_id if ctx.actor else ""


def _writer(ctx: Ctx) -> actions.Writer:
    return actions.Writer(
        conn=ctx.conn,
        now=ctx.now,
        seed=ctx.envelope.message_id,
        emit=ctx.emit,
        actor_id=_actor_id(ctx),
        staged=ctx.stage,
    )


async def _approver(ctx: Ctx, approver_id: str | None, user: Holdings) -> None:
    """AC20: the approver named on the P30 is a TL/SM other than the requester and the user."""
    domain.check_approver(
        await store.holdings(ctx.conn, approver_id),
        approver_id=approver_id,
        requester_id=_actor_id(ctx),
        user_id=user.user_id,
    )


async def _p30_for_team(
    ctx: Ctx, user: Holdings, p30_id: uuid.UUID, allowed: frozenset[str], rule: str
) -> Any:
    """The P30 the access team acts on, locked: only by the access team, never by its requester
    or approver, and only in a state that allows it (AC20, AC21)."""
    record = await store.p30(ctx.conn, p30_id, lock=True)
    if record is None or record.user_id != user.user_id:
        raise RuleViolation(rule, f"no P30 {p30_id} for {user.user_id}")
    domain.check_actioner(
        await _actor(ctx),
        await store.all_units(ctx.conn),
        actor_id=_actor_id(ctx),
        requested_by=record.requested_by,
        approved_by=record.approved_by,
        user_id=user.user_id,
        rule=rule,
    )
    domain.check_p30_state(record.state, allowed, rule)
    return record


# --- Absence-related access (AC06-AC11, AC20, AC21) ---------------------------------------------


@dispatcher.on(RequestAbsenceAccess)
async def request_absence_access(ctx: HandlerContext[RequestAbsenceAccess]) -> None:
    """AC20: the TL/SM submits the P30; the access team actions it (ActionP30)."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    units = await store.all_units(ctx.conn)
    domain.plan_absence_grant(
        await _actor(ctx),
        user,
        units,
        cmd.unit_ids,
        discussion_held=cmd.discussion_held,
        emergency=False,
    )
    await _approver(ctx, cmd.discussed_with, user)
    await actions.record_p30(
        _writer(ctx),
        p30_id=uuid.uuid5(ctx.envelope.message_id, "p30"),
        user_id=user.user_id,
        action="set-up",
        kind=AccessKind.ABSENCE,
        unit_ids=list(cmd.unit_ids),
        requested_by=_actor_id(ctx),
        approved_by=cmd.discussed_with,
        reason=cmd.reason,
        discussion_held=cmd.discussion_held,
        discussed_with=cmd.discussed_with,
        state="submitted",
        emergency=False,
        deadline=None,
        warnings=[],
    )


@dispatcher.on(RequestEmergencyAbsenceAccess)
async def request_emergency_absence_access(
    ctx: HandlerContext[RequestEmergencyAbsenceAccess],
) -> None:
    """AC11/AC21: accepted only when nobody but the absent TL/SM holds their unit; the access
    team answers it (AnswerEmergencyRequest)."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    units = await store.all_units(ctx.conn)
    domain.plan_absence_grant(
        await _actor(ctx), user, units, [cmd.unit_id], discussion_held=False, emergency=True
    )
    domain.check_emergency_need(
        user.user_id,
        await store.holdings(ctx.conn, cmd.absent_user_id),
        cmd.unit_id,
        await store.unit_holders(ctx.conn, cmd.unit_id),
    )
    w = _writer(ctx)
    p30_id = await actions.record_p30(
        w,
        p30_id=uuid.uuid5(ctx.envelope.message_id, "p30"),
        user_id=user.user_id,
        action="set-up",
        kind=AccessKind.ABSENCE,
        unit_ids=[cmd.unit_id],
        requested_by=_actor_id(ctx),
        approved_by=None,
        reason=cmd.reason,
        discussion_held=False,
        discussed_with=None,
        state="requested",
        emergency=True,
        deadline=None,
        warnings=[],
        absent_user_id=cmd.absent_user_id,
    )
    ctx.emit(
        EmergencyAccessRequested(
            p30_id=p30_id,
            user_id=user.user_id,
            unit_id=cmd.unit_id,
            absent_user_id=cmd.absent_user_id,
            requested_by=_actor_id(ctx),
        )
    )


@dispatcher.on(AnswerEmergencyRequest)
async def answer_emergency_request(ctx: HandlerContext[AnswerEmergencyRequest]) -> None:
    """AC21: the access team grants at once (this command, this transaction) or answers with
    its time scale; the access scheduler grants it then. Either way the requester is told."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    record = await _p30_for_team(ctx, user, cmd.p30_id, domain.ANSWERABLE_STATES, "AC21")
    (unit_id,) = record.unit_ids
    w = _writer(ctx)
    if not domain.grant_now(cmd.grant_at, ctx.now):
        await actions.update_p30(
            w,
            record.p30_id,
            state="scheduled",
            scheduled_for=cmd.grant_at,
            actioned_by=_actor_id(ctx),
        )
        assert cmd.grant_at is not None
        ctx.emit(
            EmergencyAccessScheduled(
                p30_id=record.p30_id,
                user_id=user.user_id,
                unit_id=unit_id,
                requested_by=record.requested_by,
                answered_by=_actor_id(ctx),
                grant_at=cmd.grant_at,
            )
        )
        return
    # Still nobody with access, and still within the limits, now that it is granted.
    domain.check_emergency_need(
        user.user_id,
        await store.holdings(ctx.conn, record.absent_user_id),
        unit_id,
        await store.unit_holders(ctx.conn, unit_id),
    )
    domain.recheck_grant(user, await store.all_units(ctx.conn), [unit_id])
    await actions.grant_emergency(w, user, record, actioned_by=_actor_id(ctx))


@dispatcher.on(LodgeP30)
async def lodge_p30(ctx: HandlerContext[LodgeP30]) -> None:
    """AC11: the completed P30 closes the outstanding emergency record; it names its approver
    (the case-owning TL it was discussed with, AC20)."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    record = await store.p30(ctx.conn, cmd.p30_id, lock=True)
    if record is None or record.user_id != user.user_id:
        raise RuleViolation("AC11", f"no emergency P30 {cmd.p30_id} for {user.user_id}")
    domain.check_primary_manager(await _actor(ctx), user, await store.all_units(ctx.conn), "AC08")
    domain.check_lodge(record.state, record.emergency, cmd.discussion_held)
    await _approver(ctx, cmd.discussed_with, user)
    p = store.p30s
    await ctx.execute(
        p.update()
        .where(p.c.p30_id == cmd.p30_id)
        .values(
            state="complete",
            approved_by=cmd.discussed_with,
            discussion_held=True,
            discussed_with=cmd.discussed_with,
            reason=cmd.reason or record.reason,
            closed_at=ctx.now,
            closed_by=_actor_id(ctx),
        )
    )
    ctx.emit(
        P30Lodged(
            p30_id=cmd.p30_id,
            user_id=user.user_id,
            lodged_by=_actor_id(ctx),
            lodged_at=ctx.now,
            late=record.deadline is not None and ctx.now > record.deadline,
        )
    )


# --- Hierarchical access (AC12-AC15) -------------------------------------------------------------


@dispatcher.on(RequestHierarchicalAccess)
async def request_hierarchical_access(ctx: HandlerContext[RequestHierarchicalAccess]) -> None:
    """AC20: the lower segment's TL/SM submits the P30, approved by the higher segment's TL/SM
    it was agreed with; the access team actions it."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    units = await store.all_units(ctx.conn)
    plan = domain.plan_hierarchical_grant(
        await _actor(ctx),
        await store.holdings(ctx.conn, cmd.agreed_with),
        user,
        units,
        cmd.unit_ids,
    )
    await _approver(ctx, cmd.agreed_with, user)
    await actions.record_p30(
        _writer(ctx),
        p30_id=uuid.uuid5(ctx.envelope.message_id, "p30"),
        user_id=user.user_id,
        action="set-up",
        kind=AccessKind.HIERARCHICAL,
        unit_ids=[plan.unit_id],
        requested_by=_actor_id(ctx),
        approved_by=cmd.agreed_with,
        reason=cmd.reason,
        discussion_held=True,
        discussed_with=cmd.agreed_with,
        state="submitted",
        emergency=False,
        deadline=None,
        warnings=list(plan.warnings),
    )


# --- The access team actions or refuses a P30 (AC20) ---------------------------------------------


@dispatcher.on(ActionP30)
async def action_p30(ctx: HandlerContext[ActionP30]) -> None:
    """AC20: the grant or removal the P30 asks for happens now, by the access team; a removal
    goes through the release of work (AC16) when no other record backs the position."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    record = await _p30_for_team(ctx, user, cmd.p30_id, domain.ACTIONABLE_STATES, "AC20")
    kind = AccessKind(record.kind)
    w = _writer(ctx)
    if record.action == "set-up":
        domain.recheck_grant(user, await store.all_units(ctx.conn), record.unit_ids)
        state = "complete"
    else:
        grant = await store.grant(ctx.conn, record.grant_id)
        if grant is None or grant["state"] != "active":
            raise RuleViolation("AC04", f"the record this P30 removes ({record.grant_id}) ended")
        release = domain.removal_on_action(user, record.position_id)
        state = "pending" if release else "complete"
    await actions.update_p30(
        w,
        record.p30_id,
        state=state,
        actioned_by=_actor_id(ctx),
        actioned_at=ctx.now,
        closed_at=ctx.now if state == "complete" else None,
    )
    ctx.emit(
        P30Actioned(
            p30_id=record.p30_id,
            user_id=user.user_id,
            action=record.action,
            kind=kind,
            unit_ids=record.unit_ids,
            requested_by=record.requested_by,
            approved_by=record.approved_by,
            actioned_by=_actor_id(ctx),
            actioned_at=ctx.now,
        )
    )
    if record.action == "set-up":
        for unit_id in record.unit_ids:
            await actions.grant(
                w, user, unit_id, kind, record.p30_id, warnings=tuple(record.warnings)
            )
        return
    held = user.position(record.position_id)
    assert held is not None  # removal_on_action checked it
    await actions.carry_out_removal(
        w,
        user.user_id,
        held,
        record.grant_id,
        record.p30_id,
        record.successor_position_id,
        release=state == "pending",
    )


@dispatcher.on(RefuseP30)
async def refuse_p30(ctx: HandlerContext[RefuseP30]) -> None:
    """AC20: refused by the access team with its reason; nothing is granted or removed."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    record = await _p30_for_team(ctx, user, cmd.p30_id, domain.REFUSABLE_STATES, "AC20")
    await actions.update_p30(
        _writer(ctx),
        record.p30_id,
        state="refused",
        refused_reason=cmd.reason,
        actioned_by=_actor_id(ctx),
        actioned_at=ctx.now,
        closed_at=ctx.now,
    )
    ctx.emit(
        P30Refused(
            p30_id=record.p30_id,
            user_id=user.user_id,
            requested_by=record.requested_by,
            refused_by=_actor_id(ctx),
            reason=cmd.reason,
        )
    )


# --- Removal (AC16 saga), reviews (AC09) ---------------------------------------------------------


async def _submit_removal(
    ctx: Ctx,
    user: Holdings,
    held: Held,
    grant: dict[str, Any],
    *,
    reason: str,
    discussion_held: bool,
    discussed_with: str | None,
    successor_position_id: str | None,
    via_review: bool = False,
) -> None:
    """AC08/AC15 decide who may ask; AC20: the removal P30 is submitted for the access team,
    who action it (a failed release of work is asked for again at once, under its P30)."""
    kind = AccessKind(grant["kind"])
    set_up = await store.p30(ctx.conn, grant["p30_id"])
    plan = domain.plan_removal(
        await _actor(ctx),
        user,
        await store.all_units(ctx.conn),
        held.position_id,
        kind,
        set_up_by_line_manager=await store.line_manager(
            ctx.conn, set_up.requested_by if set_up else None
        ),
        discussion_held=discussion_held,
        via_review=via_review,
    )
    if plan.retry:
        await _retry_release(ctx, user, held, successor_position_id)
        return
    if discussed_with:
        await _approver(ctx, discussed_with, user)
    await actions.record_p30(
        _writer(ctx),
        p30_id=uuid.uuid5(ctx.envelope.message_id, "p30"),
        user_id=user.user_id,
        action="removal",
        kind=kind,
        unit_ids=[held.unit_id],
        requested_by=_actor_id(ctx),
        approved_by=discussed_with,
        reason=reason,
        discussion_held=discussion_held,
        discussed_with=discussed_with,
        state="submitted",
        emergency=False,
        deadline=None,
        warnings=[],
        position_id=held.position_id,
        grant_id=grant["grant_id"],
        successor_position_id=successor_position_id,
    )


async def _retry_release(
    ctx: Ctx, user: Holdings, held: Held, successor_position_id: str | None
) -> None:
    """AC16: the pending removal's release failed; ask allocation again under the same P30."""
    failed = await store.failed_release(ctx.conn, held.position_id)
    if failed is None:
        raise RuleViolation("AC16", f"no failed release to retry for {held.position_id}")
    p = store.p30s
    await ctx.execute(p.update().where(p.c.p30_id == failed.p30_id).values(failure_reason=None))
    await actions.request_release(
        _writer(ctx), user.user_id, held, failed.grant_id, failed.p30_id, successor_position_id
    )


@dispatcher.on(RequestAccessRemoval)
async def request_access_removal(ctx: HandlerContext[RequestAccessRemoval]) -> None:
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    held = domain.secondary_position(user, cmd.position_id)
    grant = await store.active_grant(ctx.conn, cmd.position_id, cmd.kind)
    if grant is None or grant["user_id"] != user.user_id:
        raise RuleViolation(
            "AC04", f"no active {cmd.kind.value} record backs {cmd.position_id} for {cmd.user_id}"
        )
    await _submit_removal(
        ctx,
        user,
        held,
        grant,
        reason=cmd.reason,
        discussion_held=cmd.discussion_held,
        discussed_with=cmd.discussed_with,
        successor_position_id=cmd.successor_position_id,
    )


@dispatcher.on(ReviewAbsenceAccess)
async def review_absence_access(ctx: HandlerContext[ReviewAbsenceAccess]) -> None:
    """AC09: confirm (due again in six months) or remove (a removal P30 for the access team,
    then the AC16 saga)."""
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    grant = await store.grant(ctx.conn, cmd.grant_id)
    if grant is None or grant["user_id"] != user.user_id or grant["state"] != "active":
        raise RuleViolation("AC09", f"no active absence-related record {cmd.grant_id}")
    held = user.position(grant["position_id"])
    assert held is not None
    actor = await _actor(ctx)
    domain.check_review(actor, user, await store.all_units(ctx.conn), AccessKind(grant["kind"]))
    if not cmd.confirm:
        await _submit_removal(
            ctx,
            user,
            held,
            grant,
            reason=cmd.reason or "removed at review",
            discussion_held=True,
            discussed_with=None,
            successor_position_id=cmd.successor_position_id,
            via_review=True,
        )
    next_due = domain.review_due(ctx.now) if cmd.confirm else None
    if cmd.confirm:
        g = store.grants
        await ctx.execute(
            g.update()
            .where(g.c.grant_id == cmd.grant_id)
            .values(review_due_at=next_due, review_due_flagged=False, review_overdue_flagged=False)
        )
    ctx.emit(
        AbsenceAccessReviewed(
            grant_id=cmd.grant_id,
            user_id=user.user_id,
            position_id=held.position_id,
            reviewed_by=_actor_id(ctx),
            confirmed=cmd.confirm,
            next_review_due_at=next_due,
        )
    )


@dispatcher.on(PositionWorkReleased)
async def position_work_released(ctx: HandlerContext[PositionWorkReleased]) -> None:
    """AC16 saga, last step: allocation moved the work; now the access goes, with its P30."""
    event = ctx.message
    release = await store.release(ctx.conn, event.release_id)
    if release is None or release.state != "requested":
        return  # not ours, or already answered (the saga completes exactly once)
    r, pos, p = store.releases, store.positions, store.p30s
    await ctx.execute(
        r.update()
        .where(r.c.release_id == event.release_id)
        .values(
            state="released",
            reason=None,
            moved=[i.model_dump(mode="json") for i in event.moved],
            completed_at=ctx.now,
        )
    )
    await actions.close_grant(_writer(ctx), release.grant_id, release.p30_id)
    await ctx.execute(
        pos.update()
        .where(pos.c.position_id == release.position_id)
        .values(state="removed", removed_at=ctx.now)
    )
    await ctx.execute(
        p.update()
        .where(p.c.p30_id == release.p30_id)
        .values(state="complete", failure_reason=None, closed_at=ctx.now)
    )
    u = store.users
    await ctx.execute(
        u.update()
        .where(u.c.user_id == release.user_id, u.c.current_position_id == release.position_id)
        .values(current_position_id=None)
    )
    ctx.emit(
        PositionRevoked(
            user_id=release.user_id, position_id=release.position_id, p30_id=release.p30_id
        )
    )


@dispatcher.on(PositionWorkReleaseFailed)
async def position_work_release_failed(ctx: HandlerContext[PositionWorkReleaseFailed]) -> None:
    """AC16: the release failed; the removal stays pending with the reason, the access stays."""
    event = ctx.message
    release = await store.release(ctx.conn, event.release_id)
    if release is None or release.state != "requested":
        return
    r, p, pos = store.releases, store.p30s, store.positions
    await ctx.execute(
        r.update()
        .where(r.c.release_id == event.release_id)
        .values(state="failed", reason=event.reason, completed_at=ctx.now)
    )
    await ctx.execute(
        p.update().where(p.c.p30_id == release.p30_id).values(failure_reason=event.reason)
    )
    await ctx.execute(
        pos.update().where(pos.c.position_id == release.position_id).values(release_failed=True)
    )
    ctx.emit(
        PositionRemovalFailed(
            release_id=event.release_id,
            user_id=event.user_id,
            position_id=event.position_id,
            reason=event.reason,
        )
    )


# --- Current position (AC17) ---------------------------------------------------------------------


@dispatcher.on(ChangePosition)
async def change_position(ctx: HandlerContext[ChangePosition]) -> None:
    cmd = ctx.message
    user = await _subject(ctx, cmd.user_id)
    domain.check_change_position(_actor_id(ctx), user, cmd.position_id)
    u = store.users
    previous = await ctx.conn.scalar(
        sa.select(u.c.current_position_id).where(u.c.user_id == user.user_id)
    )
    await ctx.execute(
        u.update().where(u.c.user_id == user.user_id).values(current_position_id=cmd.position_id)
    )
    ctx.emit(
        CurrentPositionChanged(
            user_id=user.user_id,
            position_id=cmd.position_id,
            previous_position_id=previous or (user.primary.position_id if user.primary else None),
        )
    )

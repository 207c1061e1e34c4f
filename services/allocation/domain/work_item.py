"""The work item: the aggregate whose methods carry out the allocation procedure.

Each method decides by the rules (rules.py, which raise `RuleViolation` naming the rule) and
returns a `Change`: the item after (its new placement, priority and who holds it), the history
entry (AL12), the note written against it, and the version 2 event that announces it. Nothing
here reads or writes: the repository loads an item with the directory facts its decisions need
(who holds it, the unit that owns it) and saves a change in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from contracts import Actor, Event
from contracts.allocation import (
    Owner,
    Priority,
    ServiceRequestCompletedV2,
    StepType,
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
from services.allocation.domain import rules
from services.allocation.domain.rules import INBOX_TEAMS, Placement
from services.shared.positions import Position


def owner_text(kind: str, owner_id: str) -> str:
    """How an owner is written in the work history (AL12)."""
    return f"{kind}:{owner_id}"


def unit_of(placement: Placement, holder: Position | None, unit: str | None = None) -> str | None:
    """The team or segment that owns work so placed (AL10): a team's queue is the team's, an
    inbox its team's (AL03), a worker's work their position's unit, a hopper its unit's."""
    if placement.owner_kind == "team":
        return placement.owner_id
    if placement.owner_kind == "inbox":
        return INBOX_TEAMS.get(placement.owner_id)
    if placement.owner_kind == "worker":
        return holder.unit_id if holder is not None else None
    return unit


@dataclass(frozen=True)
class History:
    """AL12: one entry of the person's work history: what, from whom to whom, and the rest."""

    change: str
    from_owner: str | None
    to_owner: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """What one decision did to one item. `note` is written against the item ("" for none);
    `event` announces the change (the bulk assignment announces its items together instead)."""

    before: WorkItem | None
    after: WorkItem
    history: History
    event: Event
    note: str = ""

    @property
    def state_changed(self) -> bool:
        return self.before is None or self.before.state is not self.after.state

    @property
    def priority_changed(self) -> bool:
        return self.before is None or self.before.priority != self.after.priority


@dataclass(frozen=True)
class WorkItem:
    """A unit of work of one person, where it sits and who holds it. `holder` is the position
    holding it when `owner_kind` is "worker" (as the directory knows it, active or not) and
    `owning_unit` the team or segment whose work it is (AL10)."""

    work_item_id: uuid.UUID
    person_id: str
    step_type: StepType
    state: WorkState
    owner_kind: str
    owner_id: str
    priority: str
    person_name: str | None = None
    due_at: datetime | None = None  # DL01
    holder: Position | None = None
    owning_unit: str | None = None

    @property
    def placement(self) -> Placement:
        return Placement(self.state, self.owner_kind, self.owner_id)

    @property
    def owner(self) -> Owner:
        return self.placement.owner

    def snapshot(self, actor: Actor | None) -> WorkItemSnapshot:
        return WorkItemSnapshot(
            work_item_id=self.work_item_id,
            person_id=self.person_id,
            person_name=self.person_name,
            step_type=self.step_type,
            state=self.state,
            owner_kind=self.owner_kind,
            owner_id=self.owner_id,
            owner_user_id=self.holder.user_id if self.holder is not None else None,
            owner_unit_id=self.owning_unit,
            priority=self.priority,
            acting_user_id=actor.user_id if actor else None,
            acting_position_id=actor.position_id if actor else None,
            due_at=self.due_at,
        )

    # --- creating (AL01-AL03, AC19, SO09) -----------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        work_item_id: uuid.UUID,
        person_id: str,
        person_name: str | None,
        step_type: StepType,
        placement: Placement,
        due_at: datetime | None,
        now: datetime,
        actor: Actor | None,
        priority: str = rules.DEFAULT_PRIORITY,
        note: str = "",
        holder: Position | None = None,
        unit: str | None = None,
    ) -> Change:
        """A new item placed as the rules say (placement_for_new_step, intake, next actions)."""
        item = cls(
            work_item_id=work_item_id,
            person_id=person_id,
            step_type=step_type,
            state=placement.state,
            owner_kind=placement.owner_kind,
            owner_id=placement.owner_id,
            priority=priority,
            person_name=person_name,
            due_at=due_at,
            holder=holder if placement.owner_kind == "worker" else None,
            owning_unit=unit_of(placement, holder, unit),
        )
        detail: dict[str, Any] = {"step_type": step_type.value, **({"note": note} if note else {})}
        history = History("created", None, owner_text(*_owner(placement)), detail)
        event = WorkItemCreatedV2(
            person_id=person_id, items=[item.snapshot(actor)], created_at=now, note=note
        )
        return Change(None, item, history, event, note)

    # --- the procedure --------------------------------------------------------------------

    def _to(
        self,
        placement: Placement,
        change: str,
        *,
        holder: Position | None = None,
        unit: str | None = None,
        priority: str | None = None,
        note: str = "",
        detail: dict[str, Any] | None = None,
    ) -> tuple[WorkItem, History]:
        """The item at its new placement (and priority), with its history entry (AL12)."""
        same_owner = placement.owner == self.owner
        after = replace(
            self,
            state=placement.state,
            owner_kind=placement.owner_kind,
            owner_id=placement.owner_id,
            priority=priority or self.priority,
            holder=self.holder if same_owner and holder is None else holder,
            owning_unit=self.owning_unit if same_owner else unit_of(placement, holder, unit),
        )
        entry: dict[str, Any] = {"note": note} if note else {}
        if priority and priority != self.priority:
            entry.update(priority_from=self.priority, priority_to=priority)
        history = History(
            change,
            owner_text(*_owner(self.placement)),
            owner_text(*_owner(placement)),
            {**entry, **(detail or {})},
        )
        return after, history

    def assign(
        self,
        target: Position,
        *,
        by: Position,
        actor: Actor | None,
        involved: bool,
        note: str = "",
        priority: Priority | None = None,
        from_record: bool = False,
        started_only: bool = False,
        bulk: bool = False,
    ) -> Change:
        """AL05-AL07, AL09 (with AC19 for a team leader acting with absence-related access):
        "pass to worker". `by` is the acting position AL10 authorised; `bulk`: one of the items
        of a bulk assignment (AL08), which its history says."""
        rules.check_absence_target(by, target)
        to, new_priority = rules.assignment(
            self,
            target,
            involved=involved,
            priority=priority,
            from_record=from_record,
            started_only=started_only,
        )
        reassigned = self.state is WorkState.INCOMPLETE
        after, history = self._to(
            to,
            "reassigned" if reassigned else "assigned",
            holder=target,
            priority=new_priority,
            note=note,
            detail={"bulk": True} if bulk else {"by_position_id": by.position_id},
        )
        event = WorkItemAssignedV2(
            person_id=self.person_id,
            items=[after.snapshot(actor)],
            from_owners=[self.owner],
            note=note,
            reassigned=reassigned,
            previous_priority=self.priority if new_priority != self.priority else None,
        )
        return Change(self, after, history, event, note)

    def start(self, by: Position | None, area: str | None, actor: Actor | None) -> Change:
        """AL03: incoming -> incomplete (a team's Case Monitoring into the area's inbox)."""
        to = rules.start(self, by, self.owning_unit, area)
        after, history = self._to(to, "started", holder=by if to.owner_kind == "worker" else None)
        event = WorkItemStartedV2(
            person_id=self.person_id, items=[after.snapshot(actor)], from_owners=[self.owner]
        )
        return Change(self, after, history, event)

    def resume(self, by: Position | None, *, involved: bool, actor: Actor | None) -> Change:
        """AL13, AL11: a Generic Support Officer resumes Case Monitoring."""
        to = rules.resume(self, by, involved=involved)
        after, history = self._to(to, "resumed", holder=by)
        event = WorkItemResumedV2(
            person_id=self.person_id, items=[after.snapshot(actor)], from_owners=[self.owner]
        )
        return Change(self, after, history, event)

    def complete(self, by: Position | None, actor: Actor | None) -> Change:
        """AC23: a service request completed from My service requests of its position."""
        to = rules.complete_service_request(self, by)
        after, history = self._to(to, "completed")
        event = ServiceRequestCompletedV2(
            person_id=self.person_id, items=[after.snapshot(actor)], from_owners=[self.owner]
        )
        return Change(self, after, history, event)

    def change_priority(self, priority: Priority, actor: Actor | None) -> Change:
        """AL07 (AL10 is checked first, by the handler's authorisation)."""
        new = rules.new_priority(self, priority)
        after, history = self._to(self.placement, "priority changed", priority=new)
        event = WorkItemPriorityChangedV2(
            person_id=self.person_id, items=[after.snapshot(actor)], previous_priority=self.priority
        )
        return Change(self, after, history, event)

    def move(
        self,
        to: Placement,
        rule: str,
        *,
        actor: Actor | None,
        holder: Position | None = None,
        unit: str | None = None,
        note: str = "",
    ) -> Change:
        """AC07, AC19, AC16: moved to an owner nobody chose as its assignee; started work stays
        started (AL09), new work new."""
        kept = rules.moved(self, to)
        after, history = self._to(kept, "moved", holder=holder, unit=unit, detail={"rule": rule})
        if note:
            history = replace(history, detail={"rule": rule, "note": note})
        event = WorkItemMovedV2(
            person_id=self.person_id,
            items=[after.snapshot(actor)],
            from_owners=[self.owner],
            rule=rule,
            note=note,
        )
        return Change(self, after, history, event)

    def finish(self, by_position_id: str | None, actor: Actor | None) -> Change | None:
        """SO09: the step is locked where it is; None when it is finished already."""
        if self.state is WorkState.FINISHED:
            return None
        to = replace(self.placement, state=WorkState.FINISHED)
        after, history = self._to(to, "finished", detail={"by_position_id": by_position_id})
        event = WorkItemFinishedV2(person_id=self.person_id, items=[after.snapshot(actor)])
        return Change(self, after, history, event)

    def return_to(
        self,
        worker: Position | None,
        *,
        note: str,
        request_id: uuid.UUID,
        actor: Actor | None,
    ) -> Change | None:
        """SO07: the step goes back to the incomplete work of the worker who completed it. AC16:
        never to a removed position; the step then stays where it is, incomplete. None when it
        is finished already."""
        if self.state is WorkState.FINISHED:
            return None
        if worker is not None and worker.active:
            to = Placement(WorkState.INCOMPLETE, "worker", worker.position_id)
        else:
            to, worker = replace(self.placement, state=WorkState.INCOMPLETE), None
        after, history = self._to(
            to, "returned", holder=worker, note=note, detail={"request_id": str(request_id)}
        )
        event = WorkItemReturnedV2(
            person_id=self.person_id,
            items=[after.snapshot(actor)],
            from_owners=[self.owner],
            note=note,
            request_id=request_id,
        )
        return Change(self, after, history, event, note)


def _owner(placement: Placement) -> tuple[str, str]:
    return placement.owner_kind, placement.owner_id

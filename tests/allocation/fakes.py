"""Dict-backed fakes of allocation's repositories, for handler unit tests without I/O (the
context's connection is `NoDatabase`, which fails any statement)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from contracts import Actor
from contracts.allocation import WorkState
from services.allocation import domain
from services.allocation.domain import Change, Relationship, Unit, Units, WorkItem
from services.allocation.repository import Person, Repositories
from services.shared.positions import Position


@dataclass
class FakeDirectory:
    positions: dict[str, Position] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)

    async def acting(self, actor: Actor | None) -> Position | None:
        held = self.positions.get(actor.position_id or "") if actor else None
        ok = held is not None and actor is not None and held.user_id == actor.user_id
        return held if ok and held is not None and held.active else None

    async def position(self, position_id: str | None) -> Position | None:
        return self.positions.get(position_id or "")

    async def hierarchy(self) -> Units:
        return self.units


@dataclass
class FakeWorkItems:
    directory: FakeDirectory
    items: dict[uuid.UUID, WorkItem] = field(default_factory=dict)
    history: list[tuple[uuid.UUID, str, dict[str, Any]]] = field(default_factory=list)
    notes: dict[uuid.UUID, list[str]] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def _facts(self, item: WorkItem) -> WorkItem:
        holder = (
            self.directory.positions.get(item.owner_id) if item.owner_kind == "worker" else None
        )
        hopper_unit = next(
            (u.unit_id for u in self.directory.units.values() if u.hopper_id == item.owner_id),
            None,
        )
        unit = domain.unit_of(item.placement, holder, hopper_unit)
        return replace(item, holder=holder, owning_unit=unit)

    async def get(self, work_item_id: uuid.UUID, *, lock: bool = True) -> WorkItem | None:
        found = self.items.get(work_item_id)
        return self._facts(found) if found else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WorkItem]:
        return {i: self._facts(self.items[i]) for i in ids if i in self.items}

    async def held_by(self, position_id: str) -> list[WorkItem]:
        return [
            self._facts(i)
            for i in self.items.values()
            if (i.owner_kind, i.owner_id) == ("worker", position_id)
            and i.state is not WorkState.FINISHED
        ]

    def _record(self, change: Change) -> None:
        item = change.after
        self.items[item.work_item_id] = replace(item, holder=None, owning_unit=None)
        self.history.append((item.work_item_id, change.history.change, change.history.detail))
        if change.note:
            self.notes.setdefault(item.work_item_id, []).append(change.note)

    async def add(self, change: Change, *, by: str | None, new_by_construction: bool) -> bool:
        if change.after.work_item_id in self.items:
            return False
        self._record(change)
        return True

    async def save(self, changes: Sequence[Change], *, by: str | None) -> None:
        for change in changes:
            self._record(change)

    async def keep_document(self, row: dict[str, Any]) -> None:
        self.documents.append(row)


@dataclass
class FakePeople:
    people: dict[str, Person] = field(default_factory=dict)
    rels: dict[str, list[Relationship]] = field(default_factory=dict)
    relationship_rows: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    requests: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)

    async def get(self, person_id: str) -> Person | None:
        return self.people.get(person_id)

    async def names(self, person_ids: Iterable[str]) -> dict[str, str]:
        return {p: n for p in person_ids if (n := getattr(self.people.get(p), "name", None))}

    async def note(
        self, person_id: str, name: str | None, area: str | None, *, staged: bool = False
    ) -> None:
        known = self.people.get(person_id)
        self.people[person_id] = Person(
            person_id,
            name or (known.name if known else person_id),
            area or (known.area if known else None),
        )

    async def relationships(self, person_ids: Iterable[str]) -> dict[str, list[Relationship]]:
        return {p: self.rels[p] for p in person_ids if p in self.rels}

    async def relationship(
        self, relationship_id: uuid.UUID, person_id: str | None = None
    ) -> dict[str, Any] | None:
        row = self.relationship_rows.get(relationship_id)
        return dict(row) if row and person_id in (None, row["person_id"]) else None

    async def add_relationship(self, row: dict[str, Any]) -> None:
        self.relationship_rows[row["relationship_id"]] = dict(row)

    async def amend_relationship(
        self, relationship_id: uuid.UUID, from_date: date, end_date: date | None
    ) -> None:
        self.relationship_rows[relationship_id].update(from_date=from_date, end_date=end_date)

    async def add_request(self, row: dict[str, Any]) -> bool:
        if row["request_id"] in self.requests:
            return False
        self.requests[row["request_id"]] = dict(row)
        return True

    async def request_state(
        self, request_id: uuid.UUID, state: str, at: datetime
    ) -> dict[str, Any] | None:
        row = self.requests.get(request_id)
        if row is not None:
            row.update(state=state, updated_at=at)
        return row


def fake_repositories(
    positions: Iterable[Position] = (), units: Iterable[Unit] = ()
) -> tuple[Repositories, FakeWorkItems, FakePeople]:
    directory = FakeDirectory({p.position_id: p for p in positions}, {u.unit_id: u for u in units})
    items, people = FakeWorkItems(directory), FakePeople()
    return Repositories(items, directory, people), items, people

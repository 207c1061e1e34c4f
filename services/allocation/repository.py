"""Allocation's repositories: they load work items with the directory facts their decisions
need (who holds an item, the unit that owns it; the acting position for AL10) and write a
decided `Change` in one place: the item's row, its history entry (AL12) and its note, built once
here for every handler.

`Repositories.sql(tx)` is what the service runs on; handler unit tests give the handlers fakes
with the same methods (tests/allocation/fakes.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import Actor
from services.allocation import store
from services.allocation.domain import Change, Placement, Relationship, Unit, Units, WorkItem
from services.shared.positions import Position
from services.shared.transaction import Transaction


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str | None
    area: str | None


class WorkItemRepository(Protocol):
    async def get(self, work_item_id: uuid.UUID, *, lock: bool = True) -> WorkItem | None: ...

    async def get_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WorkItem]: ...

    async def held_by(self, position_id: str) -> list[WorkItem]: ...

    async def add(self, change: Change, *, by: str | None, new_by_construction: bool) -> bool: ...

    async def save(self, changes: Sequence[Change], *, by: str | None) -> None: ...

    async def keep_document(self, row: dict[str, Any]) -> None: ...


class DirectoryFacts(Protocol):
    """The directory projection as allocation's decisions read it."""

    async def acting(self, actor: Actor | None) -> Position | None: ...

    async def position(self, position_id: str | None) -> Position | None: ...

    async def hierarchy(self) -> Units: ...


class PeopleRepository(Protocol):
    """The people work is about, their worker relationships (AL05) and incoming requests."""

    async def get(self, person_id: str) -> Person | None: ...

    async def names(self, person_ids: Iterable[str]) -> dict[str, str]: ...

    async def note(
        self, person_id: str, name: str | None, area: str | None, *, staged: bool = False
    ) -> None: ...

    async def relationships(self, person_ids: Iterable[str]) -> dict[str, list[Relationship]]: ...

    async def relationship(
        self, relationship_id: uuid.UUID, person_id: str | None = None
    ) -> dict[str, Any] | None: ...

    async def add_relationship(self, row: dict[str, Any]) -> None: ...

    async def amend_relationship(
        self, relationship_id: uuid.UUID, from_date: date, end_date: date | None
    ) -> None: ...

    async def add_request(self, row: dict[str, Any]) -> bool: ...

    async def request_state(
        self, request_id: uuid.UUID, state: str, at: datetime
    ) -> dict[str, Any] | None: ...


@dataclass
class Repositories:
    items: WorkItemRepository
    directory: DirectoryFacts
    people: PeopleRepository

    @classmethod
    def sql(cls, tx: Transaction) -> Repositories:
        facts = SqlDirectory(tx)
        return cls(SqlWorkItems(tx, facts), facts, SqlPeople(tx))

    async def unit(self, unit_id: str | None) -> Unit | None:
        return (await self.directory.hierarchy()).get(unit_id or "")


class SqlDirectory:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def acting(self, actor: Actor | None) -> Position | None:
        return await store.directory.acting_position(self.tx.conn, actor)

    async def position(self, position_id: str | None) -> Position | None:
        return await store.position(self.tx.conn, position_id)

    async def hierarchy(self) -> Units:
        return await store.hierarchy(self.tx.conn)


class SqlWorkItems:
    def __init__(self, tx: Transaction, directory: SqlDirectory) -> None:
        self.tx = tx
        self.directory = directory

    async def _with_facts(self, item: WorkItem) -> WorkItem:
        holder = (
            await self.directory.position(item.owner_id) if item.owner_kind == "worker" else None
        )
        unit = await store.owning_unit(self.tx.conn, item.owner_kind, item.owner_id)
        return replace(item, holder=holder, owning_unit=unit)

    async def get(self, work_item_id: uuid.UUID, *, lock: bool = True) -> WorkItem | None:
        found = await store.load_item(self.tx.conn, work_item_id, lock=lock)
        return await self._with_facts(found) if found else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WorkItem]:
        found = await store.load_items(self.tx.conn, ids)
        return {i: await self._with_facts(item) for i, item in found.items()}

    async def held_by(self, position_id: str) -> list[WorkItem]:
        found = await store.items_held(self.tx.conn, "worker", position_id)
        return [await self._with_facts(item) for item in found]

    def _note(self, change: Change, by: str | None) -> dict[str, Any] | None:
        if not change.note:
            return None
        return {"note": change.note, "by": by, "at": self.tx.now.isoformat()}

    def _history(self, change: Change, by: str | None) -> dict[str, Any]:
        h = change.history
        return store.history_row(
            change.after,
            h.change,
            actor_user_id=by,
            at=self.tx.now,
            from_owner=h.from_owner,
            to_owner=h.to_owner,
            detail=h.detail,
        )

    async def add(self, change: Change, *, by: str | None, new_by_construction: bool) -> bool:
        """A new item and its history entry. An id derived from the consumed message is new by
        construction (the inbox applies a message once), so its rows are staged and written with
        the rest of the batch; a caller-chosen id is checked (False: it exists already)."""
        item, note = change.after, self._note(change, by)
        row = {
            "work_item_id": item.work_item_id,
            "person_id": item.person_id,
            "step_type": item.step_type.value,
            "state": item.state.value,
            "owner_kind": item.owner_kind,
            "owner_id": item.owner_id,
            "priority": item.priority,
            "notes": [note] if note else [],
            "created_at": self.tx.now,
            "updated_at": self.tx.now,
            "due_at": item.due_at,
        }
        if new_by_construction:
            self.tx.stage(store.WORK_ITEM_INSERT, row)
            self.tx.stage(store.HISTORY_INSERT, self._history(change, by))
            return True
        inserted = await self.tx.execute(
            pg_insert(store.work_items).values(**row).on_conflict_do_nothing()
        )
        if inserted.rowcount == 0:
            return False  # a replay: the item exists already
        await self.tx.execute(store.work_history.insert().values(**self._history(change, by)))
        return True

    async def save(self, changes: Sequence[Change], *, by: str | None) -> None:
        """The changes' new placements, priorities and notes (one UPDATE per distinct outcome:
        a bulk assignment or a release is one statement), and their history entries."""
        if not changes:
            return
        groups: dict[tuple[Any, ...], list[Change]] = {}
        for change in changes:
            after = change.after
            key = (
                after.owner_kind,
                after.owner_id,
                after.state if change.state_changed else None,
                after.priority if change.priority_changed else None,
                change.note,
            )
            groups.setdefault(key, []).append(change)
        for (kind, owner_id, state, priority, _), group in groups.items():
            to = Placement(state or group[0].after.state, kind, owner_id)
            await self.tx.execute(
                store.move_statement(
                    [c.after.work_item_id for c in group],
                    to,
                    at=self.tx.now,
                    keep_state=state is None,
                    priority=priority,
                    note=self._note(group[0], by),
                )
            )
        await self.tx.execute(store.work_history.insert(), [self._history(c, by) for c in changes])

    async def keep_document(self, row: dict[str, Any]) -> None:
        """AL15: a finished step's content, for the person's Documents."""
        await self.tx.execute(
            pg_insert(store.documents)
            .values(**row, finished_at=self.tx.now)
            .on_conflict_do_nothing()
        )


class SqlPeople:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, person_id: str) -> Person | None:
        row = await store.person(self.tx.conn, person_id)
        return Person(person_id, row["name"], row["area"]) if row else None

    async def names(self, person_ids: Iterable[str]) -> dict[str, str]:
        return await store.person_names(self.tx.conn, person_ids)

    async def note(
        self, person_id: str, name: str | None, area: str | None, *, staged: bool = False
    ) -> None:
        """The person known (a name and area given replace what was known; staged: with the
        batch's other new people, as new work from outside arrives)."""
        if staged:
            assert name is not None
            self.tx.stage(
                store.PERSON_UPSERT,
                {"person_id": person_id, "name": name, "area": area},
                dedupe_on=("person_id",),
            )
            return
        await store.upsert_person(self.tx.conn, person_id, name, area)

    async def relationships(self, person_ids: Iterable[str]) -> dict[str, list[Relationship]]:
        return await store.person_relationships(self.tx.conn, person_ids)

    async def relationship(
        self, relationship_id: uuid.UUID, person_id: str | None = None
    ) -> dict[str, Any] | None:
        r = store.relationships
        query = sa.select(r).where(r.c.relationship_id == relationship_id)
        if person_id is not None:
            query = query.where(r.c.person_id == person_id)
        found = (await self.tx.execute(query)).first()
        return dict(found._mapping) if found else None

    async def add_relationship(self, row: dict[str, Any]) -> None:
        await self.tx.execute(store.relationships.insert().values(**row))

    async def amend_relationship(
        self, relationship_id: uuid.UUID, from_date: date, end_date: date | None
    ) -> None:
        r = store.relationships
        await self.tx.execute(
            r.update()
            .where(r.c.relationship_id == relationship_id)
            .values(from_date=from_date, end_date=end_date)
        )

    async def add_request(self, row: dict[str, Any]) -> bool:
        inserted = await self.tx.execute(
            pg_insert(store.requests).values(**row).on_conflict_do_nothing()
        )
        return bool(inserted.rowcount)

    async def request_state(
        self, request_id: uuid.UUID, state: str, at: datetime
    ) -> dict[str, Any] | None:
        r = store.requests
        row = (
            await self.tx.execute(
                r.update()
                .where(r.c.request_id == request_id)
                .values(state=state, updated_at=at)
                .returning(r)
            )
        ).first()
        return dict(row._mapping) if row else None

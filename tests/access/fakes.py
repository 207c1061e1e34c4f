"""Dict-backed fakes of access's repositories (cosmicpython's FakeRepository), and a small
agency to run the handlers' rules on without the broker or the database: handler unit tests
build a `HandlerContext.for_message` and call a handler module's handler with `FakeAccess`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

from contracts import Actor, Command, Event
from contracts.access import AccessKind, LoadDirectory, Role, UnitKind
from services.access.domain import (
    MANAGERS,
    Directory,
    DirectoryPlan,
    Holding,
    Holdings,
    Unit,
)
from services.access.handlers._steps import Handler
from services.access.records import P30, Change, Grant, Release
from services.access.repository import Repositories
from services.shared.transaction import HandlerContext

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday

UNITS = {
    "enforcement": Unit("enforcement", "Enforcement", kind=UnitKind.SEGMENT.value),
    "team-1": Unit("team-1", "Team 1", "enforcement"),
    "team-2": Unit("team-2", "Team 2", "enforcement"),
    "access": Unit("access", "Access administration", kind=UnitKind.ACCESS_TEAM.value),
    "appeals": Unit(
        "appeals", "Appeals", code="FS_GB_CMEXF_000_APPEALS", kind=UnitKind.SEGMENT.value
    ),
}


def person(
    user_id: str, unit_id: str, role: Role, *, manager: str | None = None, cleared: bool = True
) -> Holdings:
    primary = Holding.of(user_id, f"pos-{user_id}", unit_id, role, AccessKind.PRIMARY)
    return Holdings(user_id, cleared, manager, (primary,))


def agency() -> dict[str, Holdings]:
    return {
        h.user_id: h
        for h in (
            person("sm", "enforcement", Role.SEGMENT_MANAGER, manager="director"),
            person("tl-1", "team-1", Role.TEAM_LEADER, manager="sm"),
            person("tl-2", "team-2", Role.TEAM_LEADER, manager="sm"),
            person("cw", "team-1", Role.CASEWORKER, manager="tl-1"),
            person("admin", "access", Role.CASEWORKER),
            person("tl-appeals", "appeals", Role.TEAM_LEADER, manager="sm-appeals"),
        )
    }


def with_secondary(
    user: Holdings, unit_id: str, kind: AccessKind, *, backing: int = 1, pending: bool = False
) -> Holdings:
    held = Holding.of(
        user.user_id, f"{user.user_id}@{unit_id}", unit_id, user.positions[0].role, kind
    )
    held = replace(held, backing=backing, removal_pending=pending)
    return replace(user, positions=(*user.positions, held))


class FakeHoldings:
    def __init__(
        self,
        users: Mapping[str, Holdings],
        units: Mapping[str, Unit] = UNITS,
        grants: Iterable[Grant] = (),
        releases: Iterable[Release] = (),
    ) -> None:
        self.users = dict(users)
        self._units = dict(units)
        self.grants = {g.grant_id: g for g in grants}
        self.releases = {r.release_id: r for r in releases}
        self.saved: list[Change] = []

    async def get(self, user_id: str | None, *, lock: bool = False) -> Holdings | None:
        return self.users.get(user_id) if user_id else None

    async def units(self) -> Mapping[str, Unit]:
        return self._units

    async def unit_holders(self, unit_id: str) -> list[tuple[str, Role]]:
        return sorted(
            (u.user_id, p.role)
            for u in self.users.values()
            for p in u.positions
            if p.unit_id == unit_id
        )

    async def line_manager(self, user_id: str | None) -> str | None:
        user = self.users.get(user_id or "")
        return user.line_manager_id if user else None

    async def managers_of(self, unit_ids: list[str]) -> list[str]:
        return sorted(
            u.user_id
            for u in self.users.values()
            if u.primary and u.primary.unit_id in unit_ids and u.primary.role in MANAGERS
        )

    async def grant(self, grant_id: uuid.UUID | None) -> Grant | None:
        return self.grants.get(grant_id) if grant_id else None

    async def active_grant(self, position_id: str, kind: AccessKind) -> Grant | None:
        return next(
            (
                g
                for g in self.grants.values()
                if g.position_id == position_id and g.kind is kind and g.active
            ),
            None,
        )

    async def failed_release(self, position_id: str) -> Release | None:
        failed = [
            r
            for r in self.releases.values()
            if r.position_id == position_id and r.state == "failed"
        ]
        return max(failed, key=lambda r: r.requested_at) if failed else None

    async def release(self, release_id: uuid.UUID) -> Release | None:
        return self.releases.get(release_id)

    async def reviews_to_flag(self, horizon: datetime) -> list[Grant]:
        return [
            g
            for g in self.grants.values()
            if g.active
            and g.kind is AccessKind.ABSENCE
            and g.review_due_at is not None
            and g.review_due_at <= horizon
            and not g.review_overdue_flagged
        ]

    async def reviews_to_lapse(self) -> list[Grant]:
        return [
            g
            for g in self.grants.values()
            if g.active and g.kind is AccessKind.ABSENCE and g.review_overdue_flagged
        ]

    async def save(self, change: Change) -> None:
        self.saved.append(change)
        known = {f.name for f in fields(Release)}
        for release_id, values in change.release_updates:
            if (release := self.releases.get(release_id)) is not None:
                update: dict[str, Any] = {k: v for k, v in values.items() if k in known}
                if "moved" in update:
                    update["moved"] = tuple(update["moved"])
                self.releases[release_id] = replace(release, **update)


class FakeP30s:
    def __init__(self, records: Iterable[P30] = ()) -> None:
        self.records = {r.p30_id: r for r in records}
        self.saved: list[Change] = []

    async def get(self, p30_id: uuid.UUID | None, *, lock: bool = False) -> P30 | None:
        return self.records.get(p30_id) if p30_id else None

    async def scheduled_due(self, now: datetime) -> list[P30]:
        return [
            r
            for r in self.records.values()
            if r.state == "scheduled" and r.scheduled_for is not None and r.scheduled_for <= now
        ]

    async def emergencies_overdue(self, now: datetime) -> list[P30]:
        return [
            r
            for r in self.records.values()
            if r.state == "outstanding"
            and r.emergency
            and r.deadline is not None
            and r.deadline <= now
            and not r.overdue_flagged
        ]

    async def save(self, change: Change) -> None:
        self.saved.append(change)


class FakeDirectory:
    def __init__(self, current: Directory | None = None) -> None:
        self.directory = current or Directory(units=UNITS)
        self.saved: list[tuple[LoadDirectory, DirectoryPlan]] = []

    async def current(self, load: LoadDirectory) -> Directory:
        return self.directory

    async def save(
        self, load: LoadDirectory, plan: DirectoryPlan, *, command_id: uuid.UUID, changed_by: str
    ) -> None:
        self.saved.append((load, plan))


class FakeAccess(Repositories):
    """The three fakes, with what was saved, in order."""

    holdings: FakeHoldings
    p30s: FakeP30s
    directory: FakeDirectory

    def __init__(
        self,
        users: Mapping[str, Holdings] | None = None,
        *,
        p30s: Iterable[P30] = (),
        grants: Iterable[Grant] = (),
        releases: Iterable[Release] = (),
        directory: Directory | None = None,
    ) -> None:
        super().__init__(
            FakeHoldings(agency() if users is None else users, grants=grants, releases=releases),
            FakeP30s(p30s),
            FakeDirectory(directory),
        )
        self.changes: list[Change] = []

    async def save(self, change: Change) -> None:
        self.changes.append(change)
        await super().save(change)

    @property
    def change(self) -> Change:
        """The one change saved."""
        (change,) = self.changes
        return change


async def handle(
    handler: Handler,
    message: Command | Event,
    repos: FakeAccess,
    *,
    actor: str | None = None,
    roles: frozenset[str] = frozenset(),
    now: datetime = NOW,
) -> HandlerContext[Any]:
    """Runs one handler on `message` as `actor`, over the fakes; returns its context (events)."""
    ctx: HandlerContext[Any] = HandlerContext.for_message(
        message,
        now=now,
        actor=Actor(user_id=actor, position_id=f"pos-{actor}") if actor else None,
        roles=roles,
    )
    await handler(ctx, repos)
    return ctx


def p30(
    user_id: str,
    *,
    state: str,
    action: str = "set-up",
    kind: AccessKind = AccessKind.ABSENCE,
    unit_ids: tuple[str, ...] = ("team-2",),
    requested_by: str = "sm",
    approved_by: str | None = "tl-2",
    **extra: Any,
) -> P30:
    return P30(
        p30_id=uuid.uuid4(),
        user_id=user_id,
        action=action,
        kind=kind,
        unit_ids=unit_ids,
        requested_by=requested_by,
        approved_by=approved_by,
        reason="cover",
        discussion_held=True,
        discussed_with=approved_by,
        state=state,
        emergency=extra.pop("emergency", False),
        deadline=extra.pop("deadline", None),
        warnings=(),
        recorded_at=NOW,
        **extra,
    )


def grant(user_id: str, position_id: str, p30_id: uuid.UUID, **extra: Any) -> Grant:
    return Grant(
        grant_id=uuid.uuid4(),
        user_id=user_id,
        position_id=position_id,
        kind=extra.pop("kind", AccessKind.ABSENCE),
        p30_id=p30_id,
        emergency=extra.pop("emergency", False),
        state=extra.pop("state", "active"),
        granted_at=NOW,
        **extra,
    )

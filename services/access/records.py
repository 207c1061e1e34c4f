"""The records access keeps beside a user's positions, as pure data: the CSUA P30 records (AC04),
the grants (records) backing each secondary position, the releases of the removal saga (AC16),
and the `Change` a decision makes, which the repositories write in one place. No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from contracts import Event
from contracts.access import AccessKind, P30Recorded
from services.shared.positions import Position

Values = Mapping[str, object]  # the changed fields of a record, by name


@dataclass(frozen=True)
class P30:
    """AC04: the CSUA P30 record of a set-up or removal. AC20: submitted | refused | complete |
    pending (a removal actioned, its work being released, AC16); AC21 (emergency): requested |
    scheduled | outstanding | complete."""

    p30_id: uuid.UUID
    user_id: str
    action: str  # set-up | removal
    kind: AccessKind
    unit_ids: tuple[str, ...]
    requested_by: str
    approved_by: str | None
    reason: str
    discussion_held: bool
    discussed_with: str | None
    state: str
    emergency: bool
    deadline: datetime | None
    warnings: tuple[str, ...]
    recorded_at: datetime
    actioned_by: str | None = None  # AC20: the access team member
    actioned_at: datetime | None = None
    position_id: str | None = None  # a removal: the position and record it ends
    grant_id: uuid.UUID | None = None
    successor_position_id: str | None = None
    absent_user_id: str | None = None  # AC21
    scheduled_for: datetime | None = None  # AC21: the access team's time scale
    overdue_flagged: bool = False

    def recorded(self) -> P30Recorded:
        """AC04: the record, published in the transaction of what it covers."""
        return P30Recorded(
            p30_id=self.p30_id,
            user_id=self.user_id,
            action=self.action,
            kind=self.kind,
            unit_ids=list(self.unit_ids),
            requested_by=self.requested_by,
            approved_by=self.approved_by,
            actioned_by=self.actioned_by,
            reason=self.reason,
            discussion_held=self.discussion_held,
            discussed_with=self.discussed_with,
            state=self.state,
            emergency=self.emergency,
            deadline=self.deadline,
            warnings=list(self.warnings),
            recorded_at=self.recorded_at,
        )


@dataclass(frozen=True)
class Grant:
    """A record backing a secondary position (AC03's kind, AC04's P30); state: active | ended."""

    grant_id: uuid.UUID
    user_id: str
    position_id: str
    kind: AccessKind
    p30_id: uuid.UUID
    emergency: bool
    state: str
    granted_at: datetime
    review_due_at: datetime | None = None
    review_due_flagged: bool = False
    review_overdue_flagged: bool = False

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True)
class Release:
    """AC16: one release of a position's work asked of allocation; state: requested | released |
    failed (a failed one may be followed by a retry under the same P30)."""

    release_id: uuid.UUID
    user_id: str
    position_id: str
    grant_id: uuid.UUID
    p30_id: uuid.UUID
    successor_position_id: str | None
    state: str
    requested_at: datetime
    # The items allocation has answered as moved so far (TR08: an answer may come in parts).
    moved: tuple[Mapping[str, object], ...] = ()


@dataclass(frozen=True)
class CurrentPosition:
    """AC17: the user's current position becomes `position_id`; with `only_if`, only when it is
    that position now (a removed position stops being anyone's current one)."""

    user_id: str
    position_id: str | None
    only_if: str | None = None


@dataclass
class Change:
    """What one decision changed, in the order it was decided, and the events it causes. The
    repositories write it whole (`Repositories.save`); the handler then emits `events`."""

    recorded: list[P30] = field(default_factory=list)  # new P30 records
    p30s: list[tuple[uuid.UUID, Values]] = field(default_factory=list)
    granted: list[tuple[Position, datetime]] = field(default_factory=list)  # new positions
    grants: list[Grant] = field(default_factory=list)  # new records backing positions
    grant_updates: list[tuple[uuid.UUID, Values]] = field(default_factory=list)
    positions: list[tuple[str, Values]] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)  # new releases asked of allocation
    release_updates: list[tuple[uuid.UUID, Values]] = field(default_factory=list)
    current: list[CurrentPosition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def record(self, p30: P30) -> P30:
        self.recorded.append(p30)
        self.events.append(p30.recorded())
        return p30

    def then(self, other: Change) -> Change:
        """This change followed by `other` (one transaction's decisions, in order)."""
        for name in (
            "recorded",
            "p30s",
            "granted",
            "grants",
            "grant_updates",
            "positions",
            "releases",
            "release_updates",
            "current",
            "events",
        ):
            getattr(self, name).extend(getattr(other, name))
        return self

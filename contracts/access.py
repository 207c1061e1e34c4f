"""Access contracts: commands on `access.commands`, events on `access.events`, keyed by user id.

The directory events (units, users, positions) are what other services project to route and
authorise work; they can rebuild their projections by replaying access.events."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel

from contracts.envelope import Event


class Role(StrEnum):
    CASEWORKER = "caseworker"
    TEAM_LEADER = "team leader"
    SEGMENT_MANAGER = "segment manager"
    SENIOR_OFFICER = "Senior Officer"
    TRUSTED_ASSESSOR = "Trusted Assessor"
    GENERIC_SUPPORT_OFFICER = "Generic Support Officer"
    HUB_TEAM_WORKER = "Hub Team worker"


class AccessKind(StrEnum):
    PRIMARY = "primary"
    HIERARCHICAL = "hierarchical"
    ABSENCE = "absence-related"


class UnitKind(StrEnum):
    TEAM = "team"
    SEGMENT = "segment"


class UnitDefined(Event):
    """A team or segment, with its parent segment (case-group hierarchy) and its hopper."""

    TYPE: ClassVar[str] = "access.unit_defined.v1"
    KEY_FIELD: ClassVar[str | None] = "unit_id"

    unit_id: str
    name: str
    kind: UnitKind
    parent_id: str | None = None
    code: str | None = None  # segment code, e.g. FS_GB_CMEXF_000_APPEALS
    hopper_id: str | None = None


class UserRegistered(Event):
    TYPE: ClassVar[str] = "access.user_registered.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    name: str
    email: str | None = None
    line_manager_id: str | None = None
    security_clearance: bool = False


class PositionGranted(Event):
    """A user now holds a position (primary or secondary) in a team or segment."""

    TYPE: ClassVar[str] = "access.position_granted.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    position_id: str
    unit_id: str
    role: Role
    kind: AccessKind
    p30_id: uuid.UUID | None = None
    emergency: bool = False


class PositionRevoked(Event):
    TYPE: ClassVar[str] = "access.position_revoked.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    user_id: str
    position_id: str
    p30_id: uuid.UUID | None = None


class PositionReleaseRequested(Event):
    """AC16 saga step 1: before a position is removed, allocation must move the work it holds.
    Allocation answers with allocation.position_work_released.v1 (or ..._release_failed.v1)."""

    TYPE: ClassVar[str] = "access.position_release_requested.v1"
    KEY_FIELD: ClassVar[str | None] = "user_id"

    release_id: uuid.UUID
    user_id: str
    position_id: str
    successor_position_id: str | None = None  # None: back to the unit's hopper


class PositionRef(BaseModel):
    user_id: str
    position_id: str

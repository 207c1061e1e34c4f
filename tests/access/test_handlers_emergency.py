"""Handler unit tests, without the broker or the database: emergency absence-related access
(AC11, AC21, DL03), on fake repositories."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.access import (
    AccessGrantRecorded,
    AnswerEmergencyRequest,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    EmergencyAccessScheduled,
    LodgeP30,
    P30Lodged,
    P30Recorded,
    PositionGranted,
    RequestEmergencyAbsenceAccess,
    Role,
)
from services.access import domain
from services.access.handlers import emergency
from services.shared.rules import RuleViolation
from tests.access.fakes import NOW, FakeAccess, agency, handle, p30, person

REQUEST = RequestEmergencyAbsenceAccess(user_id="tl-1", unit_id="team-2", absent_user_id="tl-2")


def requested() -> FakeAccess:
    return FakeAccess(
        p30s=[
            p30(
                "tl-1",
                state="requested",
                approved_by=None,
                emergency=True,
                absent_user_id="tl-2",
            )
        ]
    )


async def test_ac21_an_emergency_request_when_nobody_else_holds_the_unit() -> None:
    repos = FakeAccess()
    ctx = await handle(emergency.request_emergency_absence_access, REQUEST, repos, actor="sm")
    recorded, asked = ctx.events
    assert isinstance(recorded, P30Recorded) and recorded.state == "requested"
    assert isinstance(asked, EmergencyAccessRequested) and asked.absent_user_id == "tl-2"


async def test_ac21_refused_when_someone_else_already_holds_the_absent_tls_unit() -> None:
    users = agency()
    users["tl-3"] = person("tl-3", "team-2", Role.TEAM_LEADER, manager="sm")
    repos = FakeAccess(users)
    with pytest.raises(RuleViolation, match=r"^AC21:.*tl-3 already hold"):
        await handle(emergency.request_emergency_absence_access, REQUEST, repos, actor="sm")
    assert repos.changes == []


async def test_ac21_dl03_granted_at_once_with_the_p30_due_in_two_working_days() -> None:
    repos = requested()
    (record,) = repos.p30s.records.values()
    answer = AnswerEmergencyRequest(user_id="tl-1", p30_id=record.p30_id)
    ctx = await handle(emergency.answer_emergency_request, answer, repos, actor="admin")
    assert [type(e) for e in ctx.events] == [
        PositionGranted,
        AccessGrantRecorded,
        EmergencyAccessGranted,
    ]
    granted = ctx.events[-1]
    assert isinstance(granted, EmergencyAccessGranted)
    assert granted.p30_deadline == domain.p30_deadline(NOW)
    ((p30_id, values),) = repos.change.p30s
    assert p30_id == record.p30_id and values["state"] == "outstanding"


async def test_ac21_answered_with_a_time_scale_the_grant_waits_for_it() -> None:
    repos = requested()
    (record,) = repos.p30s.records.values()
    later = NOW + timedelta(hours=2)
    answer = AnswerEmergencyRequest(user_id="tl-1", p30_id=record.p30_id, grant_at=later)
    ctx = await handle(emergency.answer_emergency_request, answer, repos, actor="admin")
    (scheduled,) = ctx.events
    assert isinstance(scheduled, EmergencyAccessScheduled) and scheduled.grant_at == later
    assert repos.change.granted == [] and repos.change.grants == []


async def test_ac11_ac08_the_completed_p30_closes_the_outstanding_record() -> None:
    record = p30(
        "tl-1",
        state="outstanding",
        approved_by=None,
        emergency=True,
        deadline=NOW + timedelta(days=2),
    )
    lodge = LodgeP30(
        user_id="tl-1", p30_id=record.p30_id, discussion_held=True, discussed_with="tl-2"
    )
    ctx = await handle(emergency.lodge_p30, lodge, FakeAccess(p30s=[record]), actor="sm")
    (lodged,) = ctx.events
    assert isinstance(lodged, P30Lodged) and not lodged.late
    undiscussed = lodge.model_copy(update={"discussion_held": False})
    with pytest.raises(RuleViolation, match=r"^AC08:"):
        await handle(emergency.lodge_p30, undiscussed, FakeAccess(p30s=[record]), actor="sm")

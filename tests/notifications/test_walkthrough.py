"""Notifications fed by the real services: the access service loads the walkthrough directory,
allocation assigns a referral to a Hub worker, and the worker is told (NT01) in the inbox and
by e-mail, with nothing but events between the services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from contracts import Actor
from contracts.access import DirectoryLoaded, LoadDirectory
from contracts.allocation import (
    AssignWork,
    ReceiveReferral,
    WorkItemAssigned,
    WorkItemAssignedV2,
    WorkItemCreated,
)
from services.access.service import SPEC as ACCESS
from services.shared.settings import Settings
from tests.conftest import RunningService, start_service
from tests.notifications.conftest import SmtpSink, inbox_of, sent_events, uid, wait_until
from tests.support.client import CommandClient, EventLog

DIRECTORY = (
    Path(__file__).resolve().parents[2] / "services" / "access" / "walkthrough_directory.json"
)
ADMIN = Actor(user_id="directory-admin")
SO_HUB = Actor(user_id="so-hub", position_id="pos-so-hub")
HUB_1 = Actor(user_id="hub-1", position_id="pos-hub-1")


async def _projected(service: RunningService, schema: str, positions: set[str]) -> None:
    table = sa.table("dir_positions", sa.column("position_id"), schema=schema)

    async def check() -> bool:
        async with service.runtime.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(table.c.position_id).where(table.c.position_id.in_(positions))
            )
            return set(rows.scalars()) == positions

    await wait_until(check)


async def test_nt01_hub_worker_told_of_assignment_made_through_the_real_services(
    allocation: RunningService,
    notifications: RunningService,
    settings_for: Callable[..., Settings],
    commands: CommandClient,
    event_log: EventLog,
    smtp: tuple[SmtpSink, int],
) -> None:
    access = await start_service(ACCESS, settings_for("access"))
    try:
        loaded = await commands.send(
            LoadDirectory.model_validate_json(DIRECTORY.read_text()), ADMIN
        )
        await event_log.wait_for(
            lambda: any(
                e.type == DirectoryLoaded.TYPE for e in event_log.caused_by(loaded.message_id)
            )
        )
        wanted = {SO_HUB.position_id or "", HUB_1.position_id or ""}
        await _projected(allocation, "allocation", wanted)
        await _projected(notifications, "notifications", wanted)

        referral = await commands.send(
            ReceiveReferral(person_id=uid("P"), person_name="Nora Notified", area="North"), SO_HUB
        )
        (created, created_v2) = await event_log.outcome(referral.message_id)  # v1, then v2
        item = WorkItemCreated.model_validate(created.payload)
        assign = await commands.send(
            AssignWork(
                person_id=item.person_id,
                work_item_id=item.work_item_id,
                to_position_id=HUB_1.position_id or "",
                note="triage today please",
            ),
            SO_HUB,
        )
        (assigned_v1, assigned) = await event_log.outcome(assign.message_id)
        assert (assigned_v1.type, assigned.type) == (WorkItemAssigned.TYPE, WorkItemAssignedV2.TYPE)
        await event_log.wait_for(lambda: len(sent_events(event_log, assigned.message_id)) == 2)
        told = {
            (s.recipient_id, s.channel, s.rule) for s in sent_events(event_log, assigned.message_id)
        }
        assert told == {("hub-1", "inbox", "NT01"), ("hub-1", "email", "NT01")}
        notices = [i for i in await inbox_of(notifications, "hub-1") if item.person_id in i["body"]]
        (notice,) = notices
        assert "triage today please" in notice["body"]
        assert any(
            "triage today please" in m.get_content() for m in smtp[0].to("hub-1@casework.example")
        )
        # Nobody was told of the referral itself: it sits in the Hub Team's queue.
        assert sent_events(event_log, created.message_id) == []
        assert sent_events(event_log, created_v2.message_id) == []
    finally:
        await access.http.aclose()
        await access.runtime.stop()

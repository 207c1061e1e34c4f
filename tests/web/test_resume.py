"""AL13, AL11 in a browser: a Generic Support Officer resumes the person's Case Monitoring step
from the Current work of the person summary, as the seed has it, once recorded as the person's
Involved Worker (before, the record itself is refused with its rule); the step then opens as
theirs. Nobody else is offered Resume."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.allocation import AssignWork, RecordWorkerRelationship, StartStep, StepType
from tests.allocation.helpers import (
    GSO_NORTH,
    HUB_1,
    SO_NORTH,
    eventually,
    get,
    ok,
    referral,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog
from tests.web.conftest import WebServer, accessible, path_of, sign_in

expect = pytest.importorskip("playwright.async_api").expect


async def test_al13_al11_generic_support_officer_resumes_case_monitoring(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    allocation: RunningService,
) -> None:
    triage = await referral(commands, event_log, name="Rhoda Resumed", area="North")
    person = triage.person_id
    monitoring = await step(commands, event_log, person, StepType.CASE_MONITORING)
    item_id = str(monitoring.work_item_id)
    # A Hub Team worker started it: incomplete work of the North Case Monitoring inbox.
    start = StartStep(person_id=person, work_item_id=monitoring.work_item_id)
    await ok(commands, event_log, start, HUB_1)

    # The Senior Officer sees no Resume: only a Generic Support Officer resumes (AL13).
    await sign_in(page, web, SO_NORTH.user_id, f"/persons/{person}")
    current = page.locator("#current-work")
    await expect(current).to_contain_text(StepType.CASE_MONITORING)
    await expect(current.get_by_role("button", name="Resume")).to_have_count(0)
    await page.context.clear_cookies()

    # The Generic Support Officer, not yet the person's Involved Worker, cannot open the record
    # (AL10, AL11): the refusal names its rule.
    await sign_in(page, web, GSO_NORTH.user_id, "/my-work")
    await page.goto(f"{web.url}/persons/{person}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("rule AL10")
    await accessible(page)
    held = await get(allocation, SO_NORTH.user_id, f"/work-items/{item_id}")
    assert held["owner_kind"] == "inbox"

    # Recorded as Involved Worker by the North Team's Senior Officer, who passes her the Support
    # Action Plan Delivery (as the assessment's next action would): the record is hers to read.
    gso = GSO_NORTH.position_id or ""
    await ok(
        commands,
        event_log,
        RecordWorkerRelationship(person_id=person, worker_position_id=gso),
        SO_NORTH,
    )
    delivery = await step(commands, event_log, person, StepType.SUPPORT_PLAN_DELIVERY)
    assign = AssignWork(person_id=person, work_item_id=delivery.work_item_id, to_position_id=gso)
    await ok(commands, event_log, assign, SO_NORTH)
    await page.reload()
    # Resume on the Case Monitoring row only (not on triage nor her own step: AL13).
    resume = current.get_by_role("button", name=f"Resume {StepType.CASE_MONITORING}")
    await expect(resume).to_have_count(1)
    await expect(current.get_by_role("button", name="Resume")).to_have_count(1)
    await accessible(page)
    await resume.click()
    outcome = page.locator("#outcome")
    await expect(outcome).to_contain_text(
        f"{StepType.CASE_MONITORING} is resumed: it is now in your incomplete work."
    )
    assert path_of(page) == f"/work/{item_id}"
    await accessible(page)

    async def hers() -> bool:
        item = await get(allocation, SO_NORTH.user_id, f"/work-items/{item_id}")
        return (item["owner_kind"], item["owner_id"], item["state"]) == (
            "worker",
            GSO_NORTH.position_id,
            "incomplete",
        )

    await eventually(hers)
    # Back on the record: the step is hers now, so Resume is offered no more.
    await page.goto(f"{web.url}/persons/{person}")
    await expect(current.get_by_role("button", name="Resume")).to_have_count(0)
    await expect(page.locator("#work-history")).to_contain_text(
        f"{StepType.CASE_MONITORING} resumed"
    )

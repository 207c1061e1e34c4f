"""Both procedures of the seeds carried out in a browser by the people they describe, by
clicking only (the referral itself arrives from outside, AL01): the Wellbeing referral from
triage to the returned request, through the worker's step screen (Start, sections, Save, next
actions, the mandatory request, Finish disabled with its reasons while SO05/SO08 block it).
Every page visited passes axe-core (WCAG 2.2 AA, no serious or critical violation)."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.allocation import StepType
from contracts.signoff import CASE_MONITORING_ACTION, TRUSTED_ASSESSMENT_ACTION
from services.allocation import domain
from tests.allocation.helpers import eventually, referral
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog
from tests.web.conftest import WebServer, accessible, screenshot, sign_in

expect = pytest.importorskip("playwright.async_api").expect


async def sign_out(page: Any) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You have signed out")


async def open_from_my_work(
    page: Any, web: WebServer, user_id: str, step_type: str, person_name: str
) -> None:
    await sign_in(page, web, user_id, "/my-work")
    await page.get_by_role("link", name=f"{step_type} for {person_name}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(step_type)


def group(page: Any, legend: str) -> Any:
    return page.get_by_role("group", name=legend)


async def owned_in_signoff(
    signoff: RunningService, user_id: str, step_id: str, position_id: str
) -> None:
    """Sign-off has learnt who holds the step (from allocation's events) before they act."""

    async def held() -> bool:
        answer = await signoff.get(user_id, f"/steps/{step_id}")
        return answer.status_code == 200 and answer.json()["owner_id"] == position_id

    await eventually(held)


async def test_al01_so07_wellbeing_referral_from_triage_to_the_returned_request(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    allocation: RunningService,
    signoff_service: RunningService,
) -> None:
    # AL01: the external referral lands in the Hub Team's incoming work.
    triage = await referral(commands, event_log, name="Esme Endtoend")
    person, triage_id = triage.person_id, str(triage.work_item_id)

    # AL06: the Hub Team's Senior Officer passes the triage to a Hub Team worker.
    await sign_in(page, web, "so-hub", f"/teams/{domain.HUB_TEAM}")
    row = page.locator("#incoming-work tbody tr").filter(has_text="Esme Endtoend")
    await row.get_by_role("link", name="Update assignment").click()
    await page.get_by_label("Pass to worker: find by name").fill("Ada")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Assign").click()
    await expect(page.locator("#outcome")).to_contain_text("is now in Ada Brooks's incoming work")
    await sign_out(page)
    await owned_in_signoff(signoff_service, "hub-1", triage_id, "pos-hub-1")

    # AL03, AL13: the worker opens the step from My work and starts it.
    await open_from_my_work(page, web, "hub-1", StepType.TRIAGE, "Esme Endtoend")
    await accessible(page)
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#outcome")).to_contain_text("is started")
    finish = page.get_by_role("button", name="Finish")

    # SO05, SO08: Finish is disabled, each reason with its rule.
    await expect(finish).to_be_disabled()
    blocked = page.locator("#finish-blocked")
    await expect(blocked).to_contain_text("Rule SO05: Add at least one next action.")
    await expect(blocked).to_contain_text("Rule SO08: Answer the mandatory questions")
    await expect(blocked).to_contain_text("Level of risk")
    await accessible(page)

    # SO09: fill in the sections and Save; the step stays open.
    await page.get_by_label("Reason for referral").fill("Isolated after a fall")
    await page.get_by_label("Risks identified").fill("Falls on the stairs")
    await group(page, "Level of risk").get_by_label("Medium").check()
    await (
        group(page, "Does the person need a Trusted Assessment and support planning?")
        .get_by_label("Yes")
        .check()
    )
    await group(page, "Should the case be monitored meanwhile?").get_by_label("No").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#outcome")).to_contain_text("every mandatory question is answered")
    await expect(page.locator("#prompted")).to_contain_text(TRUSTED_ASSESSMENT_ACTION)
    await expect(blocked).not_to_contain_text("SO08")
    await expect(finish).to_be_disabled()
    await screenshot(page, "worker-step")

    # SO04: Add keeps the form open for another; Add and close closes it. SO10: removed.
    await page.get_by_role("link", name="Add next action").click()
    await page.get_by_label("Action type").select_option(CASE_MONITORING_ACTION)
    await page.get_by_label(f"{domain.HUB_TEAM} (team)").check()
    await page.get_by_label("Note for the worker or team").fill("Monitor while assessed")
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(page.locator("#outcome")).to_contain_text(
        f"Next action added: {CASE_MONITORING_ACTION} to {domain.HUB_TEAM}."
    )
    await expect(page.locator("#add-next-action")).to_be_visible()
    await accessible(page)
    await page.get_by_label("Action type").select_option(TRUSTED_ASSESSMENT_ACTION)
    await page.get_by_label(f"{domain.NORTH_TEAM} (team)").check()
    await page.get_by_label("Note for the worker or team").fill("Needs a Trusted Assessment")
    await page.get_by_role("button", name="Add and close").click()
    await expect(page.locator("#add-next-action")).to_have_count(0)
    actions = page.locator("#next-actions tbody tr")
    await expect(actions).to_have_count(2)
    await (
        actions.filter(has_text=CASE_MONITORING_ACTION).get_by_role("button", name="Remove").click()
    )
    await expect(page.locator("#outcome")).to_contain_text("The next action is removed")
    await expect(actions).to_have_count(1)

    # SO09: nothing blocks Finish now; finishing sends the next action (AL13, AL02).
    await expect(page.locator("#finish-blocked")).to_have_count(0)
    await finish.click()
    await expect(page.locator("#outcome")).to_contain_text(
        "The step is finished; 1 next action(s) sent."
    )
    await expect(page.locator("#step-state")).to_contain_text("finished")
    await accessible(page)
    await sign_out(page)

    async def assessment() -> str | None:
        record = await allocation.get("so-north", f"/persons/{person}")
        if record.status_code != 200:
            return None
        found = [
            i["work_item_id"]
            for i in record.json()["current_work"]
            if i["step_type"] == StepType.TRUSTED_ASSESSMENT
        ]
        return found[0] if found else None

    assessment_id = await eventually(assessment)

    # AL02, AL05, AL16: the North Team's Senior Officer records the Trusted Assessor as
    # Involved Worker, then passes the assessment to her from the person's record.
    await sign_in(page, web, "so-north", f"/teams/{domain.NORTH_TEAM}")
    row = page.locator("#incoming-work tbody tr").filter(has_text="Esme Endtoend")
    await expect(row).to_contain_text(StepType.TRUSTED_ASSESSMENT)
    await row.get_by_role("link", name="Esme Endtoend").click()
    await page.get_by_role("link", name="Add worker relationship").click()
    await page.get_by_label("Find worker by name").fill("Grace")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Add").click()
    await expect(page.locator("#relationships")).to_contain_text("Grace Mensah: Involved Worker")
    await (
        page.locator("#current-work tbody tr")
        .filter(has_text=StepType.TRUSTED_ASSESSMENT)
        .get_by_role("link", name="Update assignment")
        .click()
    )
    await page.get_by_label("Pass to worker: find by name").fill("Grace")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Assign").click()
    await expect(page.locator("#outcome")).to_contain_text("is now in Grace Mensah's incoming")
    await sign_out(page)
    await owned_in_signoff(signoff_service, "ta-north-1", assessment_id, "pos-ta-north-1")

    # SO01: the Trusted Assessor starts the step, fills it in and sends the mandatory request.
    await open_from_my_work(page, web, "ta-north-1", StepType.TRUSTED_ASSESSMENT, "Esme Endtoend")
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#outcome")).to_contain_text("is started")
    await page.get_by_label("What matters to the person").fill("Staying at home")
    await page.get_by_label("Presenting needs").fill("Help with meals")
    await page.get_by_label("Agreed support plan").fill("Weekly visits")
    await (
        group(page, "Is the case progressing to a Generic Support Officer?")
        .get_by_label("Yes")
        .check()
    )
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#outcome")).to_contain_text("every mandatory question is answered")
    await expect(page.locator("#finish-blocked")).to_contain_text("Rule SO01")
    await page.get_by_role("button", name="Send the request to the Management Team").click()
    await expect(page.locator("#outcome")).to_contain_text("is sent to")
    await expect(page.locator("#requests")).to_contain_text("outstanding")
    await expect(page.locator("#finish-blocked")).to_contain_text(
        "Rule SO08: The request on this step is still outstanding."
    )
    await expect(page.get_by_role("button", name="Finish")).to_be_disabled()
    await accessible(page)
    await sign_out(page)

    # SO02, SO07: the Management Team returns the request with a note.
    await sign_in(page, web, "so-mgmt")
    await page.get_by_role("link", name="Sign-off requests").click()
    await (
        page.locator("#signoff-requests tbody tr")
        .filter(has_text="Esme Endtoend")
        .get_by_role("link")
        .click()
    )
    await page.get_by_label("Returned", exact=True).check()
    await page.get_by_label("Note (with Returned, for the worker)").fill("Add the stair risks")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#outcome")).to_contain_text("The request is returned to")
    await sign_out(page)

    # SO07, NT03: the worker sees the returned request and its note on the step.
    await open_from_my_work(page, web, "ta-north-1", StepType.TRUSTED_ASSESSMENT, "Esme Endtoend")
    await expect(page.locator("#requests")).to_contain_text("returned (note: Add the stair risks)")
    await accessible(page)

"""Both procedures of the seeds carried out in a browser by the people they describe, by
clicking only (the referral itself arrives from outside, AL01): the Wellbeing referral from
triage to the returned request, through the worker's step screen (Start, sections, Save, next
actions, the mandatory request, Finish disabled with its reasons while SO05/SO08 block it).
Every page visited passes axe-core (WCAG 2.2 AA, no serious or critical violation)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from contracts import Actor
from contracts.allocation import ReceiveServiceRequest, StepType, WorkItemCreated
from contracts.signoff import CASE_MONITORING_ACTION, TRUSTED_ASSESSMENT_ACTION
from services.allocation import domain
from tests.allocation.helpers import eventually, new_person, only, referral
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
    await row.get_by_role("link", name="Esme Endtoend", exact=True).click()
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


async def to_action(page: Any, row_text: str, button: str) -> None:
    """The access team answers one P30 from its queue (AC20, AC21)."""
    await page.goto(page.url.split("/access")[0] + "/access/to-action")
    row = page.locator("#to-action tbody tr").filter(has_text=row_text)
    await row.get_by_role("button", name=button).first.click()
    await expect(page.locator("#outcome")).to_contain_text("Done")


async def test_ac10_ac11_ac13_ac16_agency_standing_emergency_hierarchical_and_removal(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    access_service: RunningService,
    allocation: RunningService,
) -> None:
    # Standing absence-related access (AC06-AC10): the segment manager asks for a team
    # leader's cover of two teams on one P30; more than ten positions are refused (AC10).
    await sign_in(page, web, "sm-enf", "/access")
    await accessible(page)
    await page.locator("#people").get_by_role("link", name="Dana Reid").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dana Reid")
    await page.get_by_role("link", name="Ask for absence-related access").click()
    await expect(page.get_by_label("Access for")).to_have_value("tl-enf-1")
    boxes = page.locator("input[name^='unit-']")
    for n in range(11):
        await boxes.nth(n).check()
    await page.get_by_role("button", name="Submit the P30").click()
    await expect(page.locator("#outcome")).to_contain_text("Not done: rule AC10")
    await page.get_by_label("Enforcement team 2").check()
    await page.get_by_label("Appeals team 1").check()
    await page.get_by_label("The discussion with the case-owning team leader took place").check()
    await page.get_by_label("Discussed with and approved by").select_option("tl-enf-2")
    await page.get_by_label("Reason").fill("Cover while Eli is on leave")
    await accessible(page)
    await screenshot(page, "p30-absence")
    await page.get_by_role("button", name="Submit the P30").click()
    await expect(page.locator("#outcome")).to_contain_text(
        "P30 set-up (absence-related) for Dana Reid: Appeals team 1, Enforcement team 2; submitted."
    )
    await expect(page.locator("#p30s")).to_contain_text("submitted")
    await accessible(page)

    # The emergency request (AC11, AC21): nobody else holds the absent team leader's team.
    await page.get_by_role("link", name="Secondary access").first.click()
    await page.get_by_role("link", name="Emergency request").click()
    await page.get_by_label("Access for").select_option("tl-enf-1")
    await page.get_by_label("Absent team leader or segment manager").select_option("tl-jud-rev-1")
    await page.get_by_label("Their position's team or segment").select_option("team-jud-rev-1")
    await page.get_by_label("Reason").fill("Mia is off sick; judicial review cases due")
    await accessible(page)
    await page.get_by_role("button", name="Send the emergency request").click()
    await expect(page.locator("#outcome")).to_contain_text("The emergency request is accepted")

    # Hierarchical access (AC12-AC14): one position, only into the four segments; a
    # functionally unique one is warned on the form.
    await page.get_by_role("link", name="Secondary access").first.click()
    await page.get_by_role("link", name="P30: hierarchical access").click()
    await expect(page.locator("main")).to_contain_text(
        "Appeals tribunal liaison is functionally unique"
    )
    await expect(page.get_by_label("Enforcement team 1")).to_have_count(0)  # not into AC13's
    await page.get_by_label("Access for").select_option("cw-enf-3")
    await page.get_by_label("Special client records team 1").check()
    await page.get_by_label("Agreed with").select_option("tl-special-client-1")
    await page.get_by_label("Reason").fill("Special client cases need enforcement")
    await accessible(page)
    await screenshot(page, "p30-hierarchical")
    await page.get_by_role("button", name="Submit the P30").click()
    await expect(page.locator("#outcome")).to_contain_text("P30 set-up (hierarchical) for Hana Ito")
    await sign_out(page)

    # AC20, AC21: the access team actions both P30s and grants the emergency request at once.
    await sign_in(page, web, "flls-1", "/access/to-action")
    await accessible(page)
    await screenshot(page, "p30s-to-action")
    await to_action(page, "Enforcement team 2", "Action")
    await expect(page.locator("#outcome")).to_contain_text("Dana Reid now has absence-related")
    await to_action(page, "Special client records team 1", "Action")
    await to_action(page, "Judicial review team 1", "Grant now")
    await expect(page.locator("#outcome")).to_contain_text("Emergency access granted to Dana")
    await sign_out(page)

    # AC11: the completed P30 closes the emergency record; AC09: the review, confirmed.
    await sign_in(page, web, "sm-enf", "/access/people/tl-enf-1")
    lodge = page.locator("form[action='/access/lodge']")
    await lodge.get_by_label("The discussion with the case-owning team leader").check()
    await lodge.get_by_label("Discussed with and approved by").select_option("tl-enf-2")
    await accessible(page)
    await lodge.get_by_role("button", name="Lodge the P30").click()
    await expect(page.locator("#outcome")).to_contain_text("The completed P30 is lodged")
    await expect(page.locator("form[action='/access/lodge']")).to_have_count(0)
    await page.get_by_role("link", name="Secondary access").first.click()
    await page.get_by_role("link", name="Reviews due").click()
    await page.get_by_label("Due by").fill((date.today() + timedelta(days=200)).isoformat())
    await page.get_by_role("button", name="Show").click()
    review = (
        page.locator("#reviews tbody tr")
        .filter(has_text="Dana Reid")
        .filter(has_text="Enforcement team 2")
    )
    await accessible(page)
    await screenshot(page, "reviews-due")
    await review.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#outcome")).to_contain_text("Review confirmed; next due")
    await sign_out(page)

    # The work the hierarchical position holds: a service request the team leader assigns
    # to it from the team's hopper (AC19).
    position = "cw-enf-3@team-special-client-1"
    intake = await commands.send(
        ReceiveServiceRequest(
            person_id=new_person(),
            person_name="Walter Withheld",
            unit_id="team-special-client-1",
        ),
        Actor(user_id="tl-special-client-1", position_id="pos-tl-special-client-1"),
    )
    item = only(await event_log.outcome(intake.message_id), WorkItemCreated)

    async def in_the_team_view() -> bool:
        view = await access_service.get("tl-special-client-1", "/me/team-view")
        return (
            view.status_code == 200
            and str(item.work_item_id) in {i["work_item_id"] for i in view.json()["items"]}
            and position in {c["position_id"] for c in view.json()["caseworkers"]}
        )

    await eventually(in_the_team_view)
    await sign_in(page, web, "tl-special-client-1", "/work-management")
    row = page.locator("#team-items tbody tr").filter(has_text=item.person_id)
    await row.get_by_label(f"Caseworker for {item.person_id}").select_option(position)
    await row.get_by_role("button", name="Assign").click()
    await expect(page.locator("#outcome")).to_contain_text("is now in")
    await sign_out(page)

    async def held() -> bool:
        view = await access_service.get("cw-enf-3", "/me/segment-list")
        return str(item.work_item_id) in {i["work_item_id"] for i in view.json()["items"]}

    await eventually(held)

    # AC15: the line manager of the TL/SM who set it up asks for the removal; AC16: the access
    # team actions it, the work goes back to the hopper, then the access goes.
    await sign_in(page, web, "ops-director", "/access/people/cw-enf-3")
    await page.get_by_text("Remove hierarchical access to Special client records team 1").click()
    await page.get_by_label("Reason for the removal").fill("Special client backlog cleared")
    await page.get_by_role("button", name="Submit the removal P30").click()
    await expect(page.locator("#outcome")).to_contain_text("P30 removal (hierarchical)")
    await accessible(page)
    await sign_out(page)
    await sign_in(page, web, "flls-1", "/access/to-action")
    await to_action(page, "Hana Ito", "Action")
    await expect(page.locator("#outcome")).to_contain_text("Work being released from")

    async def released() -> bool:
        removals = await access_service.get("flls-1", "/users/cw-enf-3/removals")
        return any(r["state"] == "released" for r in removals.json()["removals"])

    await eventually(released)
    await page.goto(f"{web.url}/access/people/cw-enf-3")
    await expect(page.locator("#removals")).to_contain_text(
        "Work released (1 item(s) moved), then access removed."
    )
    await expect(page.locator("#positions")).not_to_contain_text("Special client records team 1")
    await accessible(page)
    await screenshot(page, "removal-progress")
    moved = await allocation.get("tl-special-client-1", f"/work-items/{item.work_item_id}")
    assert moved.json()["owner_kind"] == "hopper", moved.text

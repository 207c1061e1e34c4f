"""The workview in a browser: people sign in by the identity provider's page, screen the team's
current work and update assignments by clicking; every page visited passes axe-core (WCAG 2.2
AA, no serious or critical violation); each outcome, or refusal with its rule, is on the page."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from contracts import Actor
from contracts.access import AccessGrantRecorded, ActionP30, P30Recorded, RequestHierarchicalAccess
from contracts.allocation import (
    AssignWork,
    Priority,
    ReceiveServiceRequest,
    RecordWorkerRelationship,
    StepType,
    WorkItemCreated,
)
from contracts.signoff import (
    TRANSFER_TO_SUPPORT_OFFICER,
    SaveStep,
    SendRequest,
)
from services.allocation import domain
from tests.allocation.helpers import (
    HUB_1,
    HUB_2,
    SO_HUB,
    SO_NORTH,
    TA_NORTH,
    eventually,
    get,
    new_person,
    ok,
    only,
    referral,
    step,
)
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog
from tests.web.conftest import WebServer, accessible, path_of, screenshot, sign_in

# The browser tests need Playwright (Python) and Debian's chromium; never a downloaded browser.
expect = pytest.importorskip("playwright.async_api").expect

TL_APPEALS = Actor(user_id="tl-appeals-1", position_id="pos-tl-appeals-1")

# The seed's Trusted Assessment, every mandatory question answered (SO05).
ANSWERS = {
    "what_matters": "Staying independent at home",
    "presenting_needs": "Help with shopping and meals",
    "risks": "Falls at night",
    "support_plan": "Weekly visits from a support officer",
    "progressing_to_support_officer": "Yes",
}


def row_of(page: Any, table: str, text: str) -> Any:
    return page.locator(f"#{table} tbody tr").filter(has_text=text)


async def test_al04_al06_al07_senior_officer_screens_and_assigns_a_referral(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    allocation: RunningService,
) -> None:
    triage = await referral(commands, event_log, name="Wanda Webview")
    await sign_in(page, web, "so-hub")

    # AL04: the team summary lists the teams she screens; the Hub Team's current work has the
    # referral's triage in Incoming work.
    summary = page.locator("#team-summary")
    await expect(summary).to_contain_text(domain.HUB_TEAM)
    await screenshot(page, "team-summary")
    await summary.get_by_role("link", name=domain.HUB_TEAM).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(domain.HUB_TEAM)
    row = row_of(page, "incoming-work", "Wanda Webview")
    await expect(row).to_contain_text(StepType.TRIAGE)
    await expect(page.locator("#incomplete-work")).to_be_visible()
    await expect(page.locator("#incoming-requests")).to_be_visible()
    await accessible(page)
    await screenshot(page, "team-work")

    # AL06, AL07, AL16: Update assignment from the row: find the worker by name, raise the
    # priority (offered here, from the team's current work), a note, Assign.
    await row.get_by_role("link", name="Update assignment").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Update assignment")
    await page.get_by_label("Pass to worker: find by name").fill("Ada")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_label("Ada Brooks").check()
    await expect(page.get_by_label("Priority")).to_be_visible()
    await accessible(page)
    await page.get_by_label("Priority").select_option(Priority.HIGH)
    await page.get_by_label("Note (optional)").fill("please triage today")
    await screenshot(page, "update-assignment")
    await page.get_by_role("button", name="Assign").click()

    # The outcome: back on the team's current work, what changed, and the row gone from it.
    await expect(page.locator("#outcome")).to_contain_text(
        f"{StepType.TRIAGE} is now in Ada Brooks's incoming work, priority high."
    )
    assert path_of(page) == f"/teams/{domain.HUB_TEAM}"
    await expect(row_of(page, "incoming-work", "Wanda Webview")).to_have_count(0)
    await accessible(page)
    await screenshot(page, "assigned-outcome")
    item = await get(allocation, "so-hub", f"/work-items/{triage.work_item_id}")
    assert (item["owner_id"], item["priority"]) == (HUB_1.position_id, "high")

    # AL04, AL12: the person summary has the change in its work history, with the note; from
    # the record, Update assignment offers no priority (AL07).
    await page.goto(f"{web.url}/persons/{triage.person_id}")
    history = page.locator("#work-history")
    await expect(history).to_contain_text(f"{StepType.TRIAGE} assigned")
    await expect(history).to_contain_text("Note: please triage today")
    await expect(page.locator("#current-work")).to_contain_text("Ada Brooks")
    await accessible(page)
    await screenshot(page, "person-summary")
    await page.locator("#current-work").get_by_role("link", name="Update assignment").click()
    await page.get_by_label("Pass to worker: find by name").fill("Ben")
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_label("Ben Carter")).to_be_visible()
    await expect(page.get_by_label("Priority")).to_have_count(0)
    await accessible(page)


async def test_al05_refusal_is_shown_with_its_rule_and_reason(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    allocation: RunningService,
) -> None:
    triage = await referral(commands, event_log, name="Rhys Refused")
    assessment = await step(commands, event_log, triage.person_id, StepType.TRUSTED_ASSESSMENT)
    await sign_in(page, web, "so-north", f"/teams/{domain.NORTH_TEAM}")

    row = row_of(page, "incoming-work", "Rhys Refused")
    await row.get_by_role("link", name="Update assignment").click()
    await page.get_by_label("Pass to worker: find by name").fill("Grace")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_label("Grace Mensah").check()
    await page.get_by_role("button", name="Assign").click()

    # AL05: no `Involved Worker` relationship: refused, the rule and its reason on the page.
    outcome = page.locator("#outcome")
    await expect(outcome).to_contain_text("Not done: rule AL05")
    await expect(outcome).to_contain_text("Involved Worker")
    await expect(row_of(page, "incoming-work", "Rhys Refused")).to_have_count(1)
    await accessible(page)
    await screenshot(page, "refusal-al05")
    item = await get(allocation, "so-north", f"/work-items/{assessment.work_item_id}")
    assert item["owner_kind"] == "team" and item["owner_id"] == domain.NORTH_TEAM


async def test_tr05_web_session_cookie_csrf_and_sign_out(web: WebServer, page: Any) -> None:
    # Signed out, a page sends the browser to the provider's sign-in.
    await page.goto(f"{web.url}/teams")
    await expect(page.get_by_placeholder("sub")).to_be_visible()
    await page.get_by_placeholder("sub").fill("so-south")
    await page.get_by_role("button", name="Authorize").click()
    await expect(page.locator("#signed-in-user")).to_have_text("so-south")

    # The header: the current position and the notification inbox's unread count.
    await expect(page.get_by_label("Current position")).to_contain_text(
        "Senior Officer, Wellbeing Service South Team"
    )
    await expect(page.locator("#unread-count")).to_contain_text("unread")
    await accessible(page)

    # The session cookie: an id only, HttpOnly, SameSite=Lax (Secure over TLS; this is http).
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "casework_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "so-south" not in cookie["value"]

    # A form without the session's CSRF token is refused and changes nothing.
    forged = await page.request.post(f"{web.url}/sign-out", form={"csrf_token": "forged"})
    assert forged.status == 403
    await page.reload()
    await expect(page.locator("#signed-in-user")).to_have_text("so-south")

    # Sign out: the session is gone; the next page asks for sign-in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You have signed out")
    await accessible(page)
    await page.goto(f"{web.url}/teams")
    await expect(page.get_by_placeholder("sub")).to_be_visible()


async def test_al16_add_worker_relationship_then_the_assignment_is_allowed(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    allocation: RunningService,
) -> None:
    triage = await referral(commands, event_log, name="Rosa Related")
    assessment = await step(commands, event_log, triage.person_id, StepType.TRUSTED_ASSESSMENT)
    await sign_in(page, web, "so-north", f"/persons/{triage.person_id}")

    # Worker relationships -> Add: find the worker by name, the type from the list, the
    # from-date filled in with today.
    await page.get_by_role("link", name="Add worker relationship").click()
    await page.get_by_label("Find worker by name").fill("Grace")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_label("Grace Mensah").check()
    await expect(page.get_by_label("Relationship type")).to_have_value("Involved Worker")
    today = date.today()
    await expect(page.get_by_label("Year")).to_have_value(str(today.year))
    await accessible(page)
    await page.get_by_role("button", name="Add").click()
    await expect(page.locator("#outcome")).to_contain_text(
        "Grace Mensah is recorded as Involved Worker from"
    )
    await expect(page.locator("#relationships")).to_contain_text("Grace Mensah: Involved Worker")
    await accessible(page)

    # Now the Trusted Assessment may be passed to her (AL05), from the record (no priority).
    await (
        page.locator("#current-work tbody tr")
        .filter(has_text=StepType.TRUSTED_ASSESSMENT)
        .get_by_role("link", name="Update assignment")
        .click()
    )
    await page.get_by_label("Pass to worker: find by name").fill("Grace")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Assign").click()
    await expect(page.locator("#outcome")).to_contain_text(
        f"{StepType.TRUSTED_ASSESSMENT} is now in Grace Mensah's incoming work"
    )
    item = await get(allocation, "so-north", f"/work-items/{assessment.work_item_id}")
    assert item["owner_id"] == "pos-ta-north-1"


async def test_al08_bulk_assign_previews_each_item_then_assigns_all(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    allocation: RunningService,
) -> None:
    first = await referral(commands, event_log, name="Bella Bulkfirst")
    second = await referral(commands, event_log, name="Bella Bulksecond")
    await sign_in(page, web, "so-hub", "/bulk-assign")

    await page.get_by_label("Person's name").fill("Bella Bulk")
    await page.get_by_label("Pass to worker: find by name").fill("Ben")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_label("Bella Bulkfirst").check()
    assert "Bella" not in page.url  # no personal data in URLs beyond ids
    await page.get_by_label("Bella Bulksecond").check()
    await page.get_by_label("One note for every item").fill("both to Ben")
    await accessible(page)

    # Preview assign: each item's outcome, nothing changed yet.
    await page.get_by_role("button", name="Preview assign").click()
    await expect(page.get_by_text("Would be passed")).to_have_count(2)
    await accessible(page)
    await screenshot(page, "bulk-assign-preview")
    before = await get(allocation, "so-hub", f"/work-items/{first.work_item_id}")
    assert before["owner_kind"] == "team"

    # Assign: all of them, one note for all.
    await page.get_by_role("button", name="Assign", exact=True).click()
    await expect(page.locator("#outcome")).to_contain_text("2 items passed to Ben Carter")
    await accessible(page)
    for created in (first, second):
        item = await get(allocation, "so-hub", f"/work-items/{created.work_item_id}")
        assert item["owner_id"] == "pos-hub-2"


async def requested_assessment(
    commands: CommandClient, event_log: EventLog, signoff_service: RunningService, name: str
) -> tuple[str, uuid.UUID]:
    """A Trusted Assessment with its form filled in and its mandatory request sent, by the
    people the seed names, through the edge (AL05, SO01): the person and the step."""
    triage = await referral(commands, event_log, name=name)
    assessment = await step(commands, event_log, triage.person_id, StepType.TRUSTED_ASSESSMENT)
    person, item = triage.person_id, assessment.work_item_id
    await ok(
        commands,
        event_log,
        RecordWorkerRelationship(person_id=person, worker_position_id=TA_NORTH.position_id or ""),
        SO_NORTH,
    )
    await ok(
        commands,
        event_log,
        AssignWork(person_id=person, work_item_id=item, to_position_id=TA_NORTH.position_id or ""),
        SO_NORTH,
    )

    async def with_the_assessor() -> bool:
        summary = await signoff_service.get(TA_NORTH.user_id, f"/steps/{item}")
        return summary.status_code == 200 and summary.json()["owner_id"] == TA_NORTH.position_id

    await eventually(with_the_assessor)
    await ok(
        commands, event_log, SaveStep(step_id=item, person_id=person, answers=ANSWERS), TA_NORTH
    )
    await ok(commands, event_log, SendRequest(step_id=item, person_id=person), TA_NORTH)
    return person, item


async def test_so07_management_team_returns_the_request_with_a_note(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    signoff_service: RunningService,
) -> None:
    _, item = await requested_assessment(commands, event_log, signoff_service, "Sofia Signoff")

    # SO01, SO02: the Management Team's incoming requests, titled request name + step name.
    await sign_in(page, web, "so-mgmt")
    await page.get_by_role("link", name="Sign-off requests").click()
    requests = page.locator("#signoff-requests")
    row = requests.locator("tbody tr").filter(has_text="Sofia Signoff")
    await expect(row).to_contain_text(StepType.TRUSTED_ASSESSMENT)
    await accessible(page)
    await screenshot(page, "signoff-requests")

    # SO03: the Workflow Step Summary with the answers; SO07: Returned with a note.
    await row.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(StepType.TRUSTED_ASSESSMENT)
    await expect(page.locator("main")).to_contain_text(ANSWERS["what_matters"])
    await accessible(page)
    await page.get_by_label("Returned", exact=True).check()
    await page.get_by_label("Note (with Returned, for the worker)").fill("Add the night risks")
    await screenshot(page, "step-summary")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#outcome")).to_contain_text("The request is returned to")
    await expect(page.locator("#requests")).to_contain_text("returned (note: Add the night risks)")
    await accessible(page)
    summary = await signoff_service.get(TA_NORTH.user_id, f"/steps/{item}")
    assert [r["state"] for r in summary.json()["requests"]] == ["returned"]


async def test_al10_a_team_not_screened_is_refused_with_its_rule(web: WebServer, page: Any) -> None:
    # TR05 with AL10: a Trusted Assessor does not screen the Hub Team's work; the page says so
    # and names the rule, and shows none of the team's work.
    await sign_in(page, web, "ta-north-1", f"/teams/{domain.HUB_TEAM}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "You cannot see this: rule AL10"
    )
    await expect(page.locator("#incoming-work")).to_have_count(0)
    await accessible(page)


async def hierarchical_position(commands: CommandClient, event_log: EventLog, user_id: str) -> str:
    """A hierarchical access position for an enforcement caseworker in Appeals team 1, as the
    agency's procedure grants it (AC12: completed by their TL, actioned by FLLS)."""
    recorded = await ok(
        commands,
        event_log,
        RequestHierarchicalAccess(
            user_id=user_id,
            unit_ids=["team-appeals-1"],
            agreed_with="tl-appeals-1",
            reason="Appeals needs enforcement work completed",
        ),
        Actor(user_id="tl-enf-1", position_id="pos-tl-enf-1"),
    )
    p30 = only(recorded, P30Recorded)
    actioned = await ok(
        commands,
        event_log,
        ActionP30(user_id=p30.user_id, p30_id=p30.p30_id),
        Actor(user_id="flls-1", position_id="pos-flls-1"),
    )
    return only(actioned, AccessGrantRecorded).position_id


async def test_ac17_changing_position_in_the_header(
    web: WebServer, page: Any, commands: CommandClient, event_log: EventLog
) -> None:
    appeals = await hierarchical_position(commands, event_log, "cw-enf-2")

    await sign_in(page, web, "cw-enf-2")
    switch = page.get_by_label("Current position")
    await expect(switch.locator("option")).to_have_count(2)
    await expect(switch).to_have_value("pos-cw-enf-2")
    await switch.select_option(appeals)
    await page.get_by_role("button", name="Change position").click()
    await expect(page.locator("#outcome")).to_contain_text(
        "You now act as caseworker, team-appeals-1"
    )
    await expect(page.get_by_label("Current position")).to_have_value(appeals)
    await accessible(page)


async def test_nt01_the_headers_unread_count_updates_live(
    web: WebServer, page: Any, commands: CommandClient, event_log: EventLog
) -> None:
    await sign_in(page, web, HUB_2.user_id)
    count = page.locator("#unread-count")
    await expect(count).to_contain_text("unread")
    before = int((await count.inner_text()).split()[0])

    # Work lands in her incoming work: she is told (NT01), and the header shows it without a
    # reload (it asks the web service for the count).
    triage = await referral(commands, event_log, name="Lena Live")
    await ok(
        commands,
        event_log,
        AssignWork(
            person_id=triage.person_id,
            work_item_id=triage.work_item_id,
            to_position_id=HUB_2.position_id or "",
        ),
        SO_HUB,
    )
    await page.wait_for_function(
        "n => parseInt(document.getElementById('unread-count').textContent) > n", arg=before
    )


async def test_ac18_ac19_hopper_work_assigned_and_seen_by_position(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    access_service: RunningService,
) -> None:
    appeals = await hierarchical_position(commands, event_log, "cw-enf-1")
    intake = await ok(
        commands,
        event_log,
        ReceiveServiceRequest(
            person_id=new_person(), person_name="Hugo Hopper", unit_id="team-appeals-1"
        ),
        TL_APPEALS,
    )
    person = only(intake, WorkItemCreated).person_id

    async def in_the_team_view() -> bool:
        view = await access_service.get(TL_APPEALS.user_id, "/me/team-view")
        return view.status_code == 200 and person in {i["person_id"] for i in view.json()["items"]}

    await eventually(in_the_team_view)

    # AC19: Work management, the team leader's team: assign from the hopper to a caseworker.
    await sign_in(page, web, TL_APPEALS.user_id, "/work-management")
    row = page.locator("#team-items tbody tr").filter(has_text=person)
    await expect(row).to_contain_text("hopper-team-appeals-1")
    await accessible(page)
    await screenshot(page, "work-management")
    await row.get_by_label(f"Caseworker for {person}").select_option(appeals)
    await row.get_by_role("button", name="Assign").click()
    await expect(page.locator("#outcome")).to_contain_text("is now in cw-enf-1's incoming work")
    await page.get_by_role("button", name="Sign out").click()

    async def held_by_the_caseworker() -> bool:
        listed = await access_service.get("cw-enf-1", "/me/segment-list")
        return person in {i["person_id"] for i in listed.json()["items"]}

    await eventually(held_by_the_caseworker)

    # AC18: in her primary position My service requests does not list it; the segment list
    # (every position, read-only) does; after changing position (AC17), My service requests does.
    await sign_in(page, web, "cw-enf-1", "/my-service-requests")
    await expect(page.locator("#service-requests")).not_to_contain_text(person)
    await accessible(page)
    await page.get_by_role("link", name="Segment list").click()
    await expect(page.locator("#service-requests")).to_contain_text(person)
    await expect(page.locator("main")).to_contain_text("cannot be completed from this view")
    await accessible(page)
    await screenshot(page, "segment-list")
    await page.get_by_label("Current position").select_option(appeals)
    await page.get_by_role("button", name="Change position").click()
    await page.get_by_role("link", name="My service requests").click()
    await expect(page.locator("#service-requests")).to_contain_text(person)
    await accessible(page)


async def test_al15_so07_completed_request_then_the_finished_step_in_documents(
    web: WebServer,
    page: Any,
    commands: CommandClient,
    event_log: EventLog,
    signoff_service: RunningService,
    allocation: RunningService,
) -> None:
    person, item = await requested_assessment(
        commands, event_log, signoff_service, "Dora Documented"
    )

    # SO07: the Management Team's Senior Officer marks the request Completed.
    await sign_in(page, web, "so-mgmt", f"/steps/{item}")
    await page.get_by_label("Completed").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#outcome")).to_contain_text("The request is completed")
    await expect(page.locator("#requests")).to_contain_text("completed")

    # SO03, SO04, SO06: she resumes into the sections and adds the transfer to the Generic
    # Support Officer, found by name; then finishes the step (SO05, SO08, SO09).
    await page.get_by_role("link", name="Resume").click()
    await page.get_by_role("link", name="Add next action").click()
    await page.get_by_label("Pass to worker: find by name").fill("Lucy")
    await page.get_by_role("button", name="Find").click()
    await page.get_by_label("Action type").select_option(TRANSFER_TO_SUPPORT_OFFICER)
    await page.get_by_label("Lucy Ward").check()
    await page.get_by_label("Note for the worker or team").fill("Weekly visits, starting Monday")
    await accessible(page)
    await page.get_by_role("button", name="Add and close").click()
    await expect(page.locator("#next-actions")).to_contain_text(TRANSFER_TO_SUPPORT_OFFICER)
    await expect(page.locator("#next-actions")).to_contain_text("Lucy Ward")
    await page.get_by_role("button", name="Finish").click()
    await expect(page.locator("#outcome")).to_contain_text("The step is finished")
    await accessible(page)

    async def documented() -> bool:
        record = await allocation.get("so-north", f"/persons/{person}")
        return record.status_code == 200 and bool(record.json()["documents"])

    await eventually(documented)

    # AL15: the person summary's Documents show the finished step with its answers.
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, web, "so-north", f"/persons/{person}")
    documents = page.locator("#documents")
    await expect(documents).to_contain_text(StepType.TRUSTED_ASSESSMENT)
    await expect(documents).to_contain_text(ANSWERS["support_plan"])
    await accessible(page)

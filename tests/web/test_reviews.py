"""AC22, AC09 in a browser: the reviews not answered, absence-related access past its review
date that nobody has confirmed or removed, as at a date the segment manager chooses; answered
from there (Remove sends the access through the removal, AC16), after which it is listed no
more. The unanswered review is made by choosing a date past the review's (no clock is moved)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from contracts import Actor
from contracts.access import AccessGrantRecorded, ActionP30, P30Recorded, RequestAbsenceAccess
from tests.allocation.helpers import ok, only
from tests.support.client import CommandClient, EventLog
from tests.web.conftest import WebServer, accessible, path_of, sign_in

expect = pytest.importorskip("playwright.async_api").expect

SEGMENT_MANAGER = Actor(user_id="sm-escal-comp", position_id="pos-sm-escal-comp")
ACCESS_TEAM = Actor(user_id="flls-1", position_id="pos-flls-1")
COVERING = "tl-escal-comp-1"  # Escalated complaints' team leader, covering Judicial review


async def test_ac22_reviews_not_answered_are_listed_and_answered(
    web: WebServer, page: Any, commands: CommandClient, event_log: EventLog
) -> None:
    request = RequestAbsenceAccess(
        user_id=COVERING,
        unit_ids=["team-jud-rev-1"],
        reason="Cover while the judicial review team leader is away",
        discussion_held=True,
        discussed_with="tl-jud-rev-1",
    )
    p30 = only(await ok(commands, event_log, request, SEGMENT_MANAGER), P30Recorded)
    actioned = ActionP30(user_id=COVERING, p30_id=p30.p30_id)
    grant = only(await ok(commands, event_log, actioned, ACCESS_TEAM), AccessGrantRecorded)
    assert grant.review_due_at is not None
    due = grant.review_due_at.date()

    await sign_in(page, web, SEGMENT_MANAGER.user_id, "/access")
    await page.get_by_role("link", name="Reviews not answered").click()
    assert path_of(page) == "/access/reviews/unanswered"
    rows = page.locator("#reviews tbody tr").filter(has_text="Judicial review team 1")
    # Today the review is months away: not among those unanswered.
    await expect(page.get_by_role("heading", level=1)).to_have_text("Reviews not answered")
    await expect(rows).to_have_count(0)
    await accessible(page)

    # As at ten days past its date, with nobody having answered it: listed, overdue.
    late = due + timedelta(days=10)
    await page.get_by_label("Not answered as at").fill(late.isoformat())
    await page.get_by_role("button", name="Show").click()
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(due.isoformat())
    await expect(rows).to_contain_text("Overdue")
    await expect(rows).to_contain_text("10 days overdue")
    await accessible(page)
    # The day before it fell due it is not (due, not yet unanswered).
    await page.get_by_label("Not answered as at").fill((due - timedelta(days=1)).isoformat())
    await page.get_by_role("button", name="Show").click()
    await expect(rows).to_have_count(0)
    assert due - timedelta(days=1) > date.today()

    # Answered from here: Remove; the page comes back to the same list, without it: its removal
    # P30 is with the access team (AC16 then ends the access), listed apart.
    await page.get_by_label("Not answered as at").fill(late.isoformat())
    await page.get_by_role("button", name="Show").click()
    await rows.get_by_role("button", name="Remove").click()
    await expect(page.locator("#outcome")).to_contain_text("Done")
    assert path_of(page) == "/access/reviews/unanswered"
    await expect(page.get_by_label("Not answered as at")).to_have_value(late.isoformat())
    await expect(rows).to_have_count(0)
    await expect(page.locator("#being-removed")).to_contain_text("Judicial review team 1")
    await accessible(page)

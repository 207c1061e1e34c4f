"""AL04 read one page at a time: `?limit=&offset=` on the team, worker and own current work, the
sections' totals counted in SQL, and the same scoping as the unpaged read (TR05, AL10)."""

from __future__ import annotations

from services.allocation import domain
from services.allocation.api import PAGE_LIMIT
from tests.allocation.helpers import HUB_1, SO_HUB, SO_SOUTH, get, referral
from tests.conftest import RunningService
from tests.support.client import CommandClient, EventLog

TEAM_WORK = f"/teams/{domain.HUB_TEAM}/work"


def _ids(items: list[dict[str, str]]) -> list[str]:
    return [i["work_item_id"] for i in items]


async def test_team_work_pages_join_to_the_whole_section_with_its_totals(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    for n in range(3):
        await referral(commands, event_log, name=f"Paged Person {n}")
    whole = await get(directory, SO_HUB, TEAM_WORK)
    incoming = _ids(whole["incoming_work"])
    assert len(incoming) >= 3
    assert whole["totals"]["incoming_work"] == len(incoming)
    assert whole["totals"]["incomplete_work"] == len(whole["incomplete_work"])

    pages: list[str] = []
    for offset in range(0, len(incoming), 2):
        page = await get(directory, SO_HUB, TEAM_WORK, limit="2", incoming_offset=str(offset))
        assert len(page["incoming_work"]) <= 2
        assert page["totals"] == whole["totals"]  # the totals are of the section, not the page
        pages += _ids(page["incoming_work"])
    assert pages == incoming  # in creation order, no row twice or lost

    by_priority = whole["totals"]["by_priority"]
    assert sum(p["incoming_work"] for p in by_priority.values()) == len(incoming)
    assert whole["totals"]["incoming_requests"] == len(whole["incoming_requests"])


async def test_a_page_is_at_most_the_limit_and_a_bad_limit_is_refused(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    await referral(commands, event_log, name="Capped Person")
    page = await get(directory, SO_HUB, TEAM_WORK, limit="100000")
    assert page["limit"] == PAGE_LIMIT
    assert len(page["incoming_work"]) <= PAGE_LIMIT
    for bad in ("many", "-1"):
        answer = await directory.get(SO_HUB.user_id, TEAM_WORK, limit=bad)
        assert answer.status_code == 400, answer.text
    answer = await directory.get(SO_HUB.user_id, TEAM_WORK, limit="1", offset="-5")
    assert answer.status_code == 400, answer.text


async def test_paging_keeps_the_reads_scope(
    directory: RunningService, commands: CommandClient, event_log: EventLog
) -> None:
    await referral(commands, event_log, name="Scoped Person")
    refused = await directory.get(SO_SOUTH.user_id, TEAM_WORK, limit="1")
    assert refused.status_code == 403 and refused.json()["rule"] == "AL10"
    other = await directory.get(HUB_1.user_id, f"/workers/{SO_HUB.position_id}/work", limit="1")
    assert other.status_code == 403
    mine = await get(directory, HUB_1, "/me/work", limit="1")
    assert mine["limit"] == 1 and "totals" in mine

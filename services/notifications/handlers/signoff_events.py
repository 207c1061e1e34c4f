"""Sign-off's outcomes told to people: a request arrived (NT02), a request returned (NT03), and
the prompt to record Involved Worker after a transfer (SO10, AL11)."""

from __future__ import annotations

from contracts.allocation import InvolvedWorkerPrompted
from contracts.signoff import RequestReturned, RequestSent
from services.notifications import domain
from services.notifications.handlers._notify import Handler, tell, worker_user
from services.notifications.repository import Repositories
from services.shared.transaction import HandlerContext


async def involved_worker_prompted(
    ctx: HandlerContext[InvolvedWorkerPrompted], repos: Repositories
) -> None:
    """SO10, AL11: prompt the Senior Officer who sent the transfer to record Involved Worker."""
    m = ctx.message
    notice = domain.record_involved_worker(
        work_item_id=m.work_item_id,
        person_id=m.person_id,
        worker_user_id=m.worker_user_id,
        worker_position_id=m.worker_position_id,
    )
    officer = await worker_user(repos, m.senior_officer_position_id, m.senior_officer_user_id)
    await tell(ctx, repos, notice, officer)


async def request_sent(ctx: HandlerContext[RequestSent], repos: Repositories) -> None:
    """NT02: the Senior Officers of the receiving team are told a request arrived."""
    m = ctx.message
    unit_id = await repos.people.find_unit_id(m.team)
    officers = (
        await repos.people.members_with_roles([unit_id], [domain.SENIOR_OFFICER]) if unit_id else []
    )
    notice = domain.request_arrived(
        request_id=m.request_id, person_id=m.person_id, title=m.title, team=m.team
    )
    await tell(ctx, repos, notice, officers)


async def request_returned(ctx: HandlerContext[RequestReturned], repos: Repositories) -> None:
    """NT03: the worker who completed the step is told, with the note."""
    m = ctx.message
    notice = domain.request_returned(
        request_id=m.request_id, step_id=m.step_id, person_id=m.person_id, note=m.note
    )
    await tell(ctx, repos, notice, await worker_user(repos, m.return_to_position_id))


HANDLERS: dict[type, Handler] = {
    InvolvedWorkerPrompted: involved_worker_prompted,
    RequestSent: request_sent,
    RequestReturned: request_returned,
}

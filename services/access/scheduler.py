"""The access scheduler: six-monthly reviews falling due or overdue (AC09) and, under the
`remove` policy, lapsed after a grace period (AC22); emergency grants the access team scheduled
for later (AC21); emergency P30s past their deadline (AC11). It decides through the same domain
and repositories as the handlers. `scan(work)` takes its time from the transaction, so tests
drive the clock explicitly; the task runs it periodically with the runtime's clock."""

from __future__ import annotations

import asyncio
import uuid

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.access import domain
from services.access.domain import SCHEDULER
from services.access.records import Change
from services.access.repository import Repositories
from services.shared import logs
from services.shared.runtime import ServiceRuntime
from services.shared.transaction import Transaction

log = logs.get(__name__)
SCAN_SECONDS = 60.0
GRANT_POLL_SECONDS = 1.0  # AC21: how late a scheduled emergency grant may be made at most


class ReviewPolicy(BaseSettings):
    """AC22: CASEWORK_OVERDUE_REVIEW_POLICY=escalate|remove and the grace period, in working
    days after the review fell due (DL03), before a `remove` takes the access away."""

    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    overdue_review_policy: domain.OverdueReviewPolicy = domain.OverdueReviewPolicy.ESCALATE
    overdue_review_grace_working_days: int = Field(default=10, ge=0)


async def _responsible(repos: Repositories, user_id: str) -> list[str]:
    """AC08: the primary TL/SMs of the user's primary segment answer for the review."""
    holdings = await repos.holdings.get(user_id)
    primary = holdings.primary if holdings else None
    if primary is None:
        return []
    units = await repos.holdings.units()
    managers = await repos.holdings.managers_of(domain.chain(units, primary.unit_id))
    return [u for u in managers if u != user_id]


async def _facts(repos: Repositories, work: Transaction, seed: uuid.UUID) -> domain.Facts:
    return await repos.facts(SCHEDULER, work.now, seed)


async def _apply(work: Transaction, repos: Repositories, change: Change | None) -> None:
    if change is None:
        return
    await repos.save(change)
    for event in change.events:
        work.emit(event)


async def grant_scheduled(work: Transaction, repos: Repositories | None = None) -> int:
    """AC21: the emergency grants whose time scale has come, made as the access team answered
    (the P30 names who answered); one that is no longer possible is refused with the rule."""
    repos = repos or Repositories.sql(work)
    done = 0
    for record in await repos.p30s.scheduled_due(work.now):
        user = await repos.holdings.get(record.user_id, lock=True)
        (unit_id,) = record.unit_ids
        change = domain.grant_scheduled(
            await _facts(repos, work, uuid.uuid5(record.p30_id, "scheduled grant")),
            record,
            user,
            absent=await repos.holdings.get(record.absent_user_id),
            holders=await repos.holdings.unit_holders(unit_id),
        )
        await _apply(work, repos, change)
        done += 1
    return done


async def lapse_reviews(
    work: Transaction, policy: ReviewPolicy, repos: Repositories | None = None
) -> int:
    """AC22: under the `remove` policy, an escalated review still unanswered after the grace
    period is removed through the AC16 release, with its own removal P30; never renewed."""
    if policy.overdue_review_policy is not domain.OverdueReviewPolicy.REMOVE:
        return 0
    repos = repos or Repositories.sql(work)
    lapsed = 0
    for grant in await repos.holdings.reviews_to_lapse():
        assert grant.review_due_at is not None
        if not domain.lapse_due(
            policy.overdue_review_policy,
            grant.review_due_at,
            work.now,
            grace_working_days=policy.overdue_review_grace_working_days,
            overdue_flagged=grant.review_overdue_flagged,
        ):
            continue
        user = await repos.holdings.get(grant.user_id, lock=True)
        if user is None:
            continue
        change = user.lapse_review(
            await _facts(repos, work, uuid.uuid5(grant.grant_id, "lapsed review")),
            grant,
            grace_working_days=policy.overdue_review_grace_working_days,
        )
        if change is None:
            continue  # already being removed by someone: that removal stands
        await _apply(work, repos, change)
        lapsed += 1
    return lapsed


async def scan(
    work: Transaction, policy: ReviewPolicy | None = None, repos: Repositories | None = None
) -> int:
    """Flags what fell due as of `work.now` (each flag once), makes the emergency grants whose
    time has come and removes lapsed reviews under the `remove` policy. Returns how many."""
    policy = policy or ReviewPolicy()
    repos = repos or Repositories.sql(work)
    flagged = 0
    for grant in await repos.holdings.reviews_to_flag(work.now + domain.REVIEW_NOTICE):
        assert grant.review_due_at is not None
        flag = domain.review_flag(
            grant.review_due_at,
            work.now,
            due_flagged=grant.review_due_flagged,
            overdue_flagged=grant.review_overdue_flagged,
        )
        if flag is None:
            continue
        responsible = await _responsible(repos, grant.user_id)
        escalate = (
            [m for m in [await repos.holdings.line_manager(r) for r in responsible] if m]
            if flag == "overdue"
            else []
        )
        change = domain.review_notice(grant, flag, responsible=responsible, escalate_to=escalate)
        await _apply(work, repos, change)
        flagged += 1
    for record in await repos.p30s.emergencies_overdue(work.now):
        assert record.deadline is not None
        if not domain.p30_overdue(record.deadline, work.now, flagged=record.overdue_flagged):
            continue
        escalate_to = await repos.holdings.line_manager(record.requested_by)
        await _apply(work, repos, domain.emergency_p30_overdue(record, escalate_to=escalate_to))
        flagged += 1
    flagged += await grant_scheduled(work, repos)
    flagged += await lapse_reviews(work, policy, repos)
    return flagged


async def run(runtime: ServiceRuntime) -> None:
    """The periodic task (ServiceSpec.tasks): the whole scan every SCAN_SECONDS and, between
    scans, the scheduled emergency grants every GRANT_POLL_SECONDS, so that a grant is made
    close to the time the access team gave (AC21)."""
    policy = ReviewPolicy()
    loop = asyncio.get_running_loop()
    next_scan = loop.time()
    while True:
        try:
            async with runtime.transaction() as work:
                if loop.time() >= next_scan:
                    next_scan = loop.time() + SCAN_SECONDS
                    await scan(work, policy)
                else:
                    await grant_scheduled(work)
        except Exception:
            log.exception("review and P30 scan failed; retrying at the next tick")
        await asyncio.sleep(GRANT_POLL_SECONDS)

"""Audit that cannot be rewritten (issue 11): P30s, grants and removals are journaled append-only
with a hash chain, and verification finds a record changed by hand, a journal entry changed or
removed, and a record changed with the journal bypassed. Against the real PostgreSQL, with the
access service applying real P30s actioned by the access team (AC20)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from contracts.access import RequestAbsenceAccess
from tests.access.conftest import AccessService, Org
from tests.support.infra import Infra


async def _verify(access: AccessService) -> dict[str, Any]:
    response = await access.get("operator", "/audit/verify")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def by_hand(infra: Infra) -> AsyncIterator[asyncpg.Connection]:
    """Someone at a psql prompt with the administrator's credentials."""
    conn = await asyncpg.connect(
        infra.database_url.replace("postgresql+asyncpg://", "postgresql://"),
        server_settings={"application_name": "psql"},
    )
    yield conn
    await conn.close()


async def _granted_p30(org: Org) -> str:
    outcome = await org.granted(
        RequestAbsenceAccess(
            user_id=org.id("tl-enf-3"),
            unit_ids=[org.id("team-enf-1")],
            reason="audit: cover for absence",
            discussion_held=True,
            discussed_with=org.id("tl-enf-1"),
        ),
        "sm-enf",
    )
    assert outcome.rejection is None, outcome.rejection
    return str(outcome.sent.message_id)


async def test_the_journal_of_real_p30s_verifies_and_is_for_operators_only(
    access: AccessService, org: Org
) -> None:
    await _granted_p30(org)
    verified = await _verify(access)
    assert verified["findings"] == [] and verified["intact"] is True
    assert int(verified["entries"]) >= 3  # the request, its actioning and the grant at least
    assert (await access.get("sm-enf", "/audit/verify")).status_code == 403


async def test_the_journal_refuses_updates_deletes_and_truncation(
    access: AccessService, by_hand: asyncpg.Connection
) -> None:
    for statement in (
        "update access.audit_journal set record_id = 'x'",
        "delete from access.audit_journal",
        "truncate access.audit_journal",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await by_hand.execute(statement)


async def test_a_p30_changed_by_hand_is_found(
    access: AccessService, org: Org, by_hand: asyncpg.Connection
) -> None:
    await _granted_p30(org)
    p30_id = await by_hand.fetchval(
        "select p30_id::text from access.p30s order by recorded_at desc limit 1"
    )
    await by_hand.execute(
        "update access.p30s set reason = 'rewritten' where p30_id = $1::uuid", p30_id
    )
    findings = (await _verify(access))["findings"]
    assert any(p30_id in f and "written outside the access service (psql)" in f for f in findings)


async def test_a_record_changed_with_the_journal_bypassed_and_a_changed_entry_are_found(
    access: AccessService, org: Org, by_hand: asyncpg.Connection
) -> None:
    await _granted_p30(org)
    async with by_hand.transaction():
        await by_hand.execute("set local session_replication_role = replica")  # no triggers
        grant_id = await by_hand.fetchval(
            "select grant_id::text from access.grants order by granted_at desc limit 1"
        )
        await by_hand.execute(
            "update access.grants set position_id = 'pos-elsewhere' where grant_id = $1::uuid",
            grant_id,
        )
        seq = await by_hand.fetchval("select min(seq) from access.audit_journal")
        await by_hand.execute(
            """update access.audit_journal set "row" = "row" || '{"reason": "x"}' where seq = $1""",
            seq,
        )
    findings = [str(f) for f in (await _verify(access))["findings"]]
    assert any(grant_id in f and "differs from its latest journal entry" in f for f in findings)
    assert any(f.startswith(f"entry {seq} ") and "content changed" in f for f in findings)

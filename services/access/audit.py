"""Verifying the audit journal of P30s, grants and removals (issue 11: audit that cannot be
rewritten; migration access_0004 writes it).

Three things are checked: every entry's hash is the SHA-256 of the previous entry's hash and
its own content, so no entry can be changed, removed or inserted without breaking the chain;
every record is equal to its latest entry, so a record changed with the journal bypassed shows;
and every entry was written by the access service itself, so a change made by hand shows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

GENESIS = "0" * 64
JOURNALED = {"p30s": "p30_id", "grants": "grant_id", "releases": "release_id"}


@dataclass(frozen=True)
class Entry:
    seq: int
    record_kind: str
    record_id: str
    row_text: str  # the row as the database rendered it when the entry was written
    application: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Finding:
    seq: int | None
    record: str
    problem: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "record"
        return f"{where} ({self.record}): {self.problem}"


def entry_hash(prev_hash: str, record_kind: str, record_id: str, row_text: str) -> str:
    content = f"{prev_hash}|{record_kind}|{record_id}|{row_text}"
    return hashlib.sha256(content.encode()).hexdigest()


def verify_chain(entries: Iterable[Entry], writer: str) -> list[Finding]:
    """Findings in the journal itself, in order (pure)."""
    findings: list[Finding] = []
    previous = GENESIS
    for entry in entries:
        record = f"{entry.record_kind} {entry.record_id}"
        if entry.prev_hash != previous:
            findings.append(
                Finding(entry.seq, record, "chain broken: an entry before it is gone or changed")
            )
        if entry.hash != entry_hash(
            entry.prev_hash, entry.record_kind, entry.record_id, entry.row_text
        ):
            findings.append(Finding(entry.seq, record, "content changed after it was written"))
        if entry.application != writer:
            findings.append(
                Finding(
                    entry.seq,
                    record,
                    f"written outside the {writer} service ({entry.application or 'unnamed'})",
                )
            )
        previous = entry.hash
    return findings


async def verify(conn: AsyncConnection, schema: str = "access") -> list[Finding]:
    """Loads the journal and the records and returns every finding (none: the audit holds)."""
    rows = await conn.execute(
        sa.text(
            f'select seq, record_kind, record_id, "row"::text as row_text, application, '
            f"prev_hash, hash from {schema}.audit_journal order by seq"
        )
    )
    entries = [Entry(**row._mapping) for row in rows]
    findings = verify_chain(entries, writer=schema)
    for table, key in JOURNALED.items():
        # The latest entry read back into the table's own row type: compared as values, not as
        # text, so the reading session's time zone does not matter.
        changed = await conn.execute(
            sa.text(
                f"""
                select t.{key}::text from {schema}.{table} t
                left join lateral (
                    select j."row" from {schema}.audit_journal j
                    where j.record_kind = :kind and j.record_id = t.{key}::text
                    order by j.seq desc limit 1
                ) latest on true
                where latest."row" is null
                   or jsonb_populate_record(null::{schema}.{table}, latest."row") is distinct from t
                """
            ),
            {"kind": table},
        )
        findings += [
            Finding(None, f"{table} {record_id}", "differs from its latest journal entry")
            for (record_id,) in changed
        ]
    return findings

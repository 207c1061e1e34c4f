"""access: the audit journal, append-only and hash-chained, of P30s, grants and removals

Every insert or update of a P30 record, a grant or a removal (release) appends the new row to
`audit_journal` (a trigger, so no write path can forget it), with who wrote it (the database
role and the application) and the SHA-256 of the previous entry: a correction is a new entry,
never a changed one. Updating, deleting or truncating the journal is refused.
`services/access/audit.py` verifies the chain and that each record is its latest entry.

Revision ID: access_0004
Revises: access_0003
"""

from alembic import op

revision = "access_0004"
down_revision = "access_0003"
branch_labels = None
depends_on = None
SCHEMA = "access"
JOURNALED = ("p30s", "grants", "releases")


_JOURNAL = [
    f"""
    create table {SCHEMA}.audit_journal (
        seq bigint generated always as identity primary key,
        recorded_at timestamptz not null default clock_timestamp(),
        record_kind text not null,
        record_id text not null,
        operation text not null,
        "row" jsonb not null,
        written_by text not null,
        application text not null,
        prev_hash text not null,
        hash text not null
    )
    """,
    f"""
    create index ix_access_audit_journal_record
        on {SCHEMA}.audit_journal (record_kind, record_id, seq)
    """,
    f"""
    create function {SCHEMA}.audit_journal_append() returns trigger
    language plpgsql as $$
    declare
        previous text;
        body jsonb := to_jsonb(new);
        id text := body ->> tg_argv[0];
        application text := coalesce(current_setting('application_name', true), '');
    begin
        -- One chain per schema: entries are appended one at a time, in commit order.
        perform pg_advisory_xact_lock(hashtext('audit:' || tg_table_schema));
        select j.hash into previous
            from {SCHEMA}.audit_journal j order by j.seq desc limit 1;
        previous := coalesce(previous, repeat('0', 64));
        insert into {SCHEMA}.audit_journal (
            record_kind, record_id, operation, "row", written_by, application, prev_hash, hash
        ) values (
            tg_table_name, id, tg_op, body, current_user, application, previous,
            encode(sha256(convert_to(
                previous || '|' || tg_table_name || '|' || id || '|' || body::text, 'UTF8'
            )), 'hex')
        );
        return new;
    end $$
    """,
    f"""
    create function {SCHEMA}.audit_journal_refuse() returns trigger
    language plpgsql as $$
    begin
        raise exception 'the audit journal is append-only: % refused', tg_op
            using errcode = 'insufficient_privilege';
    end $$
    """,
    f"""
    create trigger audit_journal_append_only
        before update or delete on {SCHEMA}.audit_journal
        for each row execute function {SCHEMA}.audit_journal_refuse()
    """,
    f"""
    create trigger audit_journal_no_truncate
        before truncate on {SCHEMA}.audit_journal
        for each statement execute function {SCHEMA}.audit_journal_refuse()
    """,
]


def upgrade() -> None:
    for statement in _JOURNAL:
        op.execute(statement)
    keys = {"p30s": "p30_id", "grants": "grant_id", "releases": "release_id"}
    for table in JOURNALED:
        op.execute(
            f"""
            create trigger {table}_journaled
                after insert or update on {SCHEMA}.{table}
                for each row execute function {SCHEMA}.audit_journal_append('{keys[table]}')
            """
        )
        # What existed before the journal is its first entry, so verification starts whole.
        op.execute(f"update {SCHEMA}.{table} set {keys[table]} = {keys[table]}")


def downgrade() -> None:
    for table in JOURNALED:
        op.execute(f"drop trigger {table}_journaled on {SCHEMA}.{table}")
    op.execute(f"drop table {SCHEMA}.audit_journal")
    op.execute(f"drop function {SCHEMA}.audit_journal_append()")
    op.execute(f"drop function {SCHEMA}.audit_journal_refuse()")

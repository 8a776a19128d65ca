"""The audit trail as a table of the library, so every process and machine given the library's URL
appends to one trail and reads all of it (before, each process appended to its own DATA_DIR/audit.jsonl;
voxclone.audit imports such a file the first time it is opened on its machine).

Rows are only ever added: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), so a mistake
in code or at an SQL prompt cannot rewrite the trail. They guard against accidents, not against whoever
owns the table (README "Audit log" says how to make it append-only for voxclone's own role)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

_REFUSED = "the audit trail is append-only"
_POSTGRESQL = (
    f"""CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{_REFUSED}'; END $$""",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
)
_SQLITE = tuple(
    f"CREATE TRIGGER audit_no_{change.lower()} BEFORE {change} ON audit BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END"
    for change in ("UPDATE", "DELETE")
)


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("audit_by_time", "audit", ["time", "id"])
    for statement in _POSTGRESQL if op.get_context().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)

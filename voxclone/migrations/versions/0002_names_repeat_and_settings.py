"""Names may repeat, as on ElevenLabs (ids tell voices apart); each voice keeps its settings (speed,
and ElevenLabs' voice settings). Names are still looked up without regard to case."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

_COLUMNS = (
    "id, name, engine, category, params, labels, description, created_at, status, progress, error, version, scores"
)
_V2 = (
    "id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE, engine TEXT NOT NULL, category TEXT NOT NULL, "
    "params TEXT NOT NULL, labels TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, "
    "status TEXT NOT NULL, progress REAL NOT NULL, error TEXT, version INTEGER NOT NULL, scores TEXT NOT NULL, "
    "settings TEXT NOT NULL DEFAULT '{}'"
)


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        # SQLite cannot drop a UNIQUE constraint: rebuild the table, copying every voice.
        op.execute(f"CREATE TABLE voices_v2 ({_V2})")
        op.execute(f"INSERT INTO voices_v2 ({_COLUMNS}) SELECT {_COLUMNS} FROM voices")
        op.execute("DROP TABLE voices")
        op.execute("ALTER TABLE voices_v2 RENAME TO voices")
        op.execute("CREATE INDEX voices_by_name ON voices (name)")  # the column's NOCASE collation applies
        return
    op.drop_constraint("voices_name_key", "voices", type_="unique")
    op.add_column("voices", sa.Column("settings", sa.Text, nullable=False, server_default="{}"))
    op.create_index("voices_by_name", "voices", [sa.text("lower(name)")])

"""The original voices table (SQLite libraries from before versioning have it, with user_version 0)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

# As voxclone 0.1 wrote it.
_V1 = (
    "id TEXT PRIMARY KEY",
    "name TEXT NOT NULL UNIQUE COLLATE NOCASE",
    "engine TEXT NOT NULL",
    "category TEXT NOT NULL",
    "params TEXT NOT NULL",
    "labels TEXT NOT NULL",
    "description TEXT NOT NULL",
    "created_at REAL NOT NULL",
    "status TEXT NOT NULL",
    "progress REAL NOT NULL",
    "error TEXT",
    "version INTEGER NOT NULL",
    "scores TEXT NOT NULL",
)


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute(f"CREATE TABLE IF NOT EXISTS voices ({', '.join(_V1)})")
        return
    op.create_table(
        "voices",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        *(
            sa.Column(name, sa.Text, nullable=False)
            for name in ("engine", "category", "params", "labels", "description")
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("scores", sa.Text, nullable=False),
    )

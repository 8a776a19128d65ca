"""A running job's checkpoint files, kept with the job: a worker on any machine that takes the job over
(its first worker died) resumes from them instead of starting again. Removed when the job ends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "job_checkpoints",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )

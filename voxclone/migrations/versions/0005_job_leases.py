"""Jobs are claimed by a worker for a lease it renews while it runs: a dead worker's job is taken over
by another when its lease runs out."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("worker", sa.Text))
    op.add_column("jobs", sa.Column("lease_until", sa.Float))
    op.create_index("jobs_by_status", "jobs", ["status", "created_at"])

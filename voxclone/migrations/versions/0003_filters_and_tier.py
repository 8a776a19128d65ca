"""A voice's filter chain (applied after any engine) and the cloning tier it speaks with. Before this, a
cloned voice kept its filters inside its engine params, as `post`: they move into the chain."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def _filters_from_post(post: dict[str, Any]) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if "shape" in post:
        filters.append({"kind": "shape", **post["shape"]})
    if "eq_db" in post:
        filters.append({"kind": "equaliser", "gains_db": post["eq_db"]})
    return filters


def upgrade() -> None:
    op.add_column("voices", sa.Column("filters", sa.Text, nullable=False, server_default="[]"))
    op.add_column("voices", sa.Column("tier", sa.Text, nullable=False, server_default=""))
    db = op.get_bind()
    for voice_id, params_json in db.execute(sa.text("SELECT id, params FROM voices")).fetchall():
        params = json.loads(params_json)
        if "post" in params:
            filters = _filters_from_post(params.pop("post"))
            db.execute(
                sa.text("UPDATE voices SET params = :params, filters = :filters, tier = 'instant' WHERE id = :id"),
                {"params": json.dumps(params), "filters": json.dumps(filters), "id": voice_id},
            )

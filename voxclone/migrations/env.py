"""Alembic's environment: run on the connection voxclone.migrations.upgrade passes (inside its
transaction), or, for `alembic` run by hand, on VOXCLONE_DATABASE_URL (default: the data dir's SQLite)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection)
    with context.begin_transaction():  # already in upgrade()'s transaction: this adds none
        context.run_migrations()
else:
    from sqlalchemy import create_engine

    from voxclone.settings import load_settings

    engine = create_engine(load_settings().db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as own:
        context.configure(connection=own)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()

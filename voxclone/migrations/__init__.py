"""The library's schema history, as Alembic revisions (voxclone/migrations/versions): one per change,
never edited once released. Opening a Database runs the ones it has not seen, all in one transaction
that holds the write lock (SQLite) or an advisory lock (PostgreSQL), so two processes starting at once
never both migrate, and a crash leaves the old schema or the new one with every voice in it.

Libraries from before Alembic numbered their SQLite schema in `PRAGMA user_version` (0 to 3); they are
stamped at the revision that matches and upgraded from there. Afterwards user_version is set past 3, so
an older voxclone refuses the file instead of writing to a schema it does not know.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, inspect, text

if TYPE_CHECKING:
    from ..database import Database

# user_version of a pre-Alembic SQLite library -> the revision that left it so.
_LEGACY = {1: "0001", 2: "0002", 3: "0003"}
_AFTER_LEGACY = 4  # user_version once Alembic owns the schema: voxclone before it knew at most 3
_LOCK = 0x766F78  # PostgreSQL advisory lock key for migrations ("vox")


def config() -> Config:
    """Alembic's configuration for voxclone's revisions (for `alembic` commands run by hand, too)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision this voxclone knows; RuntimeError if it is newer."""
    alembic = config()
    script = ScriptDirectory.from_config(alembic)
    with database.write() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        else:
            _adopt_legacy_sqlite(connection, script)
        current = MigrationContext.configure(connection).get_current_heads()
        unknown = [rev for rev in current if _revision(script, rev) is None]
        if unknown:
            raise RuntimeError(
                f"the voice library was written by a newer voxclone (schema {unknown[0]}, this one knows {script.get_current_head()})"
            )
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "head")
        if database.dialect == "sqlite":
            connection.exec_driver_sql(f"PRAGMA user_version = {_AFTER_LEGACY}")


def _revision(script: ScriptDirectory, revision: str) -> object | None:
    try:
        return script.get_revision(revision)
    except CommandError:
        return None


def _adopt_legacy_sqlite(connection: Connection, script: ScriptDirectory) -> None:
    """Stamp a library made before Alembic at the revision its user_version stands for."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" in tables:
        return
    found = int(connection.exec_driver_sql("PRAGMA user_version").scalar_one())
    if found > max(_LEGACY):
        raise RuntimeError(
            f"the voice library was written by a newer voxclone (schema {found}, this one knows {script.get_current_head()})"
        )
    # user_version 0 is either a new file or the original table from before versioning.
    legacy = _LEGACY.get(found) or ("0001" if "voices" in tables else None)
    if legacy is not None:
        MigrationContext.configure(connection).stamp(script, legacy)

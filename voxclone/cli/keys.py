"""`voxclone keys create|list|revoke`: manage the API keys file (keys are stored as digests)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..auth import KeySource
from ..database import Database
from ..key_store import open_keys
from .common import config_option, data_dir_option, friendly_errors, settings_from


@contextmanager
def _keys_file(config_file: Path | None, data_dir: Path | None) -> Iterator[KeySource]:
    """The library's keys: its keys file, or its shared database's."""
    settings = settings_from(config_file, data_dir)
    database = Database(settings.db_url)
    try:
        yield open_keys(settings, database)
    finally:
        database.close()


@click.group()
def keys() -> None:
    """Manage API keys. Any key turns authentication on."""


@keys.command()
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option(
    "--scope",
    type=click.Choice(["speak", "manage"]),
    default="speak",
    show_default=True,
    help="speak: synthesise and list voices; manage: also clone, edit and delete voices.",
)
@data_dir_option
@config_option
@friendly_errors
def create(name: str, scope: str, data_dir: Path | None, config_file: Path | None) -> None:
    """Create a key and print it once (it is stored only as a digest)."""
    with _keys_file(config_file, data_dir) as store:
        key, record = store.create(name, scope)  # type: ignore[arg-type]
    click.echo(key)
    click.echo(
        f"created key {record.id} ({name}, scopes: {', '.join(record.scopes)}) in {store.where}; it is shown only now",
        err=True,
    )


@keys.command(name="list")
@data_dir_option
@config_option
@friendly_errors
def list_keys(data_dir: Path | None, config_file: Path | None) -> None:
    """List keys (ids, names, scopes; never the keys)."""
    with _keys_file(config_file, data_dir) as store:
        records = store.load()
    for r in records:
        created = datetime.datetime.fromtimestamp(r.created_at, datetime.UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{r.id}  {r.name}  {','.join(r.scopes)}  {created}")


@keys.command()
@click.argument("key_id")
@data_dir_option
@config_option
@friendly_errors
def revoke(key_id: str, data_dir: Path | None, config_file: Path | None) -> None:
    """Revoke a key by its id (from `voxclone keys list`)."""
    with _keys_file(config_file, data_dir) as store:
        record = store.revoke(key_id)
    click.echo(f"revoked key {record.id} ({record.name})", err=True)

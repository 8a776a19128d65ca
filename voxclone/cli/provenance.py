"""`voxclone detect` and `voxclone audit`: look for the watermark in files, read the audit log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..audit import AuditLog
from ..database import Database
from ..errors import VoxcloneError
from ..provenance import Detection
from ..runtime import Runtime
from .common import config_option, data_dir_option, friendly_errors, settings_from


def _describe(path: Path, found: Detection) -> str:
    if not found.watermarked:
        return f"{path}: not watermarked (score {found.score:.1f}, threshold {found.threshold:.1f})"
    origin = (
        f"made here by voice {found.voice_name or '(deleted)'} [{found.voice_id}] on {found.day}"
        if found.voice_id
        else "not made by this installation, or too little of it to tell which voice"
    )
    return f"{path}: watermarked (confidence {found.confidence:.6f}, score {found.score:.1f}); {origin}"


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, as POST /v1/watermark/detect answers.")
@data_dir_option
@config_option
def detect(files: tuple[Path, ...], as_json: bool, data_dir: Path | None, config_file: Path | None) -> None:
    """Tell whether each audio FILE carries voxclone's watermark, and which voice of this installation made it."""
    runtime = Runtime(settings_from(config_file, data_dir))
    failed = 0
    try:
        for path in files:
            try:
                found = runtime.provenance.detect(path.read_bytes())
            except VoxcloneError as e:
                failed += 1
                click.echo(f"{path}: {e}", err=True)
                continue
            click.echo(json.dumps({"file": str(path), **found.json()}) if as_json else _describe(path, found))
    finally:
        runtime.close()
    if failed:
        raise SystemExit(1)


@click.command()
@click.option(
    "--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Only entries from this day (UTC) on."
)
@click.option(
    "--event", "events", multiple=True, help="Only these events (voice.created, voice.deleted, consent.refused...)."
)
@click.option("--json", "as_json", is_flag=True, help="The entries as stored: one JSON object per line.")
@data_dir_option
@config_option
@friendly_errors
def audit(
    since: object, events: tuple[str, ...], as_json: bool, data_dir: Path | None, config_file: Path | None
) -> None:
    """Print the audit log: voices created and deleted, consent accepted and refused (oldest first)."""
    settings = settings_from(config_file, data_dir)
    start = time.mktime(since.timetuple()) - time.timezone if since is not None else 0.0  # type: ignore[attr-defined]
    database = Database(settings.db_url)
    try:
        for entry in AuditLog(database, legacy_file=settings.audit_path).entries(since=start):
            if not events or entry.event in events:
                click.echo(json.dumps(entry.json()) if as_json else entry.line())
    finally:
        database.close()

"""`voxclone models list|pull|rm`: the weights engines need that do not ship on PyPI."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from .. import models
from ..weights import ModelFile
from .common import config_option, data_dir_option, friendly_errors, model_path_option, settings_from


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return "?"


@click.group(name="models")
def models_group() -> None:
    """List, download and remove model weights (Bark, XTTS-v2, OpenVoice...)."""


@models_group.command(name="list")
@model_path_option
@data_dir_option
@config_option
@friendly_errors
def list_models(model_paths: tuple[str, ...], data_dir: Path | None, config_file: Path | None) -> None:
    """Every engine's models: whether their weights are here, their size and licence."""
    settings = settings_from(config_file, data_dir, model_paths=model_paths)
    header = ("NAME", "ENGINE", "STATE", "SIZE", "LICENCE", "WHERE")
    rows = []
    for state in models.states(settings):
        where = str(state.folder) if state.present or not state.managed else f"`{state.spec.fix()}`"
        size = models.disk_size(state.folder) if state.present else state.spec.size
        status = "present" if state.present else "missing"
        rows.append((state.spec.name, state.spec.engine, status, _size(size), state.spec.licence, where))
    for engine, engine_state, todo in models.engines_without_weights(settings):
        rows.append((engine, engine, engine_state, "-", "-", todo))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for state in models.states(settings):
        if state.spec.notice:
            click.echo(f"\n{state.spec.name}: {state.spec.notice}")


def _bar(item: ModelFile) -> models.Progress:
    bar = tqdm(total=item.size, desc=item.path, unit="B", unit_scale=True, unit_divisor=1024, leave=True)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update


@models_group.command()
@click.argument("name")
@click.option(
    "--unverified", is_flag=True, help="Fetch files this release pins no SHA-256 for (recorded, then checked)."
)
@data_dir_option
@config_option
@friendly_errors
def pull(name: str, unverified: bool, data_dir: Path | None, config_file: Path | None) -> None:
    """Download model NAME into VOXCLONE_MODEL_DIR (resumable; checked against the pinned SHA-256)."""
    settings = settings_from(config_file, data_dir)
    spec = models.spec(settings, name)
    click.echo(f"{spec.name}: {spec.description} (licence: {spec.licence})", err=True)
    if spec.notice:
        click.echo(f"note: {spec.notice}", err=True)
    folder = models.pull(settings, name, unverified=unverified, progress=_bar)
    click.echo(f"{name} is ready in {folder}", err=True)


@models_group.command()
@click.argument("name")
@data_dir_option
@config_option
@friendly_errors
def rm(name: str, data_dir: Path | None, config_file: Path | None) -> None:
    """Delete the downloaded weights of model NAME."""
    freed = models.remove(settings_from(config_file, data_dir), name)
    click.echo(f"removed {name} ({_size(freed)} freed)", err=True)

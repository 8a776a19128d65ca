"""Options and helpers shared by CLI commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import VoxcloneError
from ..settings import Settings, load_settings

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Voice library and cache folder (default: VOXCLONE_DATA_DIR or the per-user data dir).",
)
config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A TOML settings file (see README); environment variables override it.",
)

model_path_option = click.option(
    "--model-path",
    "model_paths",
    multiple=True,
    metavar="NAME=PATH",
    help="Weights of model NAME copied in by hand, in folder PATH (repeatable; VOXCLONE_MODEL_PATHS).",
)


def settings_from(config_file: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if overrides.get("model_paths"):
        overrides["model_paths"] = ",".join(overrides["model_paths"])
    else:
        overrides.pop("model_paths", None)
    try:
        return load_settings(config_file, **overrides)
    except (ValueError, OSError) as e:
        raise click.ClickException(f"bad settings: {e}") from e


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Domain errors become a one-line message and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VoxcloneError as e:
            raise click.ClickException(str(e)) from e

    return wrapper

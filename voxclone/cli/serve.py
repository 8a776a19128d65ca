"""`voxclone serve`: run the HTTP server."""

from __future__ import annotations

from pathlib import Path

import click

from .common import config_option, data_dir_option, friendly_errors, settings_from


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@data_dir_option
@config_option
@click.option("--lazy", is_flag=True, help="Load models on first use instead of at start-up.")
@friendly_errors
def serve(host: str, port: int, data_dir: Path | None, config_file: Path | None, lazy: bool) -> None:
    """Start the speech server."""
    import uvicorn

    from ..server import create_app

    overrides = {"preload": False} if lazy else {}
    settings = settings_from(config_file, data_dir, **overrides)
    app = create_app(settings)
    click.echo(f"voxclone serving on http://{host}:{port} (data: {settings.data_dir})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, ws="websockets-sansio")

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
@click.option("--allow-public", is_flag=True, help="Listen on a non-loopback address even with no API keys.")
@friendly_errors
def serve(host: str, port: int, data_dir: Path | None, config_file: Path | None, lazy: bool, allow_public: bool) -> None:
    """Start the speech server."""
    import uvicorn

    from ..server import create_app
    from ..server.app import key_ring

    overrides: dict[str, object] = {"preload": False} if lazy else {}
    if allow_public:
        overrides["allow_public_without_keys"] = True
    settings = settings_from(config_file, data_dir, **overrides)
    keys = key_ring(settings)
    if not keys.enabled and not _is_loopback(host) and not settings.allow_public_without_keys:
        raise click.ClickException(
            f"refusing to listen on {host} with no API keys: anyone could use this server. Create a key "
            "(`voxclone keys create --name me --scope manage`), set VOXCLONE_API_KEYS, or pass --allow-public"
        )
    auth = f"on ({len(keys)} keys)" if keys.enabled else "OFF (no API keys configured; loopback only)"
    app = create_app(settings)
    click.echo(f"voxclone serving on http://{host}:{port} (data: {settings.data_dir}; authentication {auth})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, ws="websockets-sansio")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""`voxclone serve`: run the HTTP server."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..settings import SECRET_SETTINGS, Settings
from .common import config_option, data_dir_option, friendly_errors, model_path_option, settings_from

if TYPE_CHECKING:
    from ..auth import KeyRing
    from ..oidc import TokenVerifier


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@data_dir_option
@config_option
@click.option("--lazy", is_flag=True, help="Load models on first use instead of at start-up.")
@click.option(
    "--allow-public",
    is_flag=True,
    help="Serve with no API keys beyond loopback: on a non-loopback address, or to visitors through a proxy or tunnel.",
)
@click.option(
    "--root-path",
    default=None,
    metavar="PATH",
    help="Path prefix the server is reached under through a proxy, e.g. /voice (VOXCLONE_ROOT_PATH).",
)
@model_path_option
@click.option(
    "--allow-downloads",
    is_flag=True,
    help="Download missing model weights in the background (else only `voxclone models pull` does).",
)
@click.option(
    "--ray",
    "on_ray",
    is_flag=True,
    help="Serve on Ray Serve (the `scale` extra): start a Ray cluster, or join RAY_ADDRESS's, with synthesis and enrolment replicas.",
)
@click.option(
    "--replicas", default=2, show_default=True, type=click.IntRange(1), help="With --ray: synthesis replicas."
)
@click.option(
    "--max-replicas",
    default=None,
    type=click.IntRange(1),
    help="With --ray: autoscale synthesis replicas up to this many.",
)
@click.option(
    "--enrolment-replicas", default=1, show_default=True, type=click.IntRange(1), help="With --ray: enrolment replicas."
)
@click.option(
    "--gpus-per-replica",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --ray: GPUs each synthesis replica holds (1 for Bark, XTTS or OpenVoice on GPUs; Kokoro and Piper run on the CPU).",
)
@click.option(
    "--cpus-per-enrolment-replica",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --ray: CPUs Ray reserves for each enrolment replica (its deep fits use that many threads).",
)
@click.option(
    "--api-replicas", default=1, show_default=True, type=click.IntRange(1), help="With --ray: HTTP API replicas."
)
@click.option(
    "--ray-dashboard",
    is_flag=True,
    help="With --ray, on the cluster it starts: run Ray's dashboard too (its web page on 127.0.0.1:8265, and "
    "what `serve status` asks). Off by default: on two cores its processes delay speech (README).",
)
@friendly_errors
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    config_file: Path | None,
    lazy: bool,
    allow_public: bool,
    root_path: str | None,
    model_paths: tuple[str, ...],
    allow_downloads: bool,
    on_ray: bool,
    replicas: int,
    max_replicas: int | None,
    enrolment_replicas: int,
    gpus_per_replica: float,
    cpus_per_enrolment_replica: float,
    api_replicas: int,
    ray_dashboard: bool,
) -> None:
    """Start the speech server."""
    import uvicorn

    from ..database import Database
    from ..oidc import TokenVerifier
    from ..server import create_app
    from ..server.app import key_ring
    from ..server.security import ADD_AUTHENTICATION
    from ..settings import LOOPBACK

    overrides: dict[str, object] = {"preload": False} if lazy else {}
    if allow_public:
        overrides["allow_public_without_keys"] = True
    if root_path is not None:
        overrides["root_path"] = root_path
    if allow_downloads:
        overrides["allow_downloads"] = True
    settings = settings_from(config_file, data_dir, model_paths=model_paths, **overrides)
    database = Database(settings.db_url)
    try:
        keys = key_ring(settings, database)
    finally:
        database.close()
    tokens = TokenVerifier.from_settings(settings)
    authenticated = keys.enabled or tokens is not None
    if not authenticated and not _is_loopback(host) and not settings.allow_public_without_keys:
        raise click.ClickException(
            f"refusing to listen on {host} with no API keys: anyone could use this server. Create a key "
            "(`voxclone keys create --name me --scope manage`), set VOXCLONE_API_KEYS, or pass --allow-public"
        )
    behind_proxy = list(settings.trusted_proxies) != list(LOOPBACK) or bool(settings.root_path)
    if not authenticated and behind_proxy and not settings.allow_public_without_keys:
        # A tunnel or proxy in front (trusted proxies or a root path set) with nothing to check callers.
        click.echo(
            "warning: set up for a proxy or tunnel, but there are no API keys: requests that come through it "
            f"will be refused with 403. {ADD_AUTHENTICATION}",
            err=True,
        )
    if on_ray:
        layout = {
            "replicas": replicas,
            "max_replicas": max_replicas,
            "enrolment_replicas": enrolment_replicas,
            "api_replicas": api_replicas,
            "gpus_per_replica": gpus_per_replica,
            "cpus_per_enrolment_replica": cpus_per_enrolment_replica,
        }
        _serve_on_ray(
            _replica_settings(config_file, data_dir, model_paths, overrides), layout, host, port, ray_dashboard
        )
        return
    app = create_app(settings)
    where = f"http://{host}:{port}{settings.root_path}/"
    click.echo(
        f"voxclone serving on {where} (data: {settings.data_dir}; authentication {_auth(keys, tokens)}; "
        f"client addresses from proxies at {', '.join(settings.trusted_proxies) or 'none'})",
        err=True,
    )
    # Forwarding headers are read by voxclone's own ProxyMiddleware, from VOXCLONE_TRUSTED_PROXIES only.
    # The event loop and HTTP parser are named: the `scale` extra installs uvloop and httptools, which
    # uvicorn would otherwise pick, and the single process serves as it always has.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        ws="websockets-sansio",
        proxy_headers=False,
        loop="asyncio",
        http="h11",
    )


def _replica_settings(
    config_file: Path | None, data_dir: Path | None, model_paths: tuple[str, ...], overrides: dict[str, object]
) -> dict[str, object]:
    """What every replica is told on top of its own environment: the config file's values (those the
    environment does not set), then the command line's. Replicas may run on other machines, so the file
    travels as values; secrets stay in the environment (Ray shows deployment arguments in its dashboard)."""
    from_file: dict[str, object] = {}
    if config_file is not None:
        with open(config_file, "rb") as f:
            from_file = tomllib.load(f)
    secrets = sorted(SECRET_SETTINGS.intersection(from_file))
    if secrets:
        raise click.ClickException(
            f"with --ray, give {', '.join(secrets)} in the environment (VOXCLONE_...), not in the config file: "
            "Ray shows deployment arguments in its dashboard"
        )
    set_in_env = Settings().model_dump(exclude_unset=True)
    values = {k: v for k, v in from_file.items() if k not in set_in_env}
    if model_paths:
        values["model_paths"] = ",".join(model_paths)
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    return {**values, **overrides}


def _serve_on_ray(overrides: dict[str, object], layout: dict[str, Any], host: str, port: int, dashboard: bool) -> None:
    try:
        from ..deploy import Options, run
    except ImportError as e:
        raise click.ClickException(f"--ray needs the scale extra: pip install 'voxclone[scale]' ({e})") from e
    click.echo(f"voxclone on Ray Serve at http://{host}:{port}/ ({layout['replicas']} synthesis replicas)", err=True)
    run(overrides, Options(**layout), host, port, dashboard=dashboard)


def _auth(keys: KeyRing, tokens: TokenVerifier | None) -> str:
    parts = [f"{len(keys)} keys"] if len(keys) else []
    if tokens is not None:
        parts.append(f"tokens from {tokens.issuer}")
    return f"on ({', '.join(parts)})" if parts else "OFF (no API keys configured; loopback only)"


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

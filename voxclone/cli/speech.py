"""`voxclone say` and `voxclone voices`: speak from the command line, list the library."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from ..audio import FORMATS, OutputFormat
from ..runtime import Runtime
from ..speech import MAX_SPEED, MIN_SPEED, SpeechRequest
from .common import config_option, data_dir_option, friendly_errors, settings_from

_PLAYERS = (["ffplay", "-autoexit", "-nodisp", "-loglevel", "quiet"], ["aplay", "-q"], ["afplay"], ["paplay"])


def _play(path: Path) -> None:
    for command in _PLAYERS:
        if shutil.which(command[0]):
            subprocess.run([*command, str(path)], check=False)
            return
    raise click.ClickException("no audio player found (ffplay, aplay, afplay, paplay); use --out FILE")


@click.command()
@click.argument("text", nargs=-1, required=True)
@click.option("--voice", "-v", default=None, help="Voice id or name (default: the configured default voice).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here (format from suffix).")
@click.option(
    "--speed", type=click.FloatRange(MIN_SPEED, MAX_SPEED), default=None, help="Default: the voice's stored speed."
)
@data_dir_option
@config_option
@friendly_errors
def say(
    text: tuple[str, ...],
    voice: str | None,
    out: Path | None,
    speed: float | None,
    data_dir: Path | None,
    config_file: Path | None,
) -> None:
    """Speak TEXT ('-' reads standard input) into a file, or play it."""
    settings = settings_from(config_file, data_dir)
    words = sys.stdin.read() if text == ("-",) else " ".join(text)
    fmt_name = (out.suffix.lstrip(".").lower() if out else "wav").replace("ogg", "opus")
    if fmt_name not in FORMATS or fmt_name == "pcm":
        raise click.ClickException(f"cannot write {out}: use a .wav, .mp3, .ogg/.opus, .aac or .flac file")
    runtime = Runtime(settings)
    request = SpeechRequest(
        text=words, voice=voice or settings.default_voice, speed=speed, format=OutputFormat(fmt_name)
    )
    try:
        if out is not None:
            seconds = asyncio.run(runtime.speech.write_file(request, out))
            click.echo(f"wrote {out} ({seconds:.1f} s)", err=True)
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "speech.wav"
            asyncio.run(runtime.speech.write_file(request, path))
            _play(path)
    finally:
        runtime.close()


@click.command()
@data_dir_option
@config_option
@friendly_errors
def voices(data_dir: Path | None, config_file: Path | None) -> None:
    """List the voices in the library."""
    runtime = Runtime(settings_from(config_file, data_dir))
    header = ("ID", "NAME", "ENGINE", "KIND", "STATUS", "LABELS")
    rows = [
        (v.id, v.name, v.engine, v.category, v.status, ", ".join(f"{k}={x}" for k, x in v.labels.items()))
        for v in runtime.library.all()
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    runtime.close()

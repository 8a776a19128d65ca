"""`voxclone transcribe` and `voxclone revoice`: speech to text, and speech said again in another voice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..asr import MODELS, TranscribeOptions
from ..audio import FORMATS, OutputFormat
from ..revoice import RevoiceOptions
from ..runtime import Runtime
from ..transcription import RESPONSE_FORMATS, render
from .common import config_option, data_dir_option, friendly_errors, settings_from

_input = click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@click.command()
@_input
@click.option(
    "--model", type=click.Choice(MODELS), default=None, help="Whisper model (default: VOXCLONE_TRANSCRIPTION_MODEL)."
)
@click.option("--language", default=None, help="ISO-639-1 code; default: English for tiny.en, detected for base.")
@click.option("--prompt", default=None, help="Text that came before, or names and words to expect.")
@click.option("--format", "response_format", type=click.Choice(RESPONSE_FORMATS), default="text", show_default=True)
@click.option("--words", is_flag=True, help="Word timestamps (verbose_json).")
@click.option(
    "--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of standard output."
)
@data_dir_option
@config_option
@friendly_errors
def transcribe(
    source: Path,
    model: str | None,
    language: str | None,
    prompt: str | None,
    response_format: str,
    words: bool,
    out: Path | None,
    data_dir: Path | None,
    config_file: Path | None,
) -> None:
    """Transcribe SOURCE (wav, flac, mp3, ogg/opus, webm, m4a) with Whisper."""
    runtime = Runtime(settings_from(config_file, data_dir))
    service = runtime.transcription
    options = TranscribeOptions(language=language, prompt=prompt, words=words)

    async def run() -> str:
        audio = await service.decode(source.read_bytes())
        return render(await service.transcribe(audio, service.model(model), options), response_format, words=words).body

    try:
        text = asyncio.run(run())
    finally:
        runtime.close()
    if out is None:
        click.echo(text.rstrip("\n"))
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@click.command()
@click.option("--voice", "-v", required=True, help="Voice id or name to say it in.")
@_input
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=click.Choice(MODELS), default=None, help="Whisper model that hears SOURCE.")
@click.option("--language", default=None, help="Language of SOURCE (ISO-639-1); default: detected.")
@click.option("--no-pitch", is_flag=True, help="Keep the voice's own pitch contour instead of following SOURCE's.")
@data_dir_option
@config_option
@friendly_errors
def revoice(
    voice: str,
    source: Path,
    target: Path,
    model: str | None,
    language: str | None,
    no_pitch: bool,
    data_dir: Path | None,
    config_file: Path | None,
) -> None:
    """Say what SOURCE says again in VOICE, keeping its timing, into TARGET (format from its suffix)."""
    fmt = target.suffix.lstrip(".").lower().replace("ogg", "opus")
    if fmt not in FORMATS or fmt in ("pcm", "ulaw"):
        raise click.ClickException(f"cannot write {target}: use a .wav, .mp3, .ogg/.opus, .aac or .flac file")
    runtime = Runtime(settings_from(config_file, data_dir))
    options = RevoiceOptions(voice=voice, model=model, language=language, pitch_contour=not no_pitch)
    revoicer = runtime.revoicer

    async def run() -> bytes:
        audio = await revoicer.transcription.decode(source.read_bytes())
        found = await revoicer.hear(audio, options)
        click.echo(" ".join(s.text for s in found), err=True)
        return await revoicer.file(audio, found, options, OutputFormat(fmt))

    try:
        body = asyncio.run(run())
    finally:
        runtime.close()
    partial = target.with_name(f".{target.name}.part")
    partial.write_bytes(body)
    partial.replace(target)  # a file appears whole or not at all
    click.echo(f"wrote {target}", err=True)

"""`voxclone clone` and `voxclone eval`: make a voice from recordings, and score a voice against them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from ..audio import ANALYSIS_RATE, decode
from ..enrolment import DEFAULT_TIER, Upload, parse_labels
from ..runtime import Runtime
from ..voices import Voice
from .common import config_option, data_dir_option, friendly_errors, settings_from

_files = click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
_BAR = "{l_bar}{bar}| {n:.0f}% [{elapsed}]"
_REFINING_BAR = "{l_bar}{bar}| {n:.0f}% [{elapsed}]{postfix}"  # tqdm puts ", " before the postfix


async def _enrol(
    runtime: Runtime, name: str, uploads: list[Upload], description: str, labels: dict[str, str], tier: str
) -> tuple[Voice, dict[str, Any] | None]:
    """Clone with the same enrolment path as the server (its engine calls on the worker pool), showing progress;
    for a refining tier, then follow the refinement. The voice, and how its refinement ended (if it had one)."""
    runtime.enroller.start(asyncio.get_running_loop(), resume=False)
    enroller = runtime.enroller
    voice = await asyncio.to_thread(
        lambda: enroller.add_voice(name=name, uploads=uploads, description=description, labels=labels, tier=tier)
    )
    with tqdm(total=100, desc=f"cloning {name}", unit="%", bar_format=_BAR) as bar:
        while voice.status == "enrolling":
            await asyncio.sleep(0.5)
            voice = runtime.library.get(voice.id)
            bar.update(round(voice.progress * 100) - bar.n)
        bar.update(100 - bar.n if voice.status == "ready" else 0)
    refinement = enroller.refinements(voice.id).get(voice.id)
    if voice.status == "ready" and refinement is not None:
        refinement = await _follow_refinement(runtime, voice.id, refinement)
    return runtime.library.get(voice.id), refinement


async def _follow_refinement(runtime: Runtime, voice_id: str, refinement: dict[str, Any]) -> dict[str, Any]:
    """A bar for the voice's refinement (a deep fit: its step and held-out loss, and the time left) until it ends."""
    with tqdm(total=100, desc=f"{refinement['tier']} clone", unit="%", bar_format=_REFINING_BAR) as bar:
        while refinement["status"] in ("queued", "running"):
            await asyncio.sleep(1.0)
            refinement = runtime.enroller.refinements(voice_id)[voice_id]
            bar.update(round(refinement["progress"] * 100) - bar.n)
            left = f", about {refinement['eta_s'] / 60:.0f} min left" if refinement["eta_s"] else ""
            bar.set_postfix_str(f"{refinement['message']}{left}", refresh=True)
        bar.update(100 - bar.n if refinement["status"] == "done" else 0)
    return refinement


@click.command()
@click.option("--name", required=True, help="Name of the new voice.")
@_files
@click.option("--transcript", "transcripts", multiple=True, help="What is said in each file, in order (optional).")
@click.option("--labels", default=None, help='JSON object or key=value pairs, e.g. "accent=british,gender=female".')
@click.option("--description", default="")
@click.option(
    "--tier",
    default=DEFAULT_TIER,
    show_default=True,
    help="Cloning tier: instant, or deep (the instant clone, then a fit of the model to the speaker: minutes).",
)
@data_dir_option
@config_option
@friendly_errors
def clone(
    name: str,
    files: tuple[Path, ...],
    transcripts: tuple[str, ...],
    labels: str | None,
    description: str,
    tier: str,
    data_dir: Path | None,
    config_file: Path | None,
) -> None:
    """Clone a voice from one or more recordings (wav, flac, mp3, ogg/opus, webm, m4a)."""
    runtime = Runtime(settings_from(config_file, data_dir))
    uploads = [
        Upload(file_name=f.name, data=f.read_bytes(), transcript=transcripts[i] if i < len(transcripts) else None)
        for i, f in enumerate(files)
    ]
    try:
        voice, refinement = asyncio.run(_enrol(runtime, name, uploads, description, parse_labels(labels), tier))
    finally:
        runtime.close()  # on Ctrl-C too: a deep fit stops, and `voxclone serve` on this data dir resumes it
    if voice.status != "ready":
        raise click.ClickException(f"cloning failed: {voice.error}")
    click.echo(f"voice {voice.name!r} is ready: id {voice.id}, speaks with its {voice.tier} clone")
    if refinement is not None:
        click.echo(f"  {refinement['tier']} clone: {refinement['status']}: {refinement['message']}")
    for key in ("similarity", "baseline_similarity", "wer", "deep_similarity", "deep_similarity_instant", "deep_wer"):
        if key in voice.scores:
            click.echo(f"  {key}: {voice.scores[key]:.3f}")


@click.command(name="eval")
@click.option("--voice", "-v", required=True, help="Voice id or name to score.")
@_files
@click.option(
    "--report", type=click.Path(dir_okay=False, path_type=Path), default=Path("voxclone-eval.html"), show_default=True
)
@click.option(
    "--sentences",
    type=click.IntRange(1, 5),
    default=5,
    show_default=True,
    help="How many of the 5 probe sentences to speak.",
)
@data_dir_option
@config_option
@friendly_errors
def evaluate_voice(
    voice: str, files: tuple[Path, ...], report: Path, sentences: int, data_dir: Path | None, config_file: Path | None
) -> None:
    """Score VOICE against recordings of the speaker it imitates; writes an HTML report."""
    from ..evaluation import evaluate, write_report  # heavy (encoders, Whisper): only for this command

    settings = settings_from(config_file, data_dir)
    runtime = Runtime(settings)
    references = [
        (decode(f.read_bytes(), target_rate=ANALYSIS_RATE, max_seconds=settings.max_upload_seconds), ANALYSIS_RATE)
        for f in files
    ]
    try:
        with tqdm(total=100, desc=f"evaluating {voice}", unit="%", bar_format=_BAR) as bar:
            result = evaluate(
                runtime, voice, references, progress=lambda f: bar.update(round(f * 100) - bar.n), sentences=sentences
            )
    finally:
        runtime.close()
    write_report(result, report)
    click.echo(json.dumps(result.summary(), indent=2))
    click.echo(f"report: {report}", err=True)

"""The `voxclone` command: one click group, one module per command family."""

from __future__ import annotations

import click

from .. import __version__
from .cloning import clone, evaluate_voice
from .keys import keys
from .listening import revoice, transcribe
from .models import models_group
from .provenance import audit, detect
from .serve import serve
from .speech import say, voices


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="voxclone")
def main() -> None:
    """voxclone: a self-hosted voice-cloning speech server."""


main.add_command(serve)
main.add_command(say)
main.add_command(voices)
main.add_command(clone)
main.add_command(evaluate_voice)
main.add_command(keys)
main.add_command(transcribe)
main.add_command(revoice)
main.add_command(models_group)
main.add_command(detect)
main.add_command(audit)

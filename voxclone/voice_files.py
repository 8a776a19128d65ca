"""Voices made from a model file a user uploads (a Bark `.npz` prompt, a Kokoro `.npy` style table...),
each read by the engine that knows its kind, as VOXCLONE_EXTRA_VOICE_PATHS does for files on disk.

The file is written into the new voice's own folder before the voice exists; a failure removes it, and
a crash in between leaves only a stray folder, which the next start sweeps away.
"""

from __future__ import annotations

import re
import shutil

from .engines import Engines
from .errors import BadInput
from .files import atomic_write
from .voices import Voice, VoiceLibrary, check_name, new_voice_id

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class VoiceFiles:
    """Adds `file` voices from uploaded model files."""

    def __init__(self, library: VoiceLibrary, engines: Engines) -> None:
        self.library = library
        self.engines = engines

    def add(self, *, name: str, file_name: str, data: bytes, description: str = "") -> Voice:
        """Store the file and make it a voice of the engine that reads it; BadInput if none does. Blocking."""
        name = check_name(name)
        safe = _SAFE_NAME.sub("_", file_name.rsplit("/", 1)[-1]).lstrip(".") or "voice"
        voice_id = new_voice_id()
        folder = self.library.files_dir(voice_id)
        try:
            folder.mkdir(parents=True)
            path = folder / safe
            atomic_write(path, data)
            engine, params = self.engines.voice_from_file(path)
            params = {k: path.name if v == str(path.resolve()) else v for k, v in params.items()}  # kept with the voice
            self.engines[engine].check_voice(params, folder)
            return self.library.create(
                voice_id=voice_id,
                name=name,
                engine=engine,
                params=params,
                category="file",
                description=description or f"from {safe}",
            )
        except OSError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise BadInput(f"could not store {safe}: {e.strerror}") from e
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
